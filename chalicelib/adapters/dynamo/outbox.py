"""Domain events as outbox items (put with the change) and back (from the table's stream)."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import timedelta
from typing import Any

from chalicelib.adapters.dynamo.models import OutboxEvent
from chalicelib.domain.events import EVENT_TYPES, DomainEvent, PaymentEvent

#: Long past any stream consumer's retries (a stream keeps records 24 hours).
OUTBOX_TTL = timedelta(days=7)
_COMMON = {f.name for f in fields(PaymentEvent)}


class UnknownEventKind(ValueError):
    """An outbox item of a kind this code does not know (written by a newer version of it?)."""


def outbox_item(event: DomainEvent) -> OutboxEvent:
    kind = type(event).__name__
    data = {k: v for k, v in asdict(event).items() if k not in _COMMON}
    return OutboxEvent(event_id=f"{event.payment_id}#{kind}#{event.at.isoformat()}", kind=kind,
                       payment_id=event.payment_id, document_number=event.document_number,
                       reference=event.reference, at=event.at, data=data or None,
                       ttl=event.at + OUTBOX_TTL)


def event_from_item(item: OutboxEvent) -> PaymentEvent:
    event_type = EVENT_TYPES.get(item.kind)
    if event_type is None:
        raise UnknownEventKind(item.kind)
    return event_type(payment_id=item.payment_id, document_number=item.document_number,
                      reference=item.reference, at=item.at, **(item.data or {}))


def event_from_image(image: dict[str, Any]) -> PaymentEvent:
    """A stream record's new image (DynamoDB JSON) as its domain event; :class:`UnknownEventKind`
    for a kind this code does not know."""
    item = OutboxEvent.from_raw_data(image)
    item.serialize()  # raises for a missing attribute (reading raw data does not check)
    return event_from_item(item)
