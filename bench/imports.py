"""Measure: import of 100,000 obligations in one file (SPEC §7: within one Lambda invocation,
memory flat as the file grows).

Three parts, because moto cannot hold 100,000 obligations quickly (its response serializer costs
milliseconds per returned item, its GSI queries visit every item of the table, and it keeps every
item in this process, which tracemalloc would count as the importer's):

1. **importer, 100,000 rows**: the whole importer (streamed reading, decoding, validation,
   batching, the member check, every request serialized) against a DynamoDB that answers at once
   and counts (tests/import_support.CountingDynamo: every member exists, no obligation does, so
   every row is an insert; the closing queries find nothing). Wall time, and the DynamoDB calls
   made: what the import costs besides DynamoDB's own latency.
2. **peak traced memory** (tracemalloc) of the same run at 10,000 and 100,000 rows: flat means the
   100,000-row peak is within 1.25x of the 10,000-row one.
3. **moto end to end, 1,000 rows**: the real path on moto (insert, the same file again, then a
   newer file without 10 % of the obligations: closing through the index), for its call counts.

A projection of the 100,000-row import in AWS adds assumed DynamoDB latencies to part 1's calls
(stated in the notes): it is an estimate, not a measure.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from bench import env
from bench.report import INFO, Row, within
from tests.import_support import CountingDynamo, GeneratedCsv, member_lines, obligation_lines

ROWS = 100_000
SMALL = 10_000
MOTO_ROWS = 500
FLAT_RATIO = 1.25
PEAK_BUDGET_MB = 16.0
LAMBDA_SECONDS = 15 * 60
#: Assumed DynamoDB latencies for the projection (single-digit ms per item operation in-region;
#: a 25-item BatchWriteItem or 100-key BatchGetItem a few times that).
ASSUMED_BATCH_CALL_S = 0.025
ASSUMED_ITEM_CALL_S = 0.008
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
SECTION = "import of 100,000 obligations"


def _importer_run(rows: int, *, trace: bool) -> tuple[float, int, object, CountingDynamo]:
    from chalicelib.adapters.dynamo.models import Member
    from chalicelib.services.imports import import_obligations

    with CountingDynamo(Member.Meta.table_name) as fake:
        stream = GeneratedCsv(obligation_lines(rows))
        gc.collect()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        report = import_obligations(stream, now=NOW)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
    if report.inserted != rows or report.rejected:
        raise RuntimeError(f"unexpected report: {report.summary()}")
    return elapsed, peak, report, fake


def _moto_end_to_end() -> tuple[list[Row], list[str]]:
    from chalicelib.adapters.dynamo.models import Obligation
    from chalicelib.services.imports import import_members, import_obligations
    from tests.payment_support import DynamoCalls

    class _Patch:  # DynamoCalls wants a pytest monkeypatch: this is enough of one
        def setattr(self, target, name, value):  # type: ignore[no-untyped-def]
            self.undo = (target, name, getattr(target, name))
            setattr(target, name, value)

    rows: list[Row] = []
    with env.aws():
        members = import_members(GeneratedCsv(member_lines(MOTO_ROWS // 5)), now=NOW)
        assert members.inserted == MOTO_ROWS // 5
        patch = _Patch()
        calls = DynamoCalls(patch)  # type: ignore[arg-type]
        try:
            timings = []
            for label, lines, now in (
                ("full file, new", obligation_lines(MOTO_ROWS), NOW),
                ("same file again", obligation_lines(MOTO_ROWS), NOW + timedelta(hours=1)),
                ("newer file, 10 % absent",
                 (line for i, line in enumerate(
                     obligation_lines(MOTO_ROWS, cutoff="2026-11-22T00:00:00-05:00")) if i == 0 or i % 10),
                 NOW + timedelta(hours=2)),
            ):
                calls.reset()
                started = time.perf_counter()
                report = import_obligations(GeneratedCsv(lines), now=now)
                elapsed = time.perf_counter() - started
                counted = {op: calls.operations.count(op) for op in sorted(set(calls.operations))}
                timings.append((label, elapsed, report, counted))
        finally:
            target, name, original = patch.undo
            setattr(target, name, original)
        open_count = sum(1 for o in Obligation.query("10000000") if o.status == "OPEN")
    for label, elapsed, report, counted in timings:
        calls_text = ", ".join(f"{op} {n}" for op, n in counted.items())
        rows.append(Row(f"moto, {MOTO_ROWS:,} rows: {label}",
                        f"{elapsed:.1f} s; {report.summary()}", "-", INFO, SECTION))
        rows.append(Row("  DynamoDB calls", calls_text, "-", INFO, SECTION))
    same, newer = timings[1][2], timings[2][2]
    ok = same.inserted == same.updated == same.closed == 0 and newer.closed == MOTO_ROWS // 10
    rows.append(Row("moto: re-send changes nothing; absent ones closed",
                    f"re-send inserted/updated/closed {same.inserted}/{same.updated}/{same.closed}; "
                    f"newer file closed {newer.closed} (member 10000000 keeps {open_count} open)",
                    f"0/0/0; {MOTO_ROWS // 10}", "ok" if ok else "OVER", SECTION))
    return rows, []


def run() -> tuple[list[Row], list[str]]:
    with env.aws():  # tables exist (the counting DynamoDB answers first; S3 etc. stay on moto)
        _importer_run(500, trace=False)  # warm-up: imports, caches
        elapsed, _, report, fake = _importer_run(ROWS, trace=False)
        small_time, small_peak, _, _ = _importer_run(SMALL, trace=True)
        _, peak, _, _ = _importer_run(ROWS, trace=True)
    ops = fake.operations
    batch_calls = ops["BatchGetItem"] + ops["BatchWriteItem"] + ops["Query"]
    item_calls = ops["PutItem"] + ops["UpdateItem"] + ops["DeleteItem"] + ops["GetItem"]
    projected = elapsed + batch_calls * ASSUMED_BATCH_CALL_S + item_calls * ASSUMED_ITEM_CALL_S
    ratio = peak / small_peak
    rows = [
        Row(f"importer: {ROWS:,} rows, DynamoDB answered by a counter",
            f"{elapsed:.1f} s ({ROWS / elapsed:,.0f} rows/s)", "-", INFO, SECTION),
        Row("  DynamoDB calls made", ", ".join(f"{op} {n}" for op, n in sorted(ops.items())),
            "-", INFO, SECTION),
        Row("  projected in AWS (+ assumed latencies, sequential)", f"{projected:.0f} s",
            f"<= {LAMBDA_SECONDS} s", within(projected, LAMBDA_SECONDS), SECTION),
        Row(f"peak traced memory, {SMALL:,} rows", f"{small_peak / 1e6:.2f} MB", "-", INFO, SECTION),
        Row(f"peak traced memory, {ROWS:,} rows", f"{peak / 1e6:.2f} MB",
            f"<= {PEAK_BUDGET_MB:.0f} MB", within(peak / 1e6, PEAK_BUDGET_MB), SECTION),
        Row(f"  growth {SMALL:,} -> {ROWS:,} rows", f"{ratio:.2f}x", f"<= {FLAT_RATIO:.2f}x",
            within(ratio, FLAT_RATIO), SECTION),
    ]
    moto_rows, _ = _moto_end_to_end()
    rows.extend(moto_rows)
    notes = [
        f"import: {ROWS:,}-row obligations.csv generated while read ({report.rows:,} rows, "
        f"{ROWS // 5:,} members, 64 KiB reads), bench.imports; part 1 answers DynamoDB with "
        "tests/import_support.CountingDynamo (every member exists, no obligation does: all inserts; "
        "the closing's index queries find nothing), so the time is the importer's own CPU: "
        "reading, validation, batching and request serialization; tracemalloc slows the traced "
        f"runs ({small_time:.1f} s for {SMALL:,} rows), which are only used for the peak.",
        f"import projection: measured time + {ASSUMED_BATCH_CALL_S * 1000:.0f} ms per batch call or "
        f"query + {ASSUMED_ITEM_CALL_S * 1000:.0f} ms per single-item call, all sequential (the "
        "updates of changed rows run 8 at a time, which this ignores): an estimate of the Lambda's "
        "duration, not a measure. A re-sent file adds one UpdateItem per row (the stamp that "
        "closing needs): about 100,000 x 8 ms / 8 workers = 100 s more.",
        f"import moto part: {MOTO_ROWS:,} rows end to end on moto in process (the real DynamoDB "
        "path, conditional writes and the open_by_import index); moto's times are not DynamoDB's.",
    ]
    return rows, notes


if __name__ == "__main__":  # python -m bench.imports
    from bench.report import render

    measured, measure_notes = run()
    print(render(measured, title="bench.imports", notes=measure_notes))
