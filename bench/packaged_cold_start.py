"""Measure: size and cold start of the *packaged* Lambda, from the unzipped ``deployment.zip``.

The archive ``make package`` builds (``build/dev/deployment.zip``; built with
``python -m devtools.infra package --stage dev --no-lint --build-dir <tmp>`` when it is missing, or
always with ``PACKAGED_COLD_START_REBUILD=1``) is unzipped twice into a temporary directory:

* ``shipped``: as it is, with the unchecked-hash ``.pyc`` that ``devtools.packaging`` compiles for the
  Lambda runtime - what a fresh Lambda container pays on its first import;
* ``no .pyc``: the same files with every ``.pyc`` removed, so every run compiles every module
  again - what a package without bytecode would pay (``/var/task`` is read-only: nothing cached).

Both run with ``PYTHONDONTWRITEBYTECODE=1``. The ``.pyc`` shipped are counted, and those the
interpreter would not use as they are (``devtools.packaging.stale_bytecode``: another Python's,
timestamp-based, or compiled from other source) must be none.

Each run is a fresh ``python -S -c`` in that directory: ``-S`` leaves out site-packages, so
``sys.path`` is the unzipped package (``sys.path[0]``) and the standard library only, as on
Lambda (/var/task first). The child times those statements alone (``perf_counter``). Three
sides: ``import app``; ``import app`` plus the first page (``GET /ingresar`` through the Lambda
handler, as a fresh container's first visitor pays it: the app imports lazily, so modules move
from import time to the first request); and the floor, ``import chalice, boto3,
pynamodb.models``, from the same directory and mode. Sides and modes alternate so a slow spell of
the machine hits them alike.

The archive's size, zipped (what Lambda fetches on a cold start, budget :data:`BUDGET_ZIPPED`)
and unzipped, is reported beside.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench import env
from bench.coldstart import FIRST_REQUEST
from bench.report import INFO, Row, median, ms, spread, within
from devtools.packaging import stale_bytecode

RUNS = int(os.environ.get("PACKAGED_COLD_START_RUNS", "7"))  # measured runs of each side and mode
WARMUP = 1  # discarded runs of each (warm the OS file cache)
BUDGET_RATIO = 1.25  # the same budget as the source-tree cold start (bench/coldstart.py)
BUDGET_ZIPPED = 15e6  # bytes of deployment.zip: a payday surge starts hundreds of containers
FLOOR_IMPORTS = "import chalice, boto3, pynamodb.models"
APP_IMPORTS = "import app"
ARCHIVE = env.ROOT / "build" / "dev" / "deployment.zip"

_CHILD = r"""
import sys, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
import json, os
app_module = sys.modules.get("app")
origin = os.path.dirname(os.path.abspath(app_module.__file__)) if app_module else None
chalice_origin = os.path.dirname(os.path.dirname(os.path.abspath(sys.modules["chalice"].__file__)))
print(json.dumps({{"seconds": t1 - t0, "modules": len(sys.modules), "path0": sys.path[0],
                  "app_dir": origin, "chalice_dir": chalice_origin,
                  "dont_write_bytecode": sys.flags.dont_write_bytecode}}))
