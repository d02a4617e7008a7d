"""The payment engine (SPEC §3): start a PSE payment, learn its outcome, apply it exactly once.

Truth comes only from a verified gateway event or a server-side status query. Every transition is
one conditional write on the status it was planned from; an approval, the obligations' new
balances, their released locks and the audit event are one ``TransactWriteItems``, so concurrent
or repeated notifications apply it once. DynamoDB round trips per action (SPEC §7):

* ``start_payment``: 3 - member and obligations (one ``BatchGetItem``), the creation transaction
  (payment, idempotency and reference claims, locks, audit), the PENDING transition - plus the
  bank list when this container has not memoized it yet (the summary page reads it before).
* ``apply_gateway_event``: 2 - the payment by reference, one transaction storing the raw event
  with the transition - plus the gateway's status query for an approval or an event that does
  not plainly match the payment's stored transaction.
* ``reconcile_pending``: one index query per page, then ≤ 2 per due payment (the transition or the
  rescheduling; a second write only when the receipt email fails).

A race that cancels a transaction costs a re-read and another try; it never applies twice.

Modules: ``start`` (banks, preview, creation), ``settle`` (applying a status), ``receipts`` (views,
email, PDF), ``gateway_events`` (webhook, refresh), ``reconcile`` (poller), ``review`` (staff),
``core`` (what they share).
"""

from __future__ import annotations

from chalicelib.services.payments.core import PAYMENT_NOT_FOUND, POLL_SHARDS
from chalicelib.services.payments.gateway_events import (
    METRIC_SIGNATURE_FAILURES,
    STATUS_QUERY_NOTES,
    apply_gateway_event,
    check_status,
    refresh_payment,
)
from chalicelib.services.payments.receipts import (
    APPLIED_HINT,
    APPLIED_LABEL,
    APPLIED_STEP,
    RECEIPT_MAX_ATTEMPTS,
    PaymentItemView,
    ReceiptView,
    handle_payment_events,
    list_payments,
    receipt,
    receipt_pdf,
    send_receipt,
)
from chalicelib.services.payments.reconcile import POLL_PAGE_SIZE, ReconcileReport, reconcile_pending
from chalicelib.services.payments.review import (
    CHANGED_MEANWHILE,
    GATEWAY_UNREACHABLE,
    NOT_UNDER_REVIEW,
    REJECTED_BY_STAFF,
    REVIEW_ACTIONS,
    Requery,
    Resolution,
    allocate,
    resend_receipt,
    resolve_review,
    staff_payment,
    staff_requery,
)
from chalicelib.services.payments.settle import (
    EXPORT_READY,
    LATE_APPROVAL,
    LOST_IF_APPROVED,
    METRIC_FLAGGED,
    POLL_KEYS,
    REVIEW_FLAG,
    REVIEW_KEYS,
)
from chalicelib.services.payments.start import (
    BUSY,
    IDEMPOTENCY_TTL,
    KEY_REUSED,
    MEMBER_UNAVAILABLE,
    OBLIGATION_UNAVAILABLE,
    STALE_BANKS_RETRY,
    PaymentPreview,
    StartedPayment,
    list_banks,
    preview_payment,
    start_payment,
)

__all__ = [  # callers import the public names from the package, not from its modules
    "APPLIED_HINT", "APPLIED_LABEL", "APPLIED_STEP", "BUSY", "CHANGED_MEANWHILE", "EXPORT_READY",
    "GATEWAY_UNREACHABLE", "IDEMPOTENCY_TTL", "KEY_REUSED", "LATE_APPROVAL", "LOST_IF_APPROVED",
    "MEMBER_UNAVAILABLE", "METRIC_FLAGGED", "METRIC_SIGNATURE_FAILURES", "NOT_UNDER_REVIEW",
    "OBLIGATION_UNAVAILABLE", "PAYMENT_NOT_FOUND", "POLL_KEYS", "POLL_PAGE_SIZE", "POLL_SHARDS",
    "RECEIPT_MAX_ATTEMPTS", "REJECTED_BY_STAFF", "REVIEW_ACTIONS", "REVIEW_FLAG", "REVIEW_KEYS",
    "STALE_BANKS_RETRY", "STATUS_QUERY_NOTES", "PaymentItemView", "PaymentPreview", "ReceiptView",
    "ReconcileReport",
    "Requery", "Resolution", "StartedPayment", "allocate", "apply_gateway_event", "check_status",
    "handle_payment_events",  # TEMPORARY (effects helper), with send_receipt: pay's replace them
    "list_banks",
    "list_payments", "preview_payment", "receipt", "receipt_pdf", "reconcile_pending",
    "refresh_payment", "resend_receipt", "resolve_review", "send_receipt", "staff_payment",
    "staff_requery", "start_payment",
]
