"""Applying a status to a payment exactly once: the plan, the obligations' writes, review flags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import payments_repo as store
from chalicelib.adapters.dynamo.models import GatewayEvent, Obligation, Payment, PaymentItem, StatusChange
from chalicelib.adapters.dynamo.repositories import ConcurrentUpdate
from chalicelib.adapters.gateways.base import GatewayTransaction
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.payments import APPROVED, OPEN_STATUSES, PENDING
from chalicelib.observability import emit_metric, log_event
from chalicelib.services.audit import audit_item
from chalicelib.services.payments.core import _Change, _shard
from chalicelib.services.payments.receipts import _send_receipt

REVIEW_FLAG = "REVIEW"
REVIEW_KEYS = ("review_flag", "review_reason")
EXPORT_READY = "READY"  # Payment.export_pending: approved, no export has claimed it yet (issue 4)
METRIC_FLAGGED = "PaymentsFlaggedForReview"  # the names devtools/infra.py alarms on (issue 4)
LATE_APPROVAL = "approved_after_final"  # review reason: the gateway approved an ended payment
LOST_IF_APPROVED = frozenset({"REJECTED", "FAILED"})
_RACE_ATTEMPTS = 5
POLL_KEYS = ("poll_shard", "next_poll_at")


def _details(payment: Payment, transaction: GatewayTransaction | None) -> dict[str, Any]:
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


def _mismatch(payment: Payment, transaction: GatewayTransaction | None) -> str | None:
    if transaction is None:
        return None
    if transaction.reference != payment.reference:
        return "reference_mismatch"
    if int(transaction.amount) != int(payment.amount):
        return "amount_mismatch"
    if payment.gateway_id and transaction.gateway_id and transaction.gateway_id != payment.gateway_id:
        return "gateway_id_mismatch"
    return None


def _next_poll(ctx: Context, payment: Payment, now: datetime) -> datetime:
    """First query 7 minutes after creation, then at least 12 minutes apart (PSE's sonda)."""
    first = payment.created_at + timedelta(seconds=ctx.settings.poll_first_seconds)
    return first if first > now else now + timedelta(seconds=ctx.settings.poll_every_seconds)


def _wants_receipt(payment: Payment, target: str, transaction: GatewayTransaction | None) -> bool:
    """Receipts go to payments that reached the bank (or got approved), not to refused creations."""
    reached = bool(payment.gateway_id or (transaction and transaction.gateway_id))
    return bool(payment.payer_email) and (target == APPROVED or reached)


@dataclass(frozen=True)
class _Held:
    """An obligation as the plan believes it is (from the lock-time snapshot or a fresh read)."""

    due: int
    minimum: int
    maximum: int
    has_map: bool
    ours: bool  # locked by this payment
    applied: bool  # already carries this payment's entry


def _held(payment: Payment, item: PaymentItem, known: dict[str, Obligation] | None) -> _Held | None:
    if known is None:  # open payment: its lock still holds the lock-time balances
        return _Held(int(item.due_before), int(item.minimum_before), int(item.maximum_before),
                     has_map=True, ours=True, applied=False)
    obligation = known.get(item.obligation_id)
    if obligation is None:
        return None
    portal = obligation.portal_payments.as_dict() if obligation.portal_payments is not None else None
    return _Held(int(obligation.amount_due), int(obligation.minimum_amount),
                 int(obligation.maximum_amount), has_map=portal is not None,
                 ours=obligation.pending_payment_id == payment.payment_id,
                 applied=bool(portal) and payment.payment_id in portal)  # type: ignore[operator]


def _obligation_write(payment: Payment, item: PaymentItem, held: _Held, *, approve: bool,
                      now: datetime) -> tuple[list[Action], Any] | None:
    """Apply the amount (approval) and release this payment's lock, conditioned on ``held``."""
    o = Obligation
    pid = payment.payment_id
    actions: list[Action] = []
    condition: Any = None
    if approve and not held.applied:
        paid = int(item.amount)
        entry = {"amount": paid, "at": now.isoformat(), "reference": payment.reference}
        actions += [o.amount_due.set(rules.decrement(held.due, paid)),
                    o.minimum_amount.set(rules.decrement(held.minimum, paid)),
                    o.maximum_amount.set(rules.decrement(held.maximum, paid))]
        if held.has_map:
            actions.append(o.portal_payments[pid].set(entry))
            condition = o.portal_payments.exists() & o.portal_payments[pid].does_not_exist()
        else:
            actions.append(o.portal_payments.set({pid: entry}))
            condition = o.portal_payments.does_not_exist()
        condition &= ((o.amount_due == held.due) & (o.minimum_amount == held.minimum)
                      & (o.maximum_amount == held.maximum))
    if held.ours:
        actions += [o.pending_payment_id.remove(), o.pending_reference.remove()]
        lock = o.pending_payment_id == pid
    else:
        lock = o.pending_payment_id.does_not_exist() | (o.pending_payment_id != pid)
    if not actions:
        return None
    return actions, lock if condition is None else condition & lock


def _needs_read(payment: Payment, target: str) -> bool:
    """The lock-time snapshot is enough only while the payment still holds its obligations."""
    if target == PENDING or not rules.can_transition(payment.status, target):
        return False
    return payment.status not in OPEN_STATUSES or any(i.due_before is None for i in payment.items)


def _plan(ctx: Context, tx: store.Tx, payment: Payment, *, target: str,
          transaction: GatewayTransaction | None, actor: str, message: str | None,
          known: dict[str, Obligation] | None, review: dict[str, Any] | None = None,
          ip: str | None = None) -> tuple[str, _Change | None]:
    """Fill ``tx`` with what the news means for ``payment``; returns the outcome and the change.

    ``review``: a staff resolution (issue 4), written with the transition and clearing the flag."""
    now = ctx.now()
    guard = Payment.status == payment.status
    mismatch = _mismatch(payment, transaction)
    if mismatch:
        if payment.review_reason == mismatch:
            return "review", None
        return "review", _flag(ctx, tx, payment, mismatch, actor=actor, now=now,
                               reported_amount=transaction.amount if transaction else None,
                               reported_reference=transaction.reference if transaction else None)
    if not rules.can_transition(payment.status, target):
        if target == APPROVED and payment.status in LOST_IF_APPROVED and not payment.review_flag:
            # The bank confirmed a debit after the payment ended (e.g. rejected by staff): the
            # money arrived but cannot be applied by the machine; staff must see it (issue 4).
            return "review", _flag(ctx, tx, payment, LATE_APPROVAL, actor=actor, now=now,
                                   reported_amount=transaction.amount if transaction else None)
        details = _details(payment, transaction) if payment.status == target else {}
        if not details or payment.status not in OPEN_STATUSES:
            return ("unchanged" if payment.status == target else "stale"), None
        change = _Change(sets={**details, "updated_at": now})
        tx.update("payment", payment, change.actions(), guard)
        return "unchanged", change

    sets: dict[str, Any] = {"status": target, "updated_at": now, **_details(payment, transaction)}
    removes: tuple[str, ...] = ()
    if message:
        sets["status_message"] = message[:500]
    if target == APPROVED:
        sets["approved_at"] = now
        sets["export_pending"] = EXPORT_READY  # back office: the export_queue index (issue 4)
    if target == PENDING:
        sets.update(poll_shard=_shard(payment.payment_id), next_poll_at=_next_poll(ctx, payment, now))
    else:
        sets["receipt_emailed"] = _wants_receipt(payment, target, transaction)  # claimed: sent below
        removes = POLL_KEYS
    if review is not None:  # staff resolution (issue 4)
        sets.update(review)
        removes = (*removes, *REVIEW_KEYS)
    change = _Change(sets=sets, removes=removes, history=StatusChange(status=target, at=now))
    tx.update("payment", payment, change.actions(), guard)
    if target != PENDING:
        for item in payment.items:
            held = _held(payment, item, known)
            if held is None:
                log_event("payment_obligation_missing", level=40, obligation_id=item.obligation_id)
                continue
            write = _obligation_write(payment, item, held, approve=target == APPROVED, now=now)
            if write is not None:
                key = Obligation(document_number=payment.document_number,
                                 obligation_id=item.obligation_id)
                tx.update(f"obligation:{item.obligation_id}", key, *write)
    details = {"reference": payment.reference, "from_status": payment.status,
               "amount": payment.amount, "cus": sets.get("cus", payment.cus)}
    if review is not None:
        details["resolution"] = review["review_resolution"]
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event=f"payment_{target.lower()}",
                               actor=actor, payment_id=payment.payment_id, ip=ip,
                               reason=review["review_note"] if review is not None else None,
                               **{k: v for k, v in details.items() if v is not None}))
    return "applied", change


