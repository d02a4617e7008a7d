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
    version: int = 0
