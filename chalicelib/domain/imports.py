"""The core system's file against what the portal stored: the cut-off rule of an obligations import.

The core system computes each obligation's balance at a moment, its *cut-off* (``cutoff``). The
portal meanwhile applies payments members make (``Obligation.portal_payments``: payment id →
``{"amount", "at", "reference"}``) that the core system learns of only when an export reaches it.
:func:`apply_cutoff_rule` decides, for one row of the file and the obligation as stored:

1. **An older cut-off never overwrites a newer one**: a row whose cut-off is before the stored
   one is *stale* and changes nothing (an equal cut-off is a re-sent file and goes on).
2. **The portal payments the core knows are dropped**: a payment the core system knows at the
   row's cut-off ``C`` is already in the row's balance. It knows one when an export claimed it at
   or before ``C`` (``exported_at <= C``: approved before ``C`` is not enough, the money reaches
   the core with the export); an entry without a payment record (loaded by hand) falls back to
   its own time (``at <= C``). An entry whose time cannot be read is kept (and reported).
   The dropped ones are *confirmed*: the import marks them "Aplicado en la cooperativa".
3. **The others are subtracted**: amount due, minimum and maximum alike become
   ``max(0, file amount - sum of the portal payments kept)``.
4. **An open payment's lock is never touched** (``pending_payment_id`` and
   ``pending_reference`` stay as stored), and the row reopens a CLOSED obligation.
5. The rest of the row (type, product, description, due date, cut-off, the instalment's parts,
   the product's opening date)
   is taken as given; nothing differing and no payment dropped: the row is *unchanged*.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.obligations import Obligation

OPEN_SHARDS = 16  # partitions of the index of open obligations (Obligation.open_shard "0".."15")


def key_digest(*parts: str) -> int:
    """A stable 64-bit digest of a key (the same in every process, unlike ``hash``)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def open_shard(document_number: str, obligation_id: str) -> str:
    """The obligation's partition of the index of open obligations (a hash of its key)."""
    return str(key_digest(document_number, obligation_id) % OPEN_SHARDS)


@dataclass(slots=True)
class ObligationRow:
    """One valid row of ``obligations.csv``: an obligation as the core system computed it at
    ``cutoff`` (``line`` is the row's line in the file, ``cutoff_text`` the cut-off as written)."""

    line: int
    document_number: str
    obligation_id: str
    type: str
    product_number: str
    description: str
    due_date: str
    amount_due: int
    minimum_amount: int
    maximum_amount: int
    cutoff: datetime
    cutoff_text: str
    parts: dict[str, int] | None = None  # the instalment's non-zero parts; None: not given
    opened_on: str | None = None  # the product's opening date, YYYY-MM-DD; None: not given

    @property
    def key(self) -> tuple[str, str]:
        return self.document_number, self.obligation_id


def new_obligation(row: ObligationRow, *, batch_id: str, now: datetime) -> Obligation:
    """The obligation a row creates: OPEN, stamped with the import that listed it."""
    return Obligation(
        document_number=row.document_number, obligation_id=row.obligation_id, type=row.type,
        product_number=row.product_number, description=row.description, due_date=row.due_date,
        amount_due=row.amount_due, minimum_amount=row.minimum_amount,
        maximum_amount=row.maximum_amount, cutoff=row.cutoff, status="OPEN", updated_at=now,
        import_batch=batch_id, import_line=row.line,
        open_shard=open_shard(row.document_number, row.obligation_id), instalment_parts=row.parts,
        opened_on=row.opened_on)


def is_stale(row_cutoff: datetime, stored_cutoff: datetime | None) -> bool:
    """Rule 1: a cut-off before the stored one never overwrites it."""
    return stored_cutoff is not None and row_cutoff < stored_cutoff


def payment_time(entry: Mapping[str, Any]) -> datetime | None:
    """A portal payment's own time, or None when it is not an aware ISO time."""
    try:
        moment = datetime.fromisoformat(str(entry.get("at")))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def payments_to_look_up(row: ObligationRow, stored: Obligation) -> list[str]:
    """The portal payments dated at or before the row's cut-off: only their export times can
    make them known to the core (rule 2); the caller reads those for :func:`apply_cutoff_rule`."""
    if is_stale(row.cutoff, stored.cutoff):
        return []
    return [pid for pid, entry in (stored.portal_payments or {}).items()
            if (moment := payment_time(entry)) is not None and moment <= row.cutoff]


def known_to_core(candidates: Iterable[str], exported_at: Mapping[str, datetime | None],
                  cutoff: datetime) -> set[str]:
    """Rule 2 for the payments dated at or before ``cutoff``: ``exported_at`` has an entry for
    each that has a payment record (None: never exported); one without a record is known."""
    return {pid for pid in candidates
            if pid not in exported_at or ((at := exported_at[pid]) is not None and at <= cutoff)}


@dataclass(frozen=True)
class CutoffDecision:
    """What one row does to its stored obligation.

    ``changes``: the attributes to write, name → new value (None: remove it); ``kept``: the portal
    payments still subtracted; ``confirmed``: those the core now knows (dropped, to be marked
    "Aplicado en la cooperativa" before the obligation is written); ``undated``: payment ids
    whose time could not be read (kept)."""

    stale: bool
    changes: dict[str, Any] = field(default_factory=dict)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)
    confirmed: dict[str, dict[str, Any]] = field(default_factory=dict)
    undated: list[str] = field(default_factory=list)

    @property
    def payments_dropped(self) -> bool:
        return bool(self.confirmed)

    @property
    def reopens(self) -> bool:
        """A CLOSED obligation listed again: OPEN, without its closing time."""
        return "status" in self.changes

    @property
    def outcome(self) -> str:
        """``stale``, ``unchanged`` (at most its index shard is set) or ``updated``."""
        if self.stale:
            return "stale"
        only_shard = not self.changes or list(self.changes) == ["open_shard"]
        return "unchanged" if only_shard and not self.payments_dropped else "updated"


def apply_cutoff_rule(row: ObligationRow, stored: Obligation,
                      exported_at: Mapping[str, datetime | None]) -> CutoffDecision:
    """The cut-off rule (see the module): ``exported_at`` answers :func:`payments_to_look_up`
    (payment id → its ``exported_at``, for those that have a payment record)."""
    if is_stale(row.cutoff, stored.cutoff):
        return CutoffDecision(stale=True)
    payments = stored.portal_payments or {}
    undated = [pid for pid, entry in payments.items() if payment_time(entry) is None]
    known = known_to_core(payments_to_look_up(row, stored), exported_at, row.cutoff)
    kept = {pid: entry for pid, entry in payments.items() if pid not in known}
    paid_after = sum(int(entry.get("amount") or 0) for entry in kept.values())
    wanted: dict[str, Any] = {
        "type": row.type,
        "product_number": row.product_number,
        "description": row.description,
        "due_date": row.due_date,
        "amount_due": max(0, row.amount_due - paid_after),
        "minimum_amount": max(0, row.minimum_amount - paid_after),
        "maximum_amount": max(0, row.maximum_amount - paid_after),
        "cutoff": row.cutoff,
        "status": "OPEN",
        "open_shard": open_shard(row.document_number, row.obligation_id),
        "instalment_parts": row.parts,
        "opened_on": row.opened_on,
    }
    changes = {name: value for name, value in wanted.items() if getattr(stored, name) != value}
    return CutoffDecision(stale=False, changes=changes, kept=kept,
                          confirmed={pid: payments[pid] for pid in payments if pid in known},
                          undated=undated)
