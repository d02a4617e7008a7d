"""The payment engine (SPEC §3): start a PSE payment, learn its outcome, apply it exactly once.

Truth comes only from a verified gateway event or a server-side status query. Every transition is
one unit of work written over the versions it was planned from; an approval, the obligations' new
balances, their released locks, the audit entry and the domain event are one atomic write, so
concurrent or repeated notifications apply it once. The receipt email goes after the commit, from
the event (:func:`handle_payment_events`), once. DynamoDB round trips per action (SPEC §7):

* ``start_payment``: 3 - member and obligations (one ``BatchGetItem``), the creation transaction
  (payment, idempotency and reference claims, locks, audit), the PENDING transition - plus the
  bank list when this container has not memoized it yet (the summary page reads it before).
* ``apply_gateway_event``: 2 - the payment by reference, one transaction storing the raw event
  with the transition - plus the gateway's status query for an approval or an event that does
  not plainly match the payment's stored transaction.
* ``reconcile_pending``: one index query per page, then ≤ 2 per due payment (the transition or the
  rescheduling; a second write only when an owed receipt email fails).
* ``send_receipt``: the payment, the claim (and the un-claim when the email fails).

A race that cancels a transaction costs a re-read and another try; it never applies twice.

Modules: ``start`` (banks, preview, creation), ``settle`` (applying a status), ``receipts`` (views,
email, PDF, the events' handler), ``gateway_events`` (webhook, refresh), ``reconcile`` (poller),
``review`` (staff), ``core`` (what they share). The words members read: ``services/texts.py``.
"""

from __future__ import annotations

from chalicelib.services.payments.gateway_events import (
    STATUS_QUERY_NOTES,
    apply_gateway_event,
    check_status,
    refresh_payment,
)
from chalicelib.services.payments.receipts import (
    PaymentItemView,
    ReceiptView,
    handle_payment_events,
    list_payments,
    receipt,
    receipt_pdf,
    send_receipt,
)
from chalicelib.services.payments.reconcile import ReconcileReport, reconcile_pending
from chalicelib.services.payments.review import (
    REVIEW_ACTIONS,
    Requery,
    Resolution,
    allocate,
    resend_receipt,
    resolve_review,
    staff_payment,
    staff_requery,
)
from chalicelib.services.payments.start import (
    PaymentPreview,
    StartedPayment,
    list_banks,
    preview_payment,
    start_payment,
)

__all__ = [  # what the entry points call; callers import them from the package
    "REVIEW_ACTIONS", "STATUS_QUERY_NOTES", "PaymentItemView", "PaymentPreview", "ReceiptView",
    "ReconcileReport", "Requery", "Resolution", "StartedPayment", "allocate", "apply_gateway_event",
    "check_status", "handle_payment_events", "list_banks", "list_payments", "preview_payment",
    "receipt", "receipt_pdf", "reconcile_pending", "refresh_payment", "resend_receipt",
    "resolve_review", "send_receipt", "staff_payment", "staff_requery", "start_payment",
]
