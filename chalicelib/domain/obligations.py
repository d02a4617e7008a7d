"""What a member owes, as the core system computed it at its cut-off, plus the portal's payments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class Obligation:
    """An aporte, crédito, ahorro or convenio of a member (SPEC §1), in integer pesos.

    ``pending_payment_id`` is the open payment holding it (PSE allows one at a time);
    ``portal_payments`` the approved portal payments the core system has not seen yet
    (payment id → ``{"amount", "at", "reference"}``). ``version`` is checked on every write, so a
    payment's approval and an import never overwrite each other.
    """

    document_number: str
    obligation_id: str
    type: str  # APORTE | CREDITO | AHORRO | CONVENIO
    product_number: str
    description: str
    due_date: str  # YYYY-MM-DD
    amount_due: int
    minimum_amount: int
    maximum_amount: int
    cutoff: datetime  # when the core system computed the balance
    status: str = "OPEN"  # OPEN | CLOSED (absent from a newer full file)
    pending_payment_id: str | None = None
    pending_reference: str | None = None
    portal_payments: dict[str, dict[str, Any]] | None = None
    updated_at: datetime | None = None
    import_batch: str | None = None  # the last import that listed it
    import_line: int | None = None  # its line in that file
    open_shard: str | None = None  # "0".."15" while OPEN (the import's index of open obligations)
    closed_at: datetime | None = None
    instalment_parts: dict[str, int] | None = None  # {part: pesos} at the cut-off (domain/allocation)
    opened_on: str | None = None  # YYYY-MM-DD: when the product was opened (PSE's anti-fraud data)
    version: int = 0

    def lock_for(self, payment_id: str, reference: str) -> ObligationChange:
        """The open payment ``payment_id`` takes the obligation (PSE: one payment at a time)."""
        return ObligationChange(self.document_number, self.obligation_id, self.version,
                                lock=(payment_id, reference))

    def apply(self, change: ObligationChange) -> None:
        """What the stored obligation becomes once ``change`` is written."""
        if change.lock is not None:
            self.pending_payment_id, self.pending_reference = change.lock
            if self.portal_payments is None:
                self.portal_payments = {}  # so an approval can add its entry
        if change.balances is not None:
            self.amount_due, self.minimum_amount, self.maximum_amount = change.balances
        if change.portal_payment is not None:
            payment_id, entry = change.portal_payment
            self.portal_payments = {**(self.portal_payments or {}), payment_id: dict(entry)}
        if change.release:
            self.pending_payment_id = self.pending_reference = None


@dataclass(frozen=True)
class ObligationChange:
    """What a payment does to one obligation, written only over ``version`` (the version it was
    decided from, so a balance is never decremented twice nor over an import's new one): taking
    its lock, applying an approved amount, releasing the lock."""

    document_number: str
    obligation_id: str
    version: int
    lock: tuple[str, str] | None = None  # (payment id, reference) that now holds it
    balances: tuple[int, int, int] | None = None  # the new (amount_due, minimum, maximum)
    portal_payment: tuple[str, dict[str, Any]] | None = None  # (payment id, entry) applied
    has_portal_payments: bool = True  # the obligation already holds a map of them (a lock makes one)
    release: bool = False  # the paying payment's lock is released

    @property
    def label(self) -> str:
        return f"obligation:{self.obligation_id}"