def _flag(ctx: Context, tx: store.Tx, payment: Payment, reason: str, *, actor: str, now: datetime,
          **details: Any) -> _Change:
    """Mark for staff review (nothing applied); an open payment leaves the poller's index."""
    removes = POLL_KEYS if payment.status in OPEN_STATUSES else ()
    change = _Change(sets={"review_flag": REVIEW_FLAG, "review_reason": reason, "updated_at": now},
                     removes=removes)
    tx.update("payment", payment, change.actions(), Payment.status == payment.status)
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event="payment_review",
                               actor=actor, payment_id=payment.payment_id, reason=reason,
                               reference=payment.reference, amount=payment.amount,
                               **{k: v for k, v in details.items() if v is not None}))
    return change


def _settle(ctx: Context, payment: Payment, *, target: str, transaction: GatewayTransaction | None,
            actor: str, message: str | None = None,
            event: GatewayEvent | None = None,
            review: dict[str, Any] | None = None, ip: str | None = None) -> tuple[str, Payment]:
    """Apply ``target`` to ``payment`` in one transaction (with the raw ``event`` when given).

    Outcomes: applied, unchanged, stale, review, duplicate (the event was stored before). A lost
    race re-reads what changed and plans again, so the result is the same whatever the order.
    """
    known: dict[str, Obligation] | None = None
    for _ in range(_RACE_ATTEMPTS):
        if known is None and _needs_read(payment, target):
            known = {o.obligation_id: o for o in store.obligations_of(payment.document_number)}
        tx = store.Tx()
        outcome, change = _plan(ctx, tx, payment, target=target, transaction=transaction,
                                actor=actor, message=message, known=known, review=review, ip=ip)
        if event is not None:
            event.outcome, event.payment_id = outcome, payment.payment_id
            tx.put("event", event, GatewayEvent.event_id.does_not_exist())
        if not tx.puts and not tx.updates:
            return outcome, payment
        try:
            tx.commit()
        except store.Cancelled as cancelled:
            if "event" in cancelled.failed:
                return "duplicate", payment
            if "payment" in cancelled.failed:
                fresh = store.get_payment(payment.payment_id)
                if fresh is None:
                    raise
                payment, known = fresh, None
                continue
            if any(label.startswith("obligation:") for label in cancelled.failed):
                known = {o.obligation_id: o for o in store.obligations_of(payment.document_number)}
                continue
            raise
        if change is not None:
            change.mirror(payment)
            _emit_outcome(outcome, payment)
        if outcome == "applied" and rules.is_final(payment.status) and payment.receipt_emailed:
            _send_receipt(ctx, payment)
        return outcome, payment
    raise ConcurrentUpdate(f"payment {payment.payment_id} kept changing")


def _emit_outcome(outcome: str, payment: Payment) -> None:
    """PaymentsFinal by final state and PaymentsFlaggedForReview (EMF, dimension Stage)."""
    if outcome == "applied" and rules.is_final(payment.status):
        emit_metric("PaymentsFinal", 1, "Count", Status=payment.status)
    elif outcome == "review":
        emit_metric(METRIC_FLAGGED, 1, "Count")
