"""One obligations import at a time: closing the obligations a full file does not list is only
right if no other import stamps obligations meanwhile. A lock with a lease (longer than a Lambda
lives, so a crashed import frees it), renewed by a long import."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from chalicelib.services.repositories import ImportStorage

LOCK_ID = "lock#obligations"
LOCK_LEASE = timedelta(minutes=20)
LOCK_RENEW_SECONDS = 120.0  # a long import (the command line) renews its lease this often


class ImportBusy(Exception):
    """Another obligations import holds the lock: try again once it ends (or its lease runs out)."""

    def __init__(self, holder: str | None, lease_until: datetime | None) -> None:
        self.holder, self.lease_until = holder, lease_until
        until = f" (hasta {lease_until.isoformat(timespec='seconds')})" if lease_until else ""
        super().__init__(f"otra importación de obligaciones está en curso: lote {holder}{until}; "
                         "intente de nuevo cuando termine")


class ImportLock:
    """``lock#obligations`` in the imports table, held by one import's batch id. Its times are
    ``now`` (when the import started) plus the seconds ``monotonic`` counted since."""

    def __init__(self, storage: ImportStorage, batch_id: str, now: datetime, source: str | None,
                 *, monotonic: Callable[[], float]) -> None:
        self.storage, self.batch_id, self.now, self.source = storage, batch_id, now, source
        self.monotonic = monotonic
        self._started = self._renewed = monotonic()

    def _clock(self) -> datetime:
        return self.now + timedelta(seconds=self.monotonic() - self._started)

    def acquire(self) -> None:
        """Take the lock, or raise :class:`ImportBusy` naming the import that holds it."""
        while True:
            now = self._clock()
            held = self.storage.acquire_lock(LOCK_ID, holder=self.batch_id, kind="obligations",
                                             source=self.source, now=now,
                                             lease_until=now + LOCK_LEASE)
            if held is None:
                return
            if held.holder is not None:
                raise ImportBusy(held.holder, held.lease_until)
            # released between the attempt and the read: try again

    def renew(self) -> None:
        """Extend the lease every LOCK_RENEW_SECONDS; ImportBusy if another import took it."""
        if self.monotonic() - self._renewed < LOCK_RENEW_SECONDS:
            return
        if not self.storage.renew_lock(LOCK_ID, holder=self.batch_id,
                                       lease_until=self._clock() + LOCK_LEASE):
            raise ImportBusy(None, None)
        self._renewed = self.monotonic()

    def release(self) -> None:
        self.storage.release_lock(LOCK_ID, holder=self.batch_id)
