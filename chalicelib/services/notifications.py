"""What each domain event sets off after its commit (the receipt email and its PDF), off the request
path: the events table's DynamoDB Stream delivers the events in AWS (``app.py``), the local runner
reads the same stream on this machine.

Delivery is at least once and in batches, so every handler is idempotent (the payment's receipt
claim makes its email go once however often the event arrives); one event's failure neither stops
the others nor is forgotten (:func:`handle_events` returns it, for the stream to deliver it again);
a kind without a handler is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from chalicelib.context import Context
from chalicelib.domain.events import PaymentApproved, PaymentEvent, PaymentRejected
from chalicelib.observability import emit_metric, log_context, log_event
from chalicelib.services.payments import handle_payment_events

Handler = Callable[[Context, Sequence[PaymentEvent]], None]

#: Per kind of event, what runs after the commit. A kind not listed (a flagged payment: staff see
#: it in the review list, its metric alarms) needs nothing.
HANDLERS: dict[type[PaymentEvent], Handler] = {
    PaymentApproved: handle_payment_events,  # the receipt
    PaymentRejected: handle_payment_events,  # the receipt that says why there was no payment
}

#: EMF metrics (dimension Kind): events acted on, events whose handler failed (delivered again).
METRIC_HANDLED = "DomainEventsHandled"
METRIC_FAILED = "DomainEventsFailed"


def handle_events(ctx: Context, events: Sequence[PaymentEvent]) -> list[int]:
    """Run each event's handler, in order; return the positions (in ``events``) of those whose
    handler failed: the caller has them delivered again."""
    failed: list[int] = []
    for position, event in enumerate(events):
        kind = type(event).__name__
        with log_context(payment_id=event.payment_id):
            handler = HANDLERS.get(type(event))
            if handler is None:
                log_event("domain_event_skipped", kind=kind, reference=event.reference)
                continue
            try:
                handler(ctx, [event])
            except Exception as exc:
                log_event("domain_event_failed", level=logging.ERROR, exc_info=True, kind=kind,
                          reference=event.reference, error=f"{type(exc).__name__}: {exc}"[:200])
                emit_metric(METRIC_FAILED, 1, "Count", Kind=kind)
                failed.append(position)
                continue
            log_event("domain_event_handled", kind=kind, reference=event.reference)
            emit_metric(METRIC_HANDLED, 1, "Count", Kind=kind)
    return failed
