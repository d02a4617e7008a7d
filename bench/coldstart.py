"""Measure 1: cold start. ``import app`` in a fresh interpreter vs the floor (chalice + boto3 + pynamodb).

Each run is a new ``python`` process with the tests' environment (local stage variables, fake AWS
credentials, ``AWS_DEFAULT_REGION``) and ``PYTHONDONTWRITEBYTECODE`` unset, so imports come from
warm ``.pyc`` caches (the discarded warm-up runs write any that are missing). The child times only
the import statement (``time.perf_counter`` around it), so interpreter start-up, equal for both, is
left out. App and floor runs alternate, so a slow spell of the machine hits both alike.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench import env
from bench.report import INFO, Row, median, ms, within

RUNS = 11  # measured runs of each side (>= 7)
WARMUP = 2  # discarded runs of each side (write missing .pyc, warm the OS file cache)
BUDGET_RATIO = 1.25
FLOOR_IMPORTS = "import chalice, boto3, pynamodb.models"
APP_IMPORTS = "import app"
#: ``import app`` plus its first request (the login page), as a fresh Lambda container's first
#: visitor pays it: the app imports lazily, so modules move from import time to the first request.
FIRST_REQUEST = """import app
_path = "/ingresar"
_event = {"resource": _path, "path": _path, "httpMethod": "GET", "headers": {"Host": "localhost"},
          "multiValueHeaders": {}, "multiValueQueryStringParameters": None, "pathParameters": None,
          "stageVariables": None, "body": None, "isBase64Encoded": False,
          "requestContext": {"resourcePath": _path, "httpMethod": "GET", "stage": "api",
                             "requestId": "bench-first-request", "identity": {"sourceIp": "127.0.0.1"}}}
class _LambdaContext:
    aws_request_id = "bench-first-request"
assert app.app(_event, _LambdaContext())["statusCode"] == 200
"""
#: Modules whose presence after ``import app`` is reported (informational rows).
HEAVY = ("boto3", "botocore", "urllib3", "pynamodb", "jinja2", "bcrypt", "chalice", "moto")

_CHILD = r"""
import sys, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
import importlib.util, json, os
pyc = None
app_module = sys.modules.get("app")
if app_module is not None and getattr(app_module, "__file__", None):
    pyc = os.path.exists(importlib.util.cache_from_source(app_module.__file__))
print(json.dumps({{
    "seconds": t1 - t0,
    "heavy": [m for m in {heavy!r} if m in sys.modules],
    "modules": len(sys.modules),
    "dont_write_bytecode": sys.flags.dont_write_bytecode,
    "app_pyc": pyc,
}}))
"""


def _child(imports: str) -> dict:
    code = _CHILD.format(imports=imports, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], cwd=env.ROOT, env=env.subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"child `{imports}` failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run() -> tuple[list[Row], list[str]]:
    for _ in range(WARMUP):
        _child(APP_IMPORTS)
        _child(FLOOR_IMPORTS)
        _child(FIRST_REQUEST)
    app_runs: list[dict] = []
    floor_runs: list[dict] = []
    first_runs: list[dict] = []
    for i in range(RUNS):
        sides = [(APP_IMPORTS, app_runs), (FLOOR_IMPORTS, floor_runs), (FIRST_REQUEST, first_runs)]
        for imports, sink in (sides if i % 2 == 0 else sides[::-1]):
            sink.append(_child(imports))
    app_s = median([r["seconds"] for r in app_runs])
    floor_s = median([r["seconds"] for r in floor_runs])
    first_s = median([r["seconds"] for r in first_runs])
    ratio = app_s / floor_s
    last = app_runs[-1]
    section = "cold start"
    rows = [
        Row("cold start: import app (median)", f"{ms(app_s)} ({last['modules']} modules)",
            section=section),
        Row("cold start: floor chalice+boto3+pynamodb (median)",
            f"{ms(floor_s)} ({floor_runs[-1]['modules']} modules)", section=section),
        Row("cold start: app / floor", f"{ratio:.2f}x", f"<= {BUDGET_RATIO:.2f}x",
            within(ratio, BUDGET_RATIO), section=section),
        Row("cold start: import app + first page GET /ingresar (median)",
            f"{ms(first_s)} ({first_runs[-1]['modules']} modules), {first_s / floor_s:.2f}x floor", "-",
            INFO, section=section),
    ]
    for name in HEAVY:
        pulled = name in last["heavy"]
        rows.append(Row(f"  app import pulls {name}", "yes" if pulled else "no", "-", INFO,
                        section=section))
    warm = all(r["app_pyc"] for r in app_runs) and not any(r["dont_write_bytecode"]
                                                           for r in app_runs + floor_runs)
    notes = [
        f"cold start: median of {RUNS} fresh `python -c` processes per side (+{WARMUP} discarded "
        "warm-ups), alternating; the child times the import statement alone (perf_counter), "
        "interpreter start-up excluded; PYTHONDONTWRITEBYTECODE unset, .pyc caches "
        + ("warm (app's .pyc present on every run)." if warm else "NOT confirmed warm."),
    ]
    return rows, notes
