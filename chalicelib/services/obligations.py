"""What a member owes, as the obligations page and ``GET /api/v1/obligations`` show it.

One DynamoDB round trip: a query on the member's partition. Everything the list shows lives on
the obligation item, including the reference of the payment holding it (denormalized when the
payment locks it), so no payment is read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

from chalicelib.context import Context
from chalicelib.domain import allocation
from chalicelib.domain import payments as rules
from chalicelib.domain.obligations import Obligation
from chalicelib.services import texts


@dataclass(frozen=True)
class PortalPayment:
    """The newest payment applied in the portal to an obligation (not yet known to the core)."""

    amount: int
    at: datetime | None
    reference: str


@dataclass(frozen=True)
class ObligationView:
    id: str
    type: str  # APORTE | CREDITO | AHORRO | CONVENIO
    type_label: str
    product_number: str  # masked when long
    description: str
    due_date: date
    overdue_days: int
    amount_due: int
    minimum_amount: int
    maximum_amount: int
    pending_payment_id: str | None
    pending_reference: str | None
    # The instalment's parts still owed, in the cooperative's order of application;
    # None when the core system did not give them.
    parts: allocation.Parts | None = None
    last_payment: PortalPayment | None = None

    @property
    def state(self) -> str:
        """``pending`` (at the bank), ``overdue``, ``due``, or ``paid`` / ``up_to_date`` when the
        instalment owes nothing (``paid``: a portal payment covered it)."""
        if self.pending_payment_id:
            return "pending"
        if self.amount_due > 0:
            return "overdue" if self.overdue_days > 0 else "due"
        return "paid" if self.last_payment else "up_to_date"

    # The choices the obligations form offers: never a $ 0 option.
    @property
    def offers_due(self) -> bool:
        return self.amount_due > 0

    @property
    def offers_minimum(self) -> bool:
        return 0 < self.minimum_amount < self.amount_due

    @property
    def other_minimum(self) -> int:
        return max(self.minimum_amount, 1)

    @property
    def offers_other(self) -> bool:
        return self.maximum_amount > self.amount_due and self.maximum_amount >= self.other_minimum

    @property
    def breakdown(self) -> tuple[allocation.AllocationLine, ...]:
        """The "detalle de la cuota": the parts still owed, with their Spanish labels."""
        return allocation.breakdown(self.parts or ())


def due_date_of(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        return date.max  # a malformed import sorts last instead of breaking the page


def outstanding_parts(obligation: Obligation, order: Sequence[str]) -> allocation.Parts | None:
    """The parts of the instalment still owed (the core's parts less the portal payments since
    its cut-off), in ``order``; None when the core gave no parts."""
    if obligation.instalment_parts is None:
        return None
    return allocation.outstanding(allocation.in_order(obligation.instalment_parts, order),
                                  int(obligation.amount_due))


def last_payment(obligation: Obligation) -> PortalPayment | None:
    entries = obligation.portal_payments or {}
    newest: PortalPayment | None = None
    for entry in entries.values():
        try:
            at = datetime.fromisoformat(str(entry.get("at")))
        except ValueError:
            at = None
        candidate = PortalPayment(int(entry.get("amount") or 0), at, str(entry.get("reference") or ""))
        if newest is None or (at and (newest.at is None or at > newest.at)):
            newest = candidate
    return newest


def to_view(obligation: Obligation, today: date, order: Sequence[str],
            product_number: str | None = None) -> ObligationView:
    due = due_date_of(obligation.due_date)
    owes = int(obligation.amount_due) > 0  # "en mora" only while the instalment owes something
    return ObligationView(
        id=obligation.obligation_id,
        type=obligation.type,
        type_label=texts.type_label(obligation.type),
        product_number=product_number or rules.mask_number(obligation.product_number or ""),
        description=obligation.description,
        due_date=due,
        overdue_days=rules.overdue_days(due, today) if owes and due != date.max else 0,
        amount_due=int(obligation.amount_due),
        minimum_amount=int(obligation.minimum_amount),
        maximum_amount=int(obligation.maximum_amount),
        pending_payment_id=obligation.pending_payment_id,
        pending_reference=obligation.pending_reference,
        parts=outstanding_parts(obligation, order),
        last_payment=last_payment(obligation),
    )


def is_payable(obligation: Obligation) -> bool:
    return obligation.status == "OPEN" and (obligation.amount_due > 0 or obligation.maximum_amount > 0)


def list_obligations(ctx: Context, document_number: str) -> list[ObligationView]:
    """The member's open obligations with something to pay, by due date."""
    today = rules.colombia_today(ctx.now())
    order = ctx.settings.allocation_order
    with ctx.unit_of_work() as uow:
        found = [o for o in uow.obligations.of_member(document_number) if is_payable(o)]
    masks = rules.distinct_masks(o.product_number or "" for o in found)
    views = [to_view(o, today, order, masks.get((o.product_number or "").strip())) for o in found]
    return sorted(views, key=lambda v: (v.due_date, v.id))


@dataclass(frozen=True)
class Standing:
    """"Lo que debe hoy": what is owed now, the earliest due date, the overdue part (and its
    obligations), and the payments still pending at the bank (reference, payment id)."""

    total_due: int
    next_due_date: date | None
    overdue_total: int
    overdue_ids: tuple[str, ...]
    pending: tuple[tuple[str, str], ...]

    @property
    def overdue_query(self) -> str:
        """The summary's address with the overdue instalments chosen ("Pagar lo vencido")."""
        return urlencode([(f"opcion_{oid}", "due") for oid in self.overdue_ids])


def standing(views: Sequence[ObligationView]) -> Standing:
    payable = [v for v in views if not v.pending_payment_id and v.amount_due > 0]
    overdue = [v for v in payable if v.overdue_days > 0]
    pending = {v.pending_payment_id: v.pending_reference or "" for v in views if v.pending_payment_id}
    return Standing(
        total_due=sum(v.amount_due for v in payable),
        next_due_date=min((v.due_date for v in payable if v.due_date != date.max), default=None),
        overdue_total=sum(v.amount_due for v in overdue),
        overdue_ids=tuple(v.id for v in overdue),
        pending=tuple((reference, pid) for pid, reference in pending.items() if pid),
    )
