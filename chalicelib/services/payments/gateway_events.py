"""What the gateway says: its verified notifications (webhook) and server-side status queries."""

from __future__ import annotations

from collections.abc import Mapping

from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamo import payments_repo as store
from chalicelib.adapters.dynamo.models import GatewayEvent
from chalicelib.adapters.dynamo.repositories import aws_error_code
from chalicelib.adapters.gateways.base import GatewayError, InvalidEvent
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.payments import EXPIRED, OPEN_STATUSES
from chalicelib.observability import emit_metric, log_event
from chalicelib.services.payments.core import _load, _payment_logs, _query_gateway
from chalicelib.services.payments.receipts import ReceiptView, _view
from chalicelib.services.payments.settle import _settle

METRIC_SIGNATURE_FAILURES = "WebhookSignatureFailures"


def refresh_payment(ctx: Context, payment_id: str, *,
                    document_number: str | None = None) -> ReceiptView:
    """Ask the gateway server-side and apply the answer (the return page; never query params)."""
    payment = _load(payment_id, document_number)
    if payment.status in OPEN_STATUSES or payment.status == EXPIRED:
        with _payment_logs(payment):
            try:
                transaction = _query_gateway(ctx, payment)
            except GatewayError as exc:
                log_event("payment_query_failed", level=30, code=exc.code)
                transaction = None
            if transaction is not None:
                _, payment = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                                     actor="gateway")
    return _view(payment, full=document_number is not None)


def apply_gateway_event(ctx: Context, headers: Mapping[str, str], body: bytes) -> str:
    """A gateway notification: ``processed``, ``duplicate`` or ``ignored``; InvalidEvent if forged,
    malformed or stale. Two round trips: the payment by reference, one transaction."""
    now = ctx.now()
    try:
        event = ctx.gateway.verify_event(headers, body, now=int(now.timestamp()))
    except InvalidEvent:
        emit_metric(METRIC_SIGNATURE_FAILURES, 1, "Count")
        raise
    except Exception as exc:
        emit_metric(METRIC_SIGNATURE_FAILURES, 1, "Count")
        raise InvalidEvent(f"unverifiable event: {type(exc).__name__}") from exc
    age = int(now.timestamp()) - int(event.sent_at)
    if age > ctx.settings.webhook_max_age_seconds or age < -300:
        raise InvalidEvent(f"stale event ({age}s)")
    transaction = event.transaction
    record = GatewayEvent(event_id=event.event_id[:256], gateway=ctx.gateway.name,
                          body=body.decode("utf-8", "replace"), received_at=now,
                          reference=transaction.reference[:64], outcome="")
    payment = store.payment_by_reference(transaction.reference) if rules.is_reference(
        transaction.reference) else None
    if payment is None:
        record.outcome = "unknown_reference"
        try:
            record.save(condition=GatewayEvent.event_id.does_not_exist())
        except PutError as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return "duplicate"
            raise
        log_event("payment_event_unknown_reference", level=30, reference=transaction.reference[:64])
        return "ignored"
    with _payment_logs(payment):
        outcome, _ = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                             actor="gateway", event=record)
    return {"applied": "processed", "duplicate": "duplicate"}.get(outcome, "ignored")
