"""What every payment use case shares: the poller's shard, a write's changes, loading, gateway calls."""

from __future__ import annotations

import hashlib
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import payments_repo as store
from chalicelib.adapters.dynamo.models import Payment, StatusChange
from chalicelib.adapters.gateways.base import GatewayTransaction
from chalicelib.context import Context, Runtime
from chalicelib.domain.payments import PaymentNotFound
from chalicelib.observability import emit_metric, log_context

POLL_SHARDS = 1  # partitions of the due_poll index; raise only if its write rate ever matters
_PAYMENT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
PAYMENT_NOT_FOUND = "No encontramos ese pago."


def _shard(payment_id: str) -> str:
    return str(int(hashlib.sha256(payment_id.encode()).hexdigest()[:8], 16) % POLL_SHARDS)


@dataclass
class _Change:
    """What one write sets on a payment; mirrored on the local copy once committed."""

    sets: dict[str, Any]
    removes: tuple[str, ...] = ()
    history: StatusChange | None = None

    def actions(self) -> list[Action]:
        actions: list[Action] = [getattr(Payment, k).set(v) for k, v in self.sets.items()]
        actions += [getattr(Payment, k).remove() for k in self.removes]
        if self.history is not None:
            actions.append(Payment.status_history.set(Payment.status_history.append([self.history])))
        return actions

    def mirror(self, payment: Payment) -> None:
        for name, value in self.sets.items():
            setattr(payment, name, value)
        for name in self.removes:
            setattr(payment, name, None)
        if self.history is not None:
            payment.status_history = [*(payment.status_history or []), self.history]


def _load(payment_id: object, document_number: str | None) -> Payment:
    if not isinstance(payment_id, str) or not _PAYMENT_ID.fullmatch(payment_id):
        raise PaymentNotFound(PAYMENT_NOT_FOUND)
    payment = store.get_payment(payment_id)
    if payment is None or (document_number is not None and payment.document_number != document_number):
        raise PaymentNotFound(PAYMENT_NOT_FOUND)
    return payment


def _payment_logs(payment: Payment) -> AbstractContextManager[None]:
    """Every log line inside the ``with`` block names the payment (its id and reference)."""
    return log_context(payment_id=payment.payment_id, reference=payment.reference)


def _query_gateway(ctx: Context, payment: Payment) -> GatewayTransaction | None:
    ctx = ctx.for_gateway(payment.gateway)  # the gateway it was started with, even after a switch
    if payment.gateway_id:
        return gateway_transaction(ctx, payment.gateway_id)
    return _timed("find_by_reference", ctx.gateway.find_by_reference, payment.reference)


def gateway_transaction(ctx: Context, gateway_id: str) -> GatewayTransaction:
    """The gateway's own answer about one of its transactions (server-side status query)."""
    return _timed("get_transaction", ctx.gateway.get_transaction, gateway_id)


def _timed(operation: str, call: Any, *args: Any) -> Any:
    """A gateway call, with its duration emitted as the GatewayLatencyMs metric (issue 4)."""
    started = Runtime.monotonic()
    try:
        return call(*args)
    finally:
        emit_metric("GatewayLatencyMs", round((Runtime.monotonic() - started) * 1000, 1),
                    "Milliseconds", Operation=operation)
