"""Back office (issue 4): staff re-query, review resolution, receipt resend, amount allocation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chalicelib.adapters.dynamo import payments_repo as store
from chalicelib.adapters.dynamo.models import Payment, PaymentItem
from chalicelib.adapters.gateways.base import GatewayError, GatewayTransaction
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.errors import Conflict, InvalidInput, ServiceUnavailable
from chalicelib.domain.payments import APPROVED, OPEN_STATUSES
from chalicelib.formatting import cop
from chalicelib.observability import log_event
from chalicelib.services.audit import audit_item
from chalicelib.services.payments.core import _Change, _load, _payment_logs, _query_gateway, _shard
from chalicelib.services.payments.receipts import _receipt_email
from chalicelib.services.payments.settle import LOST_IF_APPROVED, REVIEW_KEYS, _settle

REVIEW_ACTIONS = ("apply", "reject", "keep_pending")
NOT_UNDER_REVIEW = "Este pago no está marcado para revisión."
CHANGED_MEANWHILE = "El pago cambió mientras se resolvía; consúltelo de nuevo y decida otra vez."
GATEWAY_UNREACHABLE = "No pudimos consultar la pasarela de pagos; intente de nuevo en unos minutos."
REJECTED_BY_STAFF = "Rechazado por la cooperativa después de revisarlo."


def staff_payment(payment_id: str) -> Payment:
    """Any payment by id, for staff (PaymentNotFound otherwise). One GetItem."""
    return _load(payment_id, None)


@dataclass(frozen=True)
class Requery:
    payment: Payment
    before: str
    outcome: str  # applied | unchanged | stale | review | duplicate | not_at_gateway | gateway_error
    gateway: GatewayTransaction | None
    error: str | None = None


def staff_requery(ctx: Context, payment_id: str, *, actor: str, ip: str | None) -> Requery:
    """Ask the gateway now, whatever the status, and apply its answer through the engine (the
    transition's actor stays "gateway": the truth comes from it); audited with the staff actor."""
    payment = _load(payment_id, None)
    before = payment.status
    transaction: GatewayTransaction | None = None
    error: str | None = None
    with _payment_logs(payment):
        try:
            transaction = _query_gateway(ctx, payment)
        except GatewayError as exc:
            error = exc.code or "gateway_error"
            log_event("payment_query_failed", level=30, code=exc.code)
        if transaction is not None:
            outcome, payment = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                                       actor="gateway")
        else:
            outcome = "gateway_error" if error else "not_at_gateway"
    details = {"reference": payment.reference, "from_status": before, "to_status": payment.status,
               "outcome": outcome, "gateway_status": transaction.status if transaction else None,
               "gateway_amount": transaction.amount if transaction else None, "error": error}
    audit_item(ctx, subject=payment.document_number, event="staff_payment_requery", actor=actor,
               ip=ip, payment_id=payment.payment_id,
               **{k: v for k, v in details.items() if v is not None}).save()
    return Requery(payment=payment, before=before, outcome=outcome, gateway=transaction, error=error)


@dataclass(frozen=True)
class Resolution:
    action: str
    outcome: str  # approved | rejected | kept_pending | flag_cleared
    payment: Payment
    gateway: GatewayTransaction | None = None


def allocate(confirmed: int, items: Sequence[tuple[int, int]]) -> list[int] | None:
    """Spread the amount the gateway confirmed over the items ``(amount, maximum)``, in order.

    Less than asked: the later items give up first (earlier obligations get what the member
    chose). More: the excess goes to the items in order, each up to its maximum payable. None
    when the amount cannot be placed (not positive, or above the sum of the maxima)."""
    if confirmed <= 0 or not items:
        return None
    amounts = [a for a, _ in items]
    total = sum(amounts)
    if confirmed <= total:
        short = total - confirmed
        for index in range(len(amounts) - 1, -1, -1):
            cut = min(short, amounts[index])
            amounts[index] -= cut
            short -= cut
        return amounts
    excess = confirmed - total
    for index, (_, maximum) in enumerate(items):
        room = max(0, maximum - amounts[index])
        add = min(room, excess)
        amounts[index] += add
        excess -= add
    return amounts if excess == 0 else None


