"""The events table's DynamoDB Stream as Lambda delivers it to ``app.py`` (a batch of records): each
new item back to its domain event, :func:`~chalicelib.services.notifications.handle_events`, and
the partial batch answer (``ReportBatchItemFailures``) that makes Lambda deliver the failed
records again. The local runner calls the same handler with the same event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.adapters.dynamo.outbox import UnknownEventKind, event_from_image
from chalicelib.context import get_context
from chalicelib.domain.events import PaymentEvent
from chalicelib.observability import emit_metric, log_event
from chalicelib.services import notifications

BatchResponse = dict[str, list[dict[str, str]]]

#: EMF metric (dimension Kind) of the events this code cannot read (skipped, never retried).
METRIC_UNKNOWN = "DomainEventsUnknown"


def deliver(lambda_event: Mapping[str, Any]) -> BatchResponse:
    """Hand the batch's events to their handlers; answer the sequence numbers to deliver again.

    A removed item (the TTL's clean-up) is no event. An item of an unknown kind is logged and
    skipped: no retry would teach this code its meaning. An unreadable item is reported failed, so
    the retries and then the mapping's failure destination keep it for a person.
    """
    sequences: list[str] = []
    events: list[PaymentEvent] = []
    failures: list[str] = []
    for record in lambda_event.get("Records", []):
        change = record.get("dynamodb", {})
        image = change.get("NewImage")
        if image is None:
            continue
        sequence = str(change["SequenceNumber"])
        try:
            events.append(event_from_image(image))
        except UnknownEventKind as unknown:
            log_event("domain_event_unknown", level=logging.WARNING, kind=str(unknown),
                      sequence_number=sequence)
            emit_metric(METRIC_UNKNOWN, 1, "Count", Kind=str(unknown))
            continue
        except Exception as exc:
            log_event("domain_event_unreadable", level=logging.ERROR, sequence_number=sequence,
                      error=f"{type(exc).__name__}: {exc}"[:200])
            failures.append(sequence)
            continue
        sequences.append(sequence)
    failed = notifications.handle_events(get_context(), events)
    failures += [sequences[position] for position in failed]
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failures]}
