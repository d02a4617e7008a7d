"""What every payment use case shares: the poller's shard, loading a payment, gateway calls."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

from chalicelib.adapters.gateways.base import GatewayTransaction
from chalicelib.context import Context, Runtime
from chalicelib.domain.payments import Payment, PaymentNotFound
from chalicelib.observability import emit_metric, log_context
from chalicelib.services.unit_of_work import UnitOfWork

POLL_SHARDS = 1  # partitions of the poller's index; raise only if its write rate ever matters
PAYMENT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
PAYMENT_NOT_FOUND = "No encontramos ese pago."
T = TypeVar("T")


def poll_shard(payment_id: str) -> str:
    return str(int(hashlib.sha256(payment_id.encode()).hexdigest()[:8], 16) % POLL_SHARDS)


def load_payment(uow: UnitOfWork, payment_id: object, document_number: str | None) -> Payment:
    """The payment of that id (of that member, when given); PaymentNotFound otherwise."""
    if not isinstance(payment_id, str) or not PAYMENT_ID.fullmatch(payment_id):
        raise PaymentNotFound(PAYMENT_NOT_FOUND)
    payment = uow.payments.get(payment_id)
    if payment is None or (document_number is not None and payment.document_number != document_number):
        raise PaymentNotFound(PAYMENT_NOT_FOUND)
    return payment


def payment_logs(payment: Payment) -> AbstractContextManager[None]:
    """Every log line inside the ``with`` block names the payment (its id and reference)."""
    return log_context(payment_id=payment.payment_id, reference=payment.reference)


def query_gateway(ctx: Context, payment: Payment) -> GatewayTransaction | None:
    """The gateway the payment was started with, asked server-side about it."""
    gateway = ctx.gateway_for(payment.gateway)
    if payment.gateway_id:
        return timed("get_transaction", gateway.get_transaction, payment.gateway_id)
    return timed("find_by_reference", gateway.find_by_reference, payment.reference)


def timed(operation: str, call: Callable[..., T], *args: object) -> T:
    """A gateway call, with its duration emitted as the GatewayLatencyMs metric."""
    started = Runtime.monotonic()
    try:
        return call(*args)
    finally:
        emit_metric("GatewayLatencyMs", round((Runtime.monotonic() - started) * 1000, 1),
                    "Milliseconds", Operation=operation)