def resolve_review(ctx: Context, payment_id: str, *, action: str, reason: str, actor: str,
                   ip: str | None) -> Resolution:
    """A staff decision on a payment flagged for review, through the engine's conditional writes.

    * ``apply``: only if the gateway confirms APPROVED now (same reference and transaction); the
      gateway's amount is applied (spread over the obligations by :func:`allocate` when it
      differs, in an audited correction first). Already APPROVED: the flag is cleared.
    * ``reject``: REJECTED and locks released, refused while the gateway reports APPROVED.
      Already ended (rejected, failed, expired): the flag is cleared.
    * ``keep_pending``: an open payment goes back to the poller, queried at once, with a new
      horizon from now.
    Every outcome is audited with the staff actor, IP and reason; the flag is cleared."""
    if action not in REVIEW_ACTIONS:
        raise InvalidInput("«action» debe ser apply, reject o keep_pending.", code="invalid_action",
                           field="action")
    payment = _load(payment_id, None)
    if not payment.review_flag:
        raise Conflict(NOT_UNDER_REVIEW, code="not_under_review")
    review = {"review_resolution": action, "review_resolved_by": actor,
              "review_resolved_at": ctx.now(), "review_note": reason[:500]}
    if action == "keep_pending":
        return _keep_pending(ctx, payment, review, actor=actor, ip=ip)
    with _payment_logs(payment):
        try:
            transaction = _query_gateway(ctx, payment)
        except GatewayError as exc:
            raise ServiceUnavailable(GATEWAY_UNREACHABLE, code="gateway_unavailable") from exc
        if action == "apply":
            return _resolve_apply(ctx, payment, transaction, review, actor=actor, ip=ip)
        return _resolve_reject(ctx, payment, transaction, review, actor=actor, ip=ip)


def _refuse(ctx: Context, payment: Payment, review: dict[str, Any], *, actor: str, ip: str | None,
            code: str, message: str, **details: Any) -> Conflict:
    """Audit a refused resolution (who tried what, and why it was refused) and build the error."""
    audit_item(ctx, subject=payment.document_number, event="staff_review_refused", actor=actor,
               ip=ip, reason=review["review_note"], payment_id=payment.payment_id,
               action=review["review_resolution"], refusal=code, status=payment.status,
               **{k: v for k, v in details.items() if v is not None}).save()
    return Conflict(message, code=code, extra={k: v for k, v in details.items() if v is not None})


def _resolve_apply(ctx: Context, payment: Payment, transaction: GatewayTransaction | None,
                   review: dict[str, Any], *, actor: str, ip: str | None) -> Resolution:
    status = transaction.status if transaction else None
    if transaction is None or transaction.status != APPROVED:
        shown = rules.status_label(status) if status else "sin transacción en la pasarela"
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="gateway_not_approved",
                      message=f"La pasarela no confirma este pago como aprobado ({shown}); no se aplicó.",
                      gateway_status=status)
    if transaction.reference != payment.reference or (
            payment.gateway_id and transaction.gateway_id and transaction.gateway_id != payment.gateway_id):
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="gateway_mismatch",
                      message="La transacción de la pasarela no corresponde a este pago (referencia "
                              "o identificador distintos); no se aplicó.",
                      gateway_reference=transaction.reference[:64])
    if payment.status == APPROVED:
        payment = _clear_review(ctx, payment, review, actor=actor, ip=ip)
        return Resolution("apply", "flag_cleared", payment, transaction)
    if not rules.can_transition(payment.status, APPROVED):
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="invalid_transition",
                      message=f"Un pago {rules.status_label(payment.status)} no puede pasar a "
                              "Aprobada; regístrelo en el sistema central.")
    if int(transaction.amount) != int(payment.amount):
        payment = _correct_amount(ctx, payment, int(transaction.amount), review, actor=actor, ip=ip)
    outcome, payment = _settle(ctx, payment, target=APPROVED, transaction=transaction, actor=actor,
                               review=review, ip=ip)
    if outcome != "applied":
        raise Conflict(CHANGED_MEANWHILE, code="concurrent_change", extra={"status": payment.status})
    return Resolution("apply", "approved", payment, transaction)


def _correct_amount(ctx: Context, payment: Payment, confirmed: int, review: dict[str, Any], *,
                    actor: str, ip: str | None) -> Payment:
    """Make the payment carry the gateway's amount (one audited conditional transaction), so the
    approval that follows is the engine's ordinary one and matches the gateway."""
    caps = [(int(i.amount), int(i.maximum_before) if i.maximum_before is not None else int(i.amount))
            for i in payment.items]
    amounts = allocate(confirmed, caps)
    if amounts is None:
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="amount_not_applicable",
                      message=f"La pasarela confirma {cop(confirmed)}, que no se puede repartir "
                              f"entre las obligaciones del pago (máximo {cop(sum(m for _, m in caps))}); "
                              "no se aplicó.", gateway_amount=confirmed)
    old = int(payment.amount)
    items = [PaymentItem(obligation_id=i.obligation_id, type=i.type, product_number=i.product_number,
                         description=i.description, amount=amount, due_before=i.due_before,
                         minimum_before=i.minimum_before, maximum_before=i.maximum_before)
             for i, amount in zip(payment.items, amounts, strict=True)]
    tx = store.Tx()
    tx.update("payment", payment, [Payment.amount.set(confirmed), Payment.items.set(items),
                                   Payment.original_amount.set(old), Payment.updated_at.set(ctx.now())],
              (Payment.status == payment.status) & (Payment.amount == old) & Payment.review_flag.exists())
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event="payment_amount_corrected",
                               actor=actor, ip=ip, reason=review["review_note"],
                               payment_id=payment.payment_id, reference=payment.reference,
                               from_amount=old, to_amount=confirmed))
    try:
        tx.commit()
    except store.Cancelled as exc:
        raise Conflict(CHANGED_MEANWHILE, code="concurrent_change") from exc
    payment.amount, payment.items, payment.original_amount = confirmed, items, old
    return payment


