"""What the gateway says: its verified notifications (webhook) and server-side status queries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from chalicelib.adapters.gateways.base import (
    GatewayError,
    GatewayTransaction,
    IgnoredEvent,
    InvalidEvent,
    VerifiedEvent,
)
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.errors import Conflict
from chalicelib.domain.payments import APPROVED, EXPIRED, OPEN_STATUSES, GatewayEventRecord, Payment
from chalicelib.observability import emit_metric, log_event
from chalicelib.services import throttle
from chalicelib.services.payments.core import load_payment, payment_logs, query_gateway, timed
from chalicelib.services.payments.receipts import ReceiptView, view
from chalicelib.services.payments.settle import settle
from chalicelib.services.unit_of_work import UnitOfWork

METRIC_SIGNATURE_FAILURES = "WebhookSignatureFailures"


#: What "Consultar estado" tells the member, by the outcome :func:`check_status` returns.
STATUS_QUERY_NOTES = {
    "pending": "Acabamos de consultar a su banco: el pago sigue pendiente.",
    "wait": ("Ya consultamos el estado hace un momento. Espere un minuto y vuelva a consultar; "
             "le avisaremos por correo cuando el banco responda."),
}


def check_status(ctx: Context, payment_id: str, *, document_number: str | None) -> str:
    """"Consultar estado": the gateway asked server-side, a few times a minute per payment at
    most. ``ended`` (a final status now), ``pending`` or ``wait`` (throttled, not asked)."""
    with ctx.unit_of_work() as uow:
        payment = load_payment(uow, payment_id, document_number)
        if not throttle.allow(ctx, f"payment:query:{payment.payment_id}",
                              limit=ctx.settings.rate_payment_query, window_seconds=60):
            return "wait"
        shown = refreshed(ctx, uow, payment, full=document_number is not None)
    return "ended" if shown.is_final else "pending"


def refresh_payment(ctx: Context, payment_id: str, *,
                    document_number: str | None = None) -> ReceiptView:
    """Ask the gateway server-side and apply the answer (the return page; never query params)."""
    with ctx.unit_of_work() as uow:
        payment = load_payment(uow, payment_id, document_number)
        return refreshed(ctx, uow, payment, full=document_number is not None)


def refreshed(ctx: Context, uow: UnitOfWork, payment: Payment, *, full: bool) -> ReceiptView:
    """The payment's view once the gateway's server-side answer about it is applied."""
    if payment.status in OPEN_STATUSES or payment.status == EXPIRED:
        with payment_logs(payment):
            try:
                transaction = query_gateway(ctx, payment)
            except GatewayError as exc:
                log_event("payment_query_failed", level=30, code=exc.code)
                transaction = None
            if transaction is not None:
                _, payment = settle(ctx, payment, target=transaction.status, transaction=transaction,
                                    actor="gateway", uow=uow)
    return view(payment, full=full)


def event_key(gateway: str, event: VerifiedEvent) -> str:
    """What makes two notifications the same: gateway, signed transaction id, signed status (not
    the checksum: a variant rewritten outside the signed values can keep it)."""
    return f"{gateway}#{event.gateway_id}#{event.status}"


def apply_gateway_event(ctx: Context, headers: Mapping[str, str], body: bytes, *,
                        gateway: str | None = None) -> str:
    """A gateway notification: ``processed``, ``duplicate``, ``ignored``, ``deferred`` (the poller
    settles it) or ``retry`` (only a new delivery can); InvalidEvent if forged, malformed, stale,
    or signed without the transaction's id, status and amount; IgnoredEvent for a genuine event of
    a type the engine does not act on. ``gateway`` names the gateway that sent it (its webhook's
    path), by default the configured one.

    Only what the signature covers is believed. The unsigned reference only finds the payment: the
    event is applied as it is when that payment's stored gateway id and amount are the signed ones
    and it approves nothing; otherwise (no gateway id stored yet, another id or amount, an
    approval) the gateway's server-side status query must say the same, and its answer is what is
    applied. Two DynamoDB round trips: the payment by reference, one transaction.
    """
    ctx = ctx.for_gateway(gateway)
    now = ctx.now()
    event = verified(ctx, headers, body, now)
    with ctx.unit_of_work() as uow:
        payment = by_reference(uow, event.reference)
        if payment is not None and speaks_for_itself(payment, event):
            transaction = GatewayTransaction(gateway_id=event.gateway_id, reference=payment.reference,
                                             status=event.status, amount=event.amount)
        else:
            try:  # the gateway that signed the event, asked about its own transaction
                transaction = timed("get_transaction", ctx.gateway.get_transaction, event.gateway_id)
            except GatewayError as exc:
                return unconfirmed(payment, event, reason=exc.code)
            if (transaction.gateway_id, transaction.status, transaction.amount) != (
                    event.gateway_id, event.status, event.amount):
                return unconfirmed(payment, event, reason="gateway_disagrees")
            if payment is None or payment.reference != transaction.reference:
                payment = by_reference(uow, transaction.reference)
        record = GatewayEventRecord(event_id=event_key(ctx.gateway.name, event),
                                    gateway=ctx.gateway.name, body=body.decode("utf-8", "replace"),
                                    received_at=now, reference=transaction.reference[:64])
        if payment is None:
            record.outcome = "unknown_reference"
            uow.gateway_events.add(record)
            try:
                uow.commit()
            except Conflict as conflict:
                if "event" in conflict.changed:
                    return "duplicate"
                raise
            log_event("payment_event_unknown_reference", level=30, reference=transaction.reference[:64])
            return "ignored"
        with payment_logs(payment):
            outcome, _ = settle(ctx, payment, target=transaction.status, transaction=transaction,
                                actor="gateway", event=record, uow=uow)
    return {"applied": "processed", "duplicate": "duplicate"}.get(outcome, "ignored")


def verified(ctx: Context, headers: Mapping[str, str], body: bytes, now: datetime) -> VerifiedEvent:
    try:
        event = ctx.gateway.verify_event(headers, body, now=int(now.timestamp()))
    except IgnoredEvent:
        raise
    except InvalidEvent:
        emit_metric(METRIC_SIGNATURE_FAILURES, 1, "Count")
        raise
    except Exception as exc:
        emit_metric(METRIC_SIGNATURE_FAILURES, 1, "Count")
        raise InvalidEvent(f"unverifiable event: {type(exc).__name__}") from exc
    age = int(now.timestamp()) - int(event.sent_at)
    if age > ctx.settings.webhook_max_age_seconds or age < -300:
        raise InvalidEvent(f"stale event ({age}s)")
    return event


def by_reference(uow: UnitOfWork, reference: str) -> Payment | None:
    return uow.payments.by_reference(reference) if rules.is_reference(reference) else None


def speaks_for_itself(payment: Payment, event: VerifiedEvent) -> bool:
    """The event is plainly about ``payment`` (its stored gateway id, its amount) and approves
    nothing: a verified event is then enough, no status query needed."""
    return (payment.gateway_id == event.gateway_id and int(payment.amount) == event.amount
            and (event.status != APPROVED or payment.status == APPROVED))


def unconfirmed(payment: Payment | None, event: VerifiedEvent, *, reason: str) -> str:
    """The gateway did not confirm (unreachable, or it says otherwise): nothing is applied nor
    stored. An open payment of that transaction is the poller's (it asks the gateway every 12
    minutes): ``deferred``, answered 200. Any other (none, ended, or another transaction's) is
    polled by nobody, so only a new delivery can settle it: ``retry``, answered 503, which the
    gateway retries (Wompi: 3 times within 24 hours)."""
    polled = (payment is not None and payment.status in OPEN_STATUSES
              and payment.gateway_id in (None, event.gateway_id))
    log_event("payment_event_unconfirmed", level=30, gateway_id=event.gateway_id, status=event.status,
              reason=reason, polled=polled)
    return "deferred" if polled else "retry"
