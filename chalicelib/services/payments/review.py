"""Back office: staff re-query, review resolution, receipt resend, amount allocation."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from chalicelib.adapters.gateways.base import GatewayError, GatewayTransaction
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import Conflict, InvalidInput, ServiceUnavailable
from chalicelib.domain.payments import APPROVED, OPEN_STATUSES, Payment, Review
from chalicelib.formatting import cop
from chalicelib.observability import log_event
from chalicelib.services import texts
from chalicelib.services.audit import audit_entry, record
from chalicelib.services.payments.core import load_payment, payment_logs, poll_shard, query_gateway
from chalicelib.services.payments.receipts import receipt_email
from chalicelib.services.payments.settle import LOST_IF_APPROVED, settle
from chalicelib.services.unit_of_work import UnitOfWork

REVIEW_ACTIONS = ("apply", "reject", "keep_pending")
NOT_UNDER_REVIEW = "Este pago no está marcado para revisión."
CHANGED_MEANWHILE = "El pago cambió mientras se resolvía; consúltelo de nuevo y decida otra vez."
GATEWAY_UNREACHABLE = "No pudimos consultar la pasarela de pagos; intente de nuevo en unos minutos."
REJECTED_BY_STAFF = "Rechazado por la cooperativa después de revisarlo."


def staff_payment(ctx: Context, payment_id: str) -> Payment:
    """Any payment by id, for staff (PaymentNotFound otherwise). One GetItem."""
    with ctx.unit_of_work() as uow:
        return load_payment(uow, payment_id, None)


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
    with ctx.unit_of_work() as uow:
        payment = load_payment(uow, payment_id, None)
    before = payment.status
    transaction: GatewayTransaction | None = None
    error: str | None = None
    with payment_logs(payment):
        try:
            transaction = query_gateway(ctx, payment)
        except GatewayError as exc:
            error = exc.code or "gateway_error"
            log_event("payment_query_failed", level=30, code=exc.code)
        if transaction is not None:
            outcome, payment = settle(ctx, payment, target=transaction.status, transaction=transaction,
                                      actor="gateway", uow=uow)
        else:
            outcome = "gateway_error" if error else "not_at_gateway"
    details = {"reference": payment.reference, "from_status": before, "to_status": payment.status,
               "outcome": outcome, "gateway_status": transaction.status if transaction else None,
               "gateway_amount": transaction.amount if transaction else None, "error": error}
    record(ctx, subject=payment.document_number, event="staff_payment_requery", actor=actor,
           ip=ip, payment_id=payment.payment_id,
           **{k: v for k, v in details.items() if v is not None})
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
    with ctx.unit_of_work() as uow:
        payment = load_payment(uow, payment_id, None)
        if not payment.review_flag:
            raise Conflict(NOT_UNDER_REVIEW, code="not_under_review")
        review = Review(action=action, actor=actor, at=ctx.now(), note=reason[:500])
        decision = Decision(ctx, uow, review, ip)
        if action == "keep_pending":
            return decision.keep_pending(payment)
        with payment_logs(payment):
            try:
                transaction = query_gateway(ctx, payment)
            except GatewayError as exc:
                raise ServiceUnavailable(GATEWAY_UNREACHABLE, code="gateway_unavailable") from exc
            if action == "apply":
                return decision.apply(payment, transaction)
            return decision.reject(payment, transaction)


@dataclass(frozen=True)
class Decision:
    """One staff resolution in the making: its unit of work, the review and where it came from."""

    ctx: Context
    uow: UnitOfWork
    review: Review
    ip: str | None

    def refuse(self, payment: Payment, *, code: str, message: str, **details: Any) -> Conflict:
        """Audit a refused resolution (who tried what, and why it was refused) and build the error."""
        record(self.ctx, subject=payment.document_number, event="staff_review_refused",
               actor=self.review.actor, ip=self.ip, reason=self.review.note,
               payment_id=payment.payment_id, action=self.review.action, refusal=code,
               status=payment.status, **{k: v for k, v in details.items() if v is not None})
        return Conflict(message, code=code, extra={k: v for k, v in details.items() if v is not None})

    def settle(self, payment: Payment, target: str, transaction: GatewayTransaction | None,
               message: str | None = None) -> Payment:
        outcome, payment = settle(self.ctx, payment, target=target, transaction=transaction,
                                  actor=self.review.actor, message=message, review=self.review,
                                  ip=self.ip, uow=self.uow)
        if outcome != "applied":
            raise Conflict(CHANGED_MEANWHILE, code="concurrent_change", extra={"status": payment.status})
        return payment

    def apply(self, payment: Payment, transaction: GatewayTransaction | None) -> Resolution:
        status = transaction.status if transaction else None
        if transaction is None or transaction.status != APPROVED:
            shown = texts.status_label(status) if status else "sin transacción en la pasarela"
            raise self.refuse(payment, code="gateway_not_approved", gateway_status=status,
                              message=f"La pasarela no confirma este pago como aprobado ({shown}); "
                                      "no se aplicó.")
        if transaction.reference != payment.reference or (
                payment.gateway_id and transaction.gateway_id
                and transaction.gateway_id != payment.gateway_id):
            raise self.refuse(payment, code="gateway_mismatch",
                              message="La transacción de la pasarela no corresponde a este pago "
                                      "(referencia o identificador distintos); no se aplicó.",
                              gateway_reference=transaction.reference[:64])
        if payment.status == APPROVED:
            return Resolution("apply", "flag_cleared", self.clear(payment), transaction)
        if not rules.can_transition(payment.status, APPROVED):
            raise self.refuse(payment, code="invalid_transition",
                              message=f"Un pago {texts.status_label(payment.status)} no puede pasar "
                                      "a Aprobada; regístrelo en el sistema central.")
        if int(transaction.amount) != int(payment.amount):
            payment = self.correct_amount(payment, int(transaction.amount))
        return Resolution("apply", "approved", self.settle(payment, APPROVED, transaction), transaction)

    def correct_amount(self, payment: Payment, confirmed: int) -> Payment:
        """Make the payment carry the gateway's amount (one audited version-checked write), so
        the approval that follows is the engine's ordinary one and matches the gateway."""
        caps = [(int(i.amount), int(i.maximum_before) if i.maximum_before is not None else int(i.amount))
                for i in payment.items]
        amounts = allocate(confirmed, caps)
        if amounts is None:
            raise self.refuse(payment, code="amount_not_applicable", gateway_amount=confirmed,
                              message=f"La pasarela confirma {cop(confirmed)}, que no se puede "
                                      "repartir entre las obligaciones del pago (máximo "
                                      f"{cop(sum(m for _, m in caps))}); no se aplicó.")
        corrected = copy.deepcopy(payment)
        old = int(payment.amount)
        corrected.items = [replace(i, amount=amount, parts=None)
                           for i, amount in zip(payment.items, amounts, strict=True)]
        corrected.amount, corrected.original_amount = confirmed, old
        corrected.updated_at = self.ctx.now()
        self.write(corrected, audit_entry(
            self.ctx, subject=payment.document_number, event="payment_amount_corrected",
            actor=self.review.actor, ip=self.ip, reason=self.review.note,
            payment_id=payment.payment_id, reference=payment.reference, from_amount=old,
            to_amount=confirmed))
        return corrected

    def reject(self, payment: Payment, transaction: GatewayTransaction | None) -> Resolution:
        if payment.status == APPROVED:
            raise self.refuse(payment, code="already_approved",
                              message="El pago ya se aplicó como aprobado; no se puede rechazar.")
        if payment.status in LOST_IF_APPROVED:
            # Rejected or failed for good: even if the bank approved it later, the engine cannot
            # apply it; staff settle that money in the core system and the reason says how.
            return Resolution("reject", "flag_cleared", self.clear(payment), transaction)
        if (transaction is not None and transaction.status == APPROVED
                and transaction.reference == payment.reference):
            raise self.refuse(payment, code="gateway_approved", gateway_status=APPROVED,
                              message="La pasarela reporta este pago como aprobado: no se puede "
                                      "rechazar. Use «apply».")
        if rules.is_final(payment.status):  # expired: nothing holds its obligations any more
            return Resolution("reject", "flag_cleared", self.clear(payment), transaction)
        payment = self.settle(payment, rules.REJECTED, None, message=REJECTED_BY_STAFF)
        return Resolution("reject", "rejected", payment, transaction)

    def keep_pending(self, payment: Payment) -> Resolution:
        if payment.status not in OPEN_STATUSES:
            raise self.refuse(payment, code="not_pending",
                              message=f"Solo un pago Iniciado o Pendiente puede seguir pendiente; "
                                      f"este está {texts.status_label(payment.status)}.")
        now = self.ctx.now()
        kept = copy.deepcopy(payment)
        kept.poll_at(poll_shard(payment.payment_id), now)
        kept.poll_horizon_at = now + timedelta(seconds=self.ctx.settings.poll_horizon_seconds)
        return Resolution("keep_pending", "kept_pending", self.clear(kept))

    def clear(self, payment: Payment) -> Payment:
        """Record the resolution and clear the flag without a status change (one write)."""
        cleared = copy.deepcopy(payment)
        cleared.resolve_review(self.review)
        cleared.updated_at = self.ctx.now()
        self.write(cleared, audit_entry(
            self.ctx, subject=payment.document_number, event="payment_review_resolved",
            actor=self.review.actor, ip=self.ip, reason=self.review.note,
            payment_id=payment.payment_id, reference=payment.reference,
            resolution=self.review.action, status=payment.status,
            review_reason=payment.review_reason))
        return cleared

    def write(self, payment: Payment, entry: AuditEntry) -> None:
        with self.uow as uow:
            uow.payments.update(payment)
            uow.audit.add(entry)
            try:
                uow.commit()
            except Conflict as exc:
                raise Conflict(CHANGED_MEANWHILE, code="concurrent_change") from exc


def resend_receipt(ctx: Context, payment_id: str, *, actor: str, ip: str | None,
                   reason: str | None = None) -> Payment:
    """Send the receipt email of a final payment again (to the address on the payment); audited."""
    with ctx.unit_of_work() as uow:
        payment = load_payment(uow, payment_id, None)
    if not rules.is_final(payment.status):
        raise Conflict("Solo se reenvía el comprobante de un pago en estado final; este está "
                       f"{texts.status_label(payment.status)}.", code="not_final")
    if not payment.payer_email:
        raise Conflict("El pago no tiene un correo del asociado al cual enviar el comprobante.",
                       code="no_email")
    with payment_logs(payment):
        try:
            ctx.mailer.send(receipt_email(ctx, payment))
        except Exception as exc:
            log_event("payment_receipt_failed", level=30, document_number=payment.document_number,
                      error=str(exc)[:200], actor=actor)
            raise ServiceUnavailable("No pudimos enviar el correo; intente de nuevo en unos minutos.",
                                     code="mail_failed") from exc
    record(ctx, subject=payment.document_number, event="staff_receipt_resent", actor=actor,
           ip=ip, reason=reason, payment_id=payment.payment_id, reference=payment.reference,
           status=payment.status)
    return payment