def _resolve_reject(ctx: Context, payment: Payment, transaction: GatewayTransaction | None,
                    review: dict[str, Any], *, actor: str, ip: str | None) -> Resolution:
    if payment.status == APPROVED:
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="already_approved",
                      message="El pago ya se aplicó como aprobado; no se puede rechazar.")
    if payment.status in LOST_IF_APPROVED:
        # Rejected or failed for good: even if the bank approved it later, the engine cannot
        # apply it; staff settle that money in the core system and the reason says how.
        payment = _clear_review(ctx, payment, review, actor=actor, ip=ip)
        return Resolution("reject", "flag_cleared", payment, transaction)
    if (transaction is not None and transaction.status == APPROVED
            and transaction.reference == payment.reference):
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="gateway_approved",
                      message="La pasarela reporta este pago como aprobado: no se puede rechazar. "
                              "Use «apply».", gateway_status=APPROVED)
    if rules.is_final(payment.status):  # expired: nothing holds its obligations any more
        payment = _clear_review(ctx, payment, review, actor=actor, ip=ip)
        return Resolution("reject", "flag_cleared", payment, transaction)
    outcome, payment = _settle(ctx, payment, target=rules.REJECTED, transaction=None, actor=actor,
                               message=REJECTED_BY_STAFF, review=review, ip=ip)
    if outcome != "applied":
        raise Conflict(CHANGED_MEANWHILE, code="concurrent_change", extra={"status": payment.status})
    return Resolution("reject", "rejected", payment, transaction)


def _keep_pending(ctx: Context, payment: Payment, review: dict[str, Any], *, actor: str,
                  ip: str | None) -> Resolution:
    if payment.status not in OPEN_STATUSES:
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="not_pending",
                      message=f"Solo un pago Iniciado o Pendiente puede seguir pendiente; este está "
                              f"{rules.status_label(payment.status)}.")
    now = ctx.now()
    extra = {"poll_shard": _shard(payment.payment_id), "next_poll_at": now,
             "poll_horizon_at": now + timedelta(seconds=ctx.settings.poll_horizon_seconds)}
    payment = _clear_review(ctx, payment, review, actor=actor, ip=ip, extra=extra)
    return Resolution("keep_pending", "kept_pending", payment)


def _clear_review(ctx: Context, payment: Payment, review: dict[str, Any], *, actor: str,
                  ip: str | None, extra: dict[str, Any] | None = None) -> Payment:
    """Record the resolution and clear the flag without a status change (one transaction)."""
    change = _Change(sets={**review, **(extra or {}), "updated_at": ctx.now()}, removes=REVIEW_KEYS)
    tx = store.Tx()
    tx.update("payment", payment, change.actions(),
              (Payment.status == payment.status) & Payment.review_flag.exists())
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event="payment_review_resolved",
                               actor=actor, ip=ip, reason=review["review_note"],
                               payment_id=payment.payment_id, reference=payment.reference,
                               resolution=review["review_resolution"], status=payment.status,
                               review_reason=payment.review_reason))
    try:
        tx.commit()
    except store.Cancelled as exc:
        raise Conflict(CHANGED_MEANWHILE, code="concurrent_change") from exc
    change.mirror(payment)
    return payment


def resend_receipt(ctx: Context, payment_id: str, *, actor: str, ip: str | None,
                   reason: str | None = None) -> Payment:
    """Send the receipt email of a final payment again (to the address on the payment); audited."""
    payment = _load(payment_id, None)
    if not rules.is_final(payment.status):
        raise Conflict("Solo se reenvía el comprobante de un pago en estado final; este está "
                       f"{rules.status_label(payment.status)}.", code="not_final")
    if not payment.payer_email:
        raise Conflict("El pago no tiene un correo del asociado al cual enviar el comprobante.",
                       code="no_email")
    with _payment_logs(payment):
        try:
            ctx.mailer.send(_receipt_email(ctx, payment))
        except Exception as exc:
            log_event("payment_receipt_failed", level=30, document_number=payment.document_number,
                      error=str(exc)[:200], actor=actor)
            raise ServiceUnavailable("No pudimos enviar el correo; intente de nuevo en unos minutos.",
                                     code="mail_failed") from exc
    audit_item(ctx, subject=payment.document_number, event="staff_receipt_resent", actor=actor,
               ip=ip, reason=reason, payment_id=payment.payment_id, reference=payment.reference,
               status=payment.status).save()
    return payment
