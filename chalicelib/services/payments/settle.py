"""Applying a status to a payment exactly once: the plan, the obligations' changes, review flags."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.gateways.base import GatewayTransaction
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import PaymentApproved, PaymentFlagged, PaymentRejected
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import (
    APPROVED,
    LATE_APPROVAL,
    PENDING,
    GatewayEventRecord,
    Payment,
    Review,
)
from chalicelib.observability import emit_metric, log_event
from chalicelib.services.audit import audit_entry
from chalicelib.services.payments.core import poll_shard
from chalicelib.services.unit_of_work import UnitOfWork

METRIC_FLAGGED = "PaymentsFlaggedForReview"  # the names devtools/infra.py alarms on
LOST_IF_APPROVED = frozenset({rules.REJECTED, rules.FAILED})
RACE_ATTEMPTS = 5


def news(payment: Payment, transaction: GatewayTransaction | None) -> dict[str, Any]:
    """What the gateway tells that we did not know yet (its id, the CUS, the bank's URL...)."""
    if transaction is None:
        return {}
    found: dict[str, Any] = {}
    if transaction.gateway_id and not payment.gateway_id:
        found["gateway_id"] = transaction.gateway_id
    if transaction.cus and not payment.cus:
        found["cus"] = transaction.cus
    if transaction.bank_url and transaction.status == PENDING and payment.bank_url != transaction.bank_url:
        found["bank_url"] = transaction.bank_url
    if transaction.bank_name and not payment.bank_name:
        found["bank_name"] = transaction.bank_name
    if transaction.status_message and transaction.status_message != payment.status_message:
        found["status_message"] = transaction.status_message[:500]
    return found


def learn(payment: Payment, found: dict[str, Any], at: datetime) -> None:
    for name, value in found.items():
        setattr(payment, name, value)
    payment.updated_at = at


def mismatch(payment: Payment, transaction: GatewayTransaction | None) -> str | None:
    """Why the gateway's transaction is not this payment's, if it is not."""
    if transaction is None:
        return None
    if transaction.reference != payment.reference:
        return "reference_mismatch"
    if int(transaction.amount) != int(payment.amount):
        return "amount_mismatch"
    if payment.gateway_id and transaction.gateway_id and transaction.gateway_id != payment.gateway_id:
        return "gateway_id_mismatch"
    return transaction.review_reason  # e.g. a partial approval: staff decide, nothing is applied


def next_poll(ctx: Context, payment: Payment, now: datetime) -> datetime:
    """First query 7 minutes after creation, then at least 12 minutes apart (PSE's sonda)."""
    first = payment.created_at + timedelta(seconds=ctx.settings.poll_first_seconds)
    return first if first > now else now + timedelta(seconds=ctx.settings.poll_every_seconds)


def needs_read(payment: Payment, target: str) -> bool:
    """The lock-time snapshot is enough only while the payment still holds its obligations."""
    if target == PENDING or not rules.can_transition(payment.status, target):
        return False
    return not payment.holds_its_obligations


def flag(ctx: Context, uow: UnitOfWork, payment: Payment, reason: str, *, actor: str,
         now: datetime, **details: Any) -> None:
    """Stage a review flag (nothing applied), its audit entry and its event."""
    payment.flag(reason, now)
    uow.payments.update(payment)
    uow.audit.add(audit_entry(ctx, subject=payment.document_number, event="payment_review",
                              actor=actor, payment_id=payment.payment_id, reason=reason,
                              reference=payment.reference, amount=payment.amount,
                              **{k: v for k, v in details.items() if v is not None}))
    uow.record(PaymentFlagged(payment_id=payment.payment_id, document_number=payment.document_number,
                              reference=payment.reference, at=now, reason=reason))


def plan(ctx: Context, uow: UnitOfWork, payment: Payment, *, target: str,
         transaction: GatewayTransaction | None, actor: str, message: str | None,
         known: dict[str, Obligation] | None, review: Review | None, ip: str | None) -> tuple[str, bool]:
    """Stage in ``uow`` what the news means for ``payment`` (changed in place); returns the
    outcome and whether anything was staged. ``review``: a staff resolution, written with the
    transition and clearing the flag."""
    now = ctx.now()
    wrong = mismatch(payment, transaction)
    if wrong:
        if payment.review_reason == wrong:
            return "review", False
        flag(ctx, uow, payment, wrong, actor=actor, now=now,
             reported_amount=transaction.amount if transaction else None,
             reported_reference=transaction.reference if transaction else None)
        return "review", True
    if not rules.can_transition(payment.status, target):
        if target == APPROVED and payment.status in LOST_IF_APPROVED and not payment.review_flag:
            # The bank confirmed a debit after the payment ended (e.g. rejected by staff): the
            # money arrived but cannot be applied by the machine; staff must see it.
            flag(ctx, uow, payment, LATE_APPROVAL, actor=actor, now=now,
                 reported_amount=transaction.amount if transaction else None)
            return "review", True
        found = news(payment, transaction) if payment.status == target else {}
        if not found or not payment.is_open:
            return ("unchanged" if payment.status == target else "stale"), False
        learn(payment, found, now)
        uow.payments.update(payment)
        return "unchanged", True

    before = payment.status
    learn(payment, news(payment, transaction), now)
    if message:
        payment.status_message = message[:500]
    if review is not None:
        payment.resolve_review(review)
    payment.move_to(target, now)
    if target == PENDING:
        payment.poll_at(poll_shard(payment.payment_id), next_poll(ctx, payment, now))
    elif payment.receipt_owed:  # the poller sends it if the event's handler never does
        payment.poll_at(poll_shard(payment.payment_id),
                        now + timedelta(seconds=ctx.settings.poll_every_seconds))
    uow.payments.update(payment)
    if target != PENDING:
        for item in payment.items:
            obligation = None if known is None else known.get(item.obligation_id)
            if known is not None and obligation is None:
                log_event("payment_obligation_missing", level=40, obligation_id=item.obligation_id)
                continue
            change = rules.settle_obligation(payment, item, obligation, approve=target == APPROVED,
                                             at=now)
            if change is not None:
                uow.obligations.change(change)
        uow.record(PaymentApproved(payment.payment_id, payment.document_number, payment.reference, now)
                   if target == APPROVED else
                   PaymentRejected(payment.payment_id, payment.document_number, payment.reference, now,
                                   status=target))
    details = {"reference": payment.reference, "from_status": before, "amount": payment.amount,
               "cus": payment.cus, "resolution": review.action if review is not None else None}
    uow.audit.add(audit_entry(ctx, subject=payment.document_number, event=f"payment_{target.lower()}",
                              actor=actor, payment_id=payment.payment_id, ip=ip,
                              reason=review.note if review is not None else None,
                              **{k: v for k, v in details.items() if v is not None}))
    return "applied", True


def settle(ctx: Context, payment: Payment, *, target: str, transaction: GatewayTransaction | None,
           actor: str, message: str | None = None, event: GatewayEventRecord | None = None,
           review: Review | None = None, ip: str | None = None,
           uow: UnitOfWork | None = None) -> tuple[str, Payment]:
    """Apply ``target`` to ``payment`` in one atomic write (with the raw ``event`` when given).

    Outcomes: applied, unchanged, stale, review, duplicate (the event was stored before). A lost
    race re-reads what changed and plans again, so the result is the same whatever the order.
    The first attempt runs in ``uow`` when given (the one ``payment`` was read in); each retry in
    a new one.
    """
    known: dict[str, Obligation] | None = None
    stale_payment = False
    changed: frozenset[str] = frozenset()
    for attempt in range(RACE_ATTEMPTS):
        with (uow if attempt == 0 and uow is not None else ctx.unit_of_work()) as work:
            if stale_payment:
                fresh = work.payments.get(payment.payment_id)
                if fresh is None:
                    raise Conflict(changed=changed)
                if fresh.version != payment.version:
                    known = None  # it moved: its obligations are decided again from its new state
                payment, stale_payment = fresh, False
            if known is None and needs_read(payment, target):
                known = {o.obligation_id: o for o in work.obligations.of_member(payment.document_number)}
            draft = copy.deepcopy(payment)
            outcome, staged = plan(ctx, work, draft, target=target, transaction=transaction,
                                   actor=actor, message=message, known=known, review=review, ip=ip)
            if event is not None:
                event.outcome, event.payment_id = outcome, payment.payment_id
                work.gateway_events.add(event)
            elif not staged:
                return outcome, payment
            try:
                work.commit()
            except Conflict as conflict:
                changed = conflict.changed
                if "event" in changed:
                    return "duplicate", payment
                if "payment" in changed:
                    stale_payment = True
                    continue
                if any(label.startswith("obligation:") for label in changed):
                    known = {o.obligation_id: o
                             for o in work.obligations.of_member(payment.document_number)}
                    stale_payment = True  # read again in the next attempt's unit of work
                    continue
                raise
        if staged:
            payment = draft
            emit_outcome(outcome, payment)
        return outcome, payment
    raise Conflict(f"payment {payment.payment_id} kept changing", changed=changed)


def emit_outcome(outcome: str, payment: Payment) -> None:
    """PaymentsFinal by final state and PaymentsFlaggedForReview (EMF, dimension Stage)."""
    if outcome == "applied" and rules.is_final(payment.status):
        emit_metric("PaymentsFinal", 1, "Count", Status=payment.status)
    elif outcome == "review":
        emit_metric(METRIC_FLAGGED, 1, "Count")
