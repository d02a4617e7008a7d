"""Run every measure, print the table, write ``test-artifacts/bench.txt``.

Exit 0 when every row was measured (budgets exceeded show as ``OVER``); 1 when the harness failed.
"""

from __future__ import annotations

import contextlib
import io
import platform
import sys
import time
import traceback
from datetime import UTC, datetime

from bench import (
    coldstart,
    env,
    login_timing,
    overhead,
    packaged_cold_start,
    roundtrips,
)
from bench import imports as import_measure  # back office
from bench.report import ERROR, Row, render

#: (name, run) in the order they run; cold start first, while this process is still idle.
MEASURES = [
    ("cold start", coldstart.run),
    ("packaged cold start", packaged_cold_start.run),  # production readiness
    ("dynamodb round trips", roundtrips.run),
    ("login time", login_timing.run),
    ("warm request overhead", overhead.run),
    ("import of 100,000 obligations", import_measure.run),  # back office
]


def main() -> int:
    rows: list[Row] = []
    notes: list[str] = []
    failed = False
    started = time.perf_counter()
    for name, run in MEASURES:
        t0 = time.perf_counter()
        print(f"bench: {name}...", file=sys.stderr, flush=True)
        try:
            # The app's metric lines (EMF JSON on stdout) would bury the table: keep them out.
            with contextlib.redirect_stdout(io.StringIO()):
                measured, measure_notes = run()
        except Exception as exc:
            traceback.print_exc()
            rows.append(Row(name, f"error: {type(exc).__name__}: {exc}"[:120], "-", ERROR, name))
            failed = True
            continue
        rows.extend(measured)
        notes.extend(measure_notes)
        failed = failed or any(r.verdict == ERROR for r in measured)
        print(f"bench: {name} done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    title = (f"Sucursal Virtual - make bench ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
             f"Python {platform.python_version()}, {platform.machine()}, "
             f"{_cpus()} CPUs, {elapsed:.0f} s)")
    text = render(rows, title=title, notes=notes)
    sys.stdout.write(text)
    env.ARTIFACTS.mkdir(exist_ok=True)
    (env.ARTIFACTS / "bench.txt").write_text(text, encoding="utf-8")
    return 1 if failed else 0


def _cpus() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
