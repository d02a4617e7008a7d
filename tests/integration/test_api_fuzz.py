"""Schemathesis against the running local stack: 0 server errors, schema-conformant answers.

The target is the whole local stack (`devtools.run_local.start_stack`: moto, sandbox gateway,
outbox, `chalice local`) on free ports; the OpenAPI document is read from ``/api/v1/openapi.json``.
Every documented operation is fuzzed with Hypothesis data from its schema (positive and negative
modes), signed in as a demo member (session cookie + ``X-CSRF-Token``) and with the staff API key,
so the authenticated code paths are reached, not only the 401s.

Budget: ``SCHEMATHESIS_MAX_EXAMPLES`` examples per operation. The default keeps a local run well
under 3 minutes on 2 cores; under ``CI=true`` the default is the full count (>= 10,000 requests in
all, asserted). 401/403/404/409/429 are fine answers; any 5xx fails (even one the operation
documents), and so does a dropped connection. Answers with a documented status are checked with
schemathesis' ``response_schema_conformance`` and ``content_type_conformance``.
Timings (2 cores): 40 examples/operation = 920 requests in ~13 s plus ~6 s to start the stack;
the CI run (10,580 requests) in ~145 s.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
requests = pytest.importorskip("requests")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.conftest import ARTIFACTS  # noqa: E402
from tests.stack_support import running_stack  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES") or (460 if IN_CI else 40))
#: The issue's floor for the full run (CI): requests in total across the documented operations.
FULL_RUN_MINIMUM = 10_000
DOCUMENT = "1020304050"
EMAIL = "ana.perez@correo.example"
PASSWORD = "caballo bateria grapa correcta fuzz"
STAFF_KEY = "local-staff-key"


@pytest.fixture(scope="module")
def stack() -> Iterator[Any]:
    # fuzzing would otherwise spend most requests on 429s
    with running_stack(RATE_IDENTIFY="1000000", RATE_LOGIN="1000000", RATE_RECOVERY="1000000") as handle:
        yield handle


def _json(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> Any:
    return requests.request(method, url, json=body, headers=headers or {}, timeout=30)


def _sign_in(stack: Any) -> tuple[str, str]:
    """First access through the API: recovery email (outbox) → confirm → login. (cookie, csrf)."""
    base = stack.app_url
    assert _json("POST", f"{base}/api/v1/recovery", {"document_number": DOCUMENT}).status_code == 202
    html = ""
    for _ in range(100):
        with urllib.request.urlopen(f"{stack.outbox_url}/api/messages?to={EMAIL}", timeout=5) as r:
            messages = json.load(r)["messages"]
        if messages:
            html = messages[0].get("html") or ""
            break
        time.sleep(0.1)
    token = re.search(r"cambiar-clave\?token=([A-Za-z0-9_\-]+)", html).group(1)
    key = re.search(r">([A-Z2-9]{10})<", html).group(1)
    confirm = _json("POST", f"{base}/api/v1/recovery/confirm",
                    {"token": token, "temporary_key": key, "new_password": PASSWORD})
    assert confirm.status_code == 204, confirm.text
    ticket = _json("POST", f"{base}/api/v1/session/identify",
                   {"document_number": DOCUMENT}).json()["login_ticket"]
    login = _json("POST", f"{base}/api/v1/session", {"login_ticket": ticket, "password": PASSWORD})
    assert login.status_code == 201, login.text
    cookie = next(f"{c.name}={c.value}" for c in login.cookies if c.name.endswith("sv_session"))
    return cookie, login.json()["csrf_token"]


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.by_status: Counter[int] = Counter()
        self.by_operation: Counter[tuple[str, int]] = Counter()
        self.server_errors: list[str] = []
        self.nonconforming: list[str] = []


def _fuzz(operation: Any, headers: dict[str, str], session: Any, tally: Tally) -> None:
    """Hypothesis over one operation (positive and negative cases), findings into ``tally``."""
    from schemathesis.checks import content_type_conformance, response_schema_conformance
    from schemathesis.generation import GenerationMode

    strategy = operation.as_strategy(generation_mode=GenerationMode.POSITIVE) | \
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        # our credentials win over generated ones (the apiKey schemes make schemathesis invent
        # Cookie / X-CSRF-Token / X-Api-Key values, which would only ever test the 401/403)
        ours = {name.lower() for name in headers}
        merged = {**{k: v for k, v in (case.headers or {}).items() if k.lower() not in ours},
                  **headers}
        case.headers = merged
        try:
            response = case.call(session=session, headers=merged, timeout=30)
        except requests.RequestException as exc:  # a dropped connection is a server failure
            tally.server_errors.append(f"{case.operation.label}: {type(exc).__name__}: {exc}")
            return
        tally.requests += 1
        tally.by_status[response.status_code] += 1
        tally.by_operation[(case.operation.label, response.status_code)] += 1
        if os.environ.get("SCHEMATHESIS_VERBOSE") == "2" and response.status_code == 401 \
                and "/staff/" in case.operation.path:
            print("401", response.request.method, response.request.url,
                  dict(response.request.headers), response.text[:200], file=sys.stderr)
        documented = str(response.status_code) in (operation.definition.raw.get("responses") or {})
        if response.status_code >= 500 and not documented:
            tally.server_errors.append(
                f"{case.operation.label} -> {response.status_code}: {response.text[:200]!r} "
                f"[{case.as_curl_command(headers=merged)}]")
        elif response.status_code >= 500:
            tally.server_errors.append(
                f"{case.operation.label} -> documented {response.status_code}: {response.text[:200]!r}")
        if documented and response.status_code < 500:
            try:
                case.validate_response(response, checks=[response_schema_conformance,
                                                         content_type_conformance])
            except Exception as exc:
                tally.nonconforming.append(f"{case.operation.label} -> {response.status_code}: "
                                           f"{str(exc)[:300]}")

    run()


def test_fuzz_documented_operations(stack: Any) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.app_url}/api/v1/openapi.json")
    schema.config.update(base_url=stack.app_url)
    cookie, csrf = _sign_in(stack)
    auth_headers = {"Cookie": cookie, "X-CSRF-Token": csrf, "X-Api-Key": STAFF_KEY,
                    "X-Staff-User": "fuzz"}
    session = requests.Session()
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [o.label for o in operations]
    started = time.monotonic()

    for operation in operations:
        if operation.method.upper() == "DELETE" and operation.path == "/api/v1/session":
            headers = {"X-Api-Key": STAFF_KEY}  # fuzzing logout with the real session would end it
        else:
            headers = auth_headers
        _fuzz(operation, headers, session, tally)

    elapsed = time.monotonic() - started
    summary = (f"schemathesis: {tally.requests} requests across {len(operations)} operations in "
               f"{elapsed:.1f} s ({MAX_EXAMPLES} examples/operation); statuses {dict(tally.by_status)}; "
               f"server errors {len(tally.server_errors)}; non-conforming {len(tally.nonconforming)}")
    print("\n" + summary, file=sys.stderr)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "schemathesis.txt").write_text(summary + "\n", "utf-8")  # the figure CI leaves behind
    if os.environ.get("SCHEMATHESIS_VERBOSE"):
        for (label, status), count in sorted(tally.by_operation.items()):
            print(f"  {label}: {status} x{count}", file=sys.stderr)
    assert not tally.server_errors, "\n".join(tally.server_errors[:20])
    assert not tally.nonconforming, "\n".join(sorted(set(tally.nonconforming))[:20])
    if IN_CI and "SCHEMATHESIS_MAX_EXAMPLES" not in os.environ:
        assert tally.requests >= FULL_RUN_MINIMUM, tally.requests


# --- regressions of what the full (CI) run found: signed tokens with non-ASCII characters ---------
# ``Signer.unsign`` once compared str MACs with ``hmac.compare_digest``, which raises TypeError on
# non-ASCII text: a 500 on the login ticket, the staff cursor and the unsubscribe token.

NON_ASCII_TOKEN = "abc.\u00e1\u00e9"


def test_login_ticket_with_non_ascii_is_not_a_500(client) -> None:  # type: ignore[no-untyped-def]
    response = client.http.post("/api/v1/session", headers={"Content-Type": "application/json"},
                                body=json.dumps({"login_ticket": NON_ASCII_TOKEN, "password": "x"}))
    assert response.status_code < 500, response.body


def test_staff_cursor_with_non_ascii_is_not_a_500(client) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    response = client.http.get(f"/staff/v1/review?cursor={quote(NON_ASCII_TOKEN)}",
                               headers={"X-Api-Key": STAFF_KEY})
    assert response.status_code < 500, response.body


def test_unsubscribe_token_with_non_ascii_is_not_a_500(client) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    response = client.http.get(f"/avisos/cancelar?token={quote(NON_ASCII_TOKEN)}")
    assert response.status_code < 500, response.body
