"""What happened to a payment, recorded by the unit of work in the same atomic write as the change.

Handlers act on them after the commit, off the request path (the receipt email and PDF): in AWS
from the events table's DynamoDB Stream, locally from the runner. Delivery is at least once, so a
handler must be idempotent (the payment's receipt claim makes the email go once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PaymentEvent:
    payment_id: str
    document_number: str
    reference: str
    at: datetime


@dataclass(frozen=True)
class PaymentApproved(PaymentEvent):
    """The gateway's approval was applied to the obligations."""


@dataclass(frozen=True)
class PaymentRejected(PaymentEvent):
    """The payment ended without money: rejected by the bank, failed, expired or rejected by staff."""

    status: str


@dataclass(frozen=True)
class PaymentFlagged(PaymentEvent):
    """The payment needs a person: the gateway's answer did not match it (``reason``)."""

    reason: str


DomainEvent = PaymentApproved | PaymentRejected | PaymentFlagged
EVENT_TYPES: dict[str, type[PaymentEvent]] = {
    cls.__name__: cls for cls in (PaymentApproved, PaymentRejected, PaymentFlagged)
}
