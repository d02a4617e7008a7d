"""The back office's own records: exports of approved payments, reminder claims, and the small
read model of a payment the collections summary counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

OPEN = "OPEN"  # claiming, its file not written yet
COMPLETE = "COMPLETE"


@dataclass
class Export:
    """One export of approved payments for the core system (SPEC §4).

    Written OPEN, with a lease, before any payment is claimed; COMPLETE once its file is stored.
    Another run may finish an OPEN export only after ``lease_until`` (its process is surely gone)."""

    export_id: str  # YYYYMMDD-HHMMSS (Colombia) + random suffix
    status: str  # OPEN | COMPLETE
    created_at: datetime
    requested_by: str  # "system:schedule" or "staff:<identity>"
    key: str | None = None  # the file's object key, once written
    rows: int = 0  # CSV data rows: one per (payment, obligation)
    payments: int = 0
    total_amount: int = 0  # COP, the sum of the payments' totals
    completed_at: datetime | None = None
    lease_until: datetime | None = None

    @property
    def is_complete(self) -> bool:
        return self.status == COMPLETE

    def completed(self, *, key: str, rows: int, payments: int, total_amount: int,
                  now: datetime) -> None:
        """OPEN → COMPLETE with what the file holds."""
        self.status, self.key, self.completed_at, self.lease_until = COMPLETE, key, now, None
        self.rows, self.payments, self.total_amount = rows, payments, total_amount


@dataclass(frozen=True)
class ReminderClaim:
    """A reminder about to be sent: whoever stores the claim first sends it (at most once).

    ``key`` is ``due#{document}#{obligation}#{due_date}`` or ``pending#{payment}``; the claim is
    forgotten after ``expires_at`` (long after the obligation or payment stopped mattering)."""

    key: str
    kind: str  # due | pending
    document_number: str
    sent_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class PaymentFigures:
    """What the collections summary counts of a payment: ``paid`` is (obligation type, pesos)."""

    status: str
    amount: int
    created_at: datetime
    paid: tuple[tuple[str, int], ...] = ()
