"""The import's bounds (tests patch them here: every module reads them through this one)."""

from __future__ import annotations

from datetime import timedelta

BATCH_SIZE = 100  # rows compared with what is stored in one batch (BatchGetItem takes 100 keys)
MAX_MESSAGES = 1000  # errors and warnings kept in a report (the rest are only counted)
MAX_LINE_BYTES = 1 << 20
CHUNK_BYTES = 1 << 16
PROGRESS_EVERY = 10_000
UPDATE_WORKERS = 8
CONFLICT_RETRIES = 3
FUTURE_CUTOFF_SLACK = timedelta(minutes=10)
MAX_AMOUNT_DIGITS = 15
MEMBER_CACHE = 1024  # documents known to exist (or not): bounded, so memory stays flat
CLOSE_GUARD_MIN = 100  # a file may always close this many absent obligations
