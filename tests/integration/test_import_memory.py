"""Memory of the obligations import stays flat as the file grows (SPEC §7): 100,000 rows.

The file is generated while it is read and DynamoDB is answered by a counter (tests/import_support):
moto would keep every item in this process, and tracemalloc would count them as the importer's.
Slow-ish (tracemalloc makes Python several times slower): about 40 s. ``make bench`` measures the
same (bench/imports.py) and reports the untraced time.
"""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime

from tests.import_support import CountingDynamo, GeneratedCsv, obligation_lines

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
ROWS = 100_000
PEAK_LIMIT = 8_000_000  # bytes; measured about 0.85 MB
FLAT = 1.25  # the peak over 100,000 rows may exceed the peak over the first 10,000 by 25 % at most


def test_peak_memory_is_flat_from_10_000_to_100_000_rows(aws: None) -> None:
    from chalicelib.adapters.dynamo.models import Member
    from chalicelib.services.imports import import_obligations

    peaks: dict[int, int] = {}

    def progress(rows: int) -> None:  # every 10,000 rows
        peaks[rows] = tracemalloc.get_traced_memory()[1]

    with CountingDynamo(Member.Meta.table_name) as dynamo:
        import_obligations(GeneratedCsv(obligation_lines(300)), now=NOW)  # warm-up: lazy imports
        stream = GeneratedCsv(obligation_lines(ROWS))
        gc.collect()
        tracemalloc.start()
        try:
            report = import_obligations(stream, now=NOW, progress=progress)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert report.inserted == ROWS and report.rejected == 0 and stream.size > ROWS * 80
    assert sorted(peaks) == list(range(10_000, ROWS + 1, 10_000))
    assert peak < PEAK_LIMIT, f"peak {peak / 1e6:.2f} MB"
    assert peak <= peaks[10_000] * FLAT, (
        f"first 10,000 rows: {peaks[10_000] / 1e6:.2f} MB; all {ROWS:,}: {peak / 1e6:.2f} MB")
    # Bounded batches: one BatchGetItem for the obligations and one for the members per 100 rows,
    # BatchWriteItem 25 at a time; the closing looked through the index (16 shards x 2, twice).
    assert dynamo.operations["BatchGetItem"] == 2 * 300 // 100 + 2 * ROWS // 100
    assert dynamo.operations["BatchWriteItem"] == 300 // 25 + ROWS // 25
    assert report.closing == "done"