"""


def _archive() -> tuple[Path, str, Path | None]:
    """(zip path, how it was obtained, temp build dir to remove)."""
    if ARCHIVE.exists() and not os.environ.get("PACKAGED_COLD_START_REBUILD"):
        return ARCHIVE, f"reused {ARCHIVE.relative_to(env.ROOT)}", None
    build = Path(tempfile.mkdtemp(prefix="sv-package-"))
    done = subprocess.run([sys.executable, "-m", "devtools.infra", "package", "--stage", "dev",
                           "--no-lint", "--build-dir", str(build)], cwd=env.ROOT,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"packaging failed ({done.returncode}):\n{done.stderr[-2000:]}")
    found = sorted(build.rglob("deployment.zip"))
    if not found:
        raise RuntimeError(f"no deployment.zip under {build}")
    return found[0], "built with devtools.infra package --stage dev --no-lint", build


def _child_env() -> dict[str, str]:
    child = env.subprocess_env()
    child.pop("PYTHONPATH", None)  # the unzipped package is the only app path
    child.pop("PYTHONHOME", None)
    child["PYTHONDONTWRITEBYTECODE"] = "1"
    return child


def _child(directory: Path, imports: str) -> dict:
    done = subprocess.run([sys.executable, "-S", "-c", _CHILD.format(imports=imports)],
                          cwd=directory, env=_child_env(), capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"child `{imports}` in {directory.name} failed:\n{done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["app_dir"] not in (None, str(directory.resolve())) or \
            result["chalice_dir"] != str(directory.resolve()):
        raise RuntimeError(f"imported from outside the package: {result}")
    return result


def _pyc_count(directory: Path) -> int:
    return sum(1 for _ in directory.rglob("*.pyc"))


def _archive_rows(archive: Path, section: str) -> list[Row]:
    with zipfile.ZipFile(archive) as zipped:
        infos = zipped.infolist()
        stale = stale_bytecode(zipped)
    names = [info.filename for info in infos]
    sources = sum(1 for n in names if n.endswith(".py"))
    shipped = sum(1 for n in names if n.endswith(".pyc"))
    zipped_size = archive.stat().st_size
    return [
        Row("packaged: deployment.zip zipped", f"{zipped_size / 1e6:.1f} MB",
            f"<= {BUDGET_ZIPPED / 1e6:.0f} MB", within(zipped_size, BUDGET_ZIPPED), section=section),
        Row("packaged: deployment.zip unzipped", f"{sum(i.file_size for i in infos) / 1e6:.1f} MB, "
            f"{len(infos)} files, {shipped} .pyc shipped for {sources} .py", section=section),
        Row("packaged: stale .pyc in the zip", f"{len(stale)}" + (f" (e.g. {stale[0]})" if stale else ""),
            "0", within(len(stale), 0), section=section),
    ]


def run() -> tuple[list[Row], list[str]]:
    archive, origin, build = _archive()
    work = Path(tempfile.mkdtemp(prefix="sv-coldstart-"))
    try:
        shipped, source = work / "shipped", work / "source"
        unzip_s = []
        for directory in (shipped, source):  # what Lambda does with the archive before anything
            t0 = time.perf_counter()
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(directory)
            unzip_s.append(time.perf_counter() - t0)
        for pyc in list(source.rglob("*.pyc")):  # 'no .pyc' means none at all
            pyc.unlink()
        modes = (("shipped", shipped), ("no .pyc", source))
        sides = [(mode, directory, label, imports) for mode, directory in modes
                 for label, imports in (("app", APP_IMPORTS), ("first page", FIRST_REQUEST),
                                        ("floor", FLOOR_IMPORTS))]
        for _ in range(WARMUP):
            for _, directory, _, imports in sides:
                _child(directory, imports)
        results: dict[tuple[str, str], list[dict]] = {(mode, label): [] for mode, _, label, _ in sides}
        for i in range(RUNS):
            for mode, directory, label, imports in (sides if i % 2 == 0 else sides[::-1]):
                results[(mode, label)].append(_child(directory, imports))
        if _pyc_count(source):
            raise RuntimeError("the no-.pyc runs wrote bytecode (PYTHONDONTWRITEBYTECODE ignored?)")
        size_mb = archive.stat().st_size / 1e6
        section = "packaged cold start"
        rows = _archive_rows(archive, section)
        rows.append(Row("packaged: unzip deployment.zip (fastest of 2)", ms(min(unzip_s)), section=section))
        for mode, _ in modes:
            app_s = [r["seconds"] for r in results[(mode, "app")]]
            first_s = [r["seconds"] for r in results[(mode, "first page")]]
            floor_s = [r["seconds"] for r in results[(mode, "floor")]]
            ratio = median(app_s) / median(floor_s)
            rows += [
                Row(f"packaged ({mode}): import app", f"{spread(app_s)} "
                    f"({results[(mode, 'app')][-1]['modules']} modules)", section=section),
                Row(f"packaged ({mode}): import app + first page GET /ingresar", f"{spread(first_s)} "
                    f"({results[(mode, 'first page')][-1]['modules']} modules), "
                    f"{median(first_s) / median(floor_s):.2f}x floor", section=section),
                Row(f"packaged ({mode}): floor chalice+boto3+pynamodb", spread(floor_s),
                    section=section),
                Row(f"packaged ({mode}): app / floor", f"{ratio:.2f}x", f"<= {BUDGET_RATIO:.2f}x",
                    within(ratio, BUDGET_RATIO), section=section),
            ]
        saved = (median([r["seconds"] for r in results[("no .pyc", "app")]])
                 - median([r["seconds"] for r in results[("shipped", "app")]]))
        rows.append(Row("packaged: shipped bytecode saves on import app", ms(saved), "-", INFO,
                        section=section))
        notes = [
            f"packaged cold start: {origin} ({size_mb:.1f} MB), unzipped; median of {RUNS} fresh "
            f"`python -S -c` per side and mode (+{WARMUP} discarded), sys.path[0] = the unzipped "
            "package and the standard library only (no site-packages), PYTHONDONTWRITEBYTECODE=1; "
            "'shipped' reads the package's own .pyc, 'no .pyc' compiles every module on each run.",
        ]
        return rows, notes
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if build is not None:
            shutil.rmtree(build, ignore_errors=True)


if __name__ == "__main__":
    from bench.report import render

    measured, measure_notes = run()
    sys.stdout.write(render(measured, title="packaged cold start", notes=measure_notes))
