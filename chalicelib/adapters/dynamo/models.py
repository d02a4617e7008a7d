"""PynamoDB models: one table per entity, names ``{TABLE_PREFIX}-{entity}``.

Table names and region are fixed when this module is imported (a Lambda container's environment
does not change). DynamoDB TTL deletes lazily (and moto never does), so every read of an item with
``ttl`` must check expiry itself: see the ``is_expired`` helpers.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.config import get_settings

_settings = get_settings()


def table_name(entity: str) -> str:
    return f"{_settings.table_prefix}-{entity}"


class _Meta:
    region = _settings.region
    billing_mode = "PAY_PER_REQUEST"


class Member(Model):
    """A member of the cooperative, loaded from the core system; the password is set by the member."""

    class Meta(_Meta):
        table_name = table_name("members")

    document_number = UnicodeAttribute(hash_key=True)
    document_type = UnicodeAttribute(default="CC")
    full_name = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    status = UnicodeAttribute(default="ACTIVO")  # ACTIVO | INACTIVO | BLOQUEADO (core system)
    portal_blocked = BooleanAttribute(default=False)  # blocked by staff in the portal
    password_hash = UnicodeAttribute(null=True)
    password_history = ListAttribute(of=UnicodeAttribute, null=True)  # previous hashes, newest first
    password_changed_at = UTCDateTimeAttribute(null=True)
    failed_consecutive = NumberAttribute(default=0)
    locked_until = UTCDateTimeAttribute(null=True)
    failure_window_start = UTCDateTimeAttribute(null=True)
    failure_window_count = NumberAttribute(default=0)
    last_login_at = UTCDateTimeAttribute(null=True)
    last_login_ip = UnicodeAttribute(null=True)
    previous_login_at = UTCDateTimeAttribute(null=True)
    previous_login_ip = UnicodeAttribute(null=True)
    terms_version = UnicodeAttribute(null=True)
    terms_accepted_at = UTCDateTimeAttribute(null=True)
    terms_accepted_ip = UnicodeAttribute(null=True)
    active_recovery = UnicodeAttribute(null=True)  # hash of the newest recovery token
    imported_at = UTCDateTimeAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)


class SessionsByMember(GlobalSecondaryIndex["Session"]):
    class Meta:
        index_name = "by_member"
        projection = KeysOnlyProjection()

    document_number = UnicodeAttribute(hash_key=True)


class Session(Model):
    """A signed-in browser or API client. Keyed by the SHA-256 of the cookie value."""

    class Meta(_Meta):
        table_name = table_name("sessions")

    session_hash = UnicodeAttribute(hash_key=True)
    document_number = UnicodeAttribute()
    csrf_token = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    last_seen_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()  # absolute end
    ip = UnicodeAttribute(null=True)
    ttl = TTLAttribute()
    by_member = SessionsByMember()


class Recovery(Model):
    """A credential-recovery request: token and temporary key stored hashed, single use."""

    class Meta(_Meta):
        table_name = table_name("recoveries")

    token_hash = UnicodeAttribute(hash_key=True)
    document_number = UnicodeAttribute()
    key_hash = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()
    attempts = NumberAttribute(default=0)
    used_at = UTCDateTimeAttribute(null=True)
    ttl = TTLAttribute()


class RateCounter(Model):
    """A fixed-window counter (per IP and action, per account...)."""

    class Meta(_Meta):
        table_name = table_name("rate-counters")

    counter_key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    ttl = TTLAttribute()


class AuditEvent(Model):
    """Append-only security and payment audit trail, per member (``subject``)."""

    class Meta(_Meta):
        table_name = table_name("audit")

    subject = UnicodeAttribute(hash_key=True)  # a document number, or "system"
    event_key = UnicodeAttribute(range_key=True)  # ISO time + random suffix: ordered, unique
    event = UnicodeAttribute()  # OWASP logging vocabulary where one applies
    actor = UnicodeAttribute()  # "member", "staff:<id>", "gateway", "system"
    ip = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    payment_id = UnicodeAttribute(null=True)
    details = MapAttribute(null=True)


class Obligation(Model):
    """Something a member owes, loaded from the core system (aporte, crédito, ahorro, convenio)."""

    class Meta(_Meta):
        table_name = table_name("obligations")

    document_number = UnicodeAttribute(hash_key=True)
    obligation_id = UnicodeAttribute(range_key=True)
    type = UnicodeAttribute()  # APORTE | CREDITO | AHORRO | CONVENIO
    product_number = UnicodeAttribute()
    description = UnicodeAttribute()
    due_date = UnicodeAttribute()  # YYYY-MM-DD
    amount_due = NumberAttribute()
    minimum_amount = NumberAttribute()
    maximum_amount = NumberAttribute()
    cutoff = UTCDateTimeAttribute()  # when the core system computed the balance
    status = UnicodeAttribute(default="OPEN")  # OPEN | CLOSED (absent from a newer full file)
    pending_payment_id = UnicodeAttribute(null=True)  # the PENDING payment holding it (PSE rule)
    pending_reference = UnicodeAttribute(null=True)  # that payment's reference, for the list (payments)
    # Payments applied in the portal, not yet known to the core: payment id -> {amount, at}.
    portal_payments = MapAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (Member, Session, Recovery, RateCounter, AuditEvent, Obligation)


# --- payments (issue 3): payments, gateway events, idempotency claims, bank list cache ----------

class PaymentItem(MapAttribute):
    """One obligation paid, as it was when the payment locked it."""

    obligation_id = UnicodeAttribute()
    type = UnicodeAttribute()
    product_number = UnicodeAttribute()  # as the core system wrote it; masked when shown
    description = UnicodeAttribute()
    amount = NumberAttribute()
    # The obligation's balance when it was locked: the optimistic basis for applying an approval
    # in the same transaction as the status change (re-read only if it changed meanwhile).
    due_before = NumberAttribute(null=True)
    minimum_before = NumberAttribute(null=True)
    maximum_before = NumberAttribute(null=True)


class StatusChange(MapAttribute):
    status = UnicodeAttribute()
    at = UTCDateTimeAttribute()


class PaymentsByMember(GlobalSecondaryIndex["Payment"]):
    class Meta:
        index_name = "by_member"
        projection = AllProjection()

    document_number = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class PaymentsByReference(GlobalSecondaryIndex["Payment"]):
    class Meta:
        index_name = "by_reference"
        projection = AllProjection()

    reference = UnicodeAttribute(hash_key=True)


class PaymentsByCus(GlobalSecondaryIndex["Payment"]):
    class Meta:
        index_name = "by_cus"
        projection = AllProjection()

    cus = UnicodeAttribute(hash_key=True)


class PaymentsDuePoll(GlobalSecondaryIndex["Payment"]):
    """Sparse: only payments the poller still owes something (a status query, a receipt email)."""

    class Meta:
        index_name = "due_poll"
        projection = AllProjection()

    poll_shard = UnicodeAttribute(hash_key=True)
    next_poll_at = UTCDateTimeAttribute(range_key=True)


class PaymentsForReview(GlobalSecondaryIndex["Payment"]):
    """Sparse: payments staff must reconcile by hand (mismatched amount/reference, horizon)."""

    class Meta:
        index_name = "review"
        projection = AllProjection()

    review_flag = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class Payment(Model):
    """One PSE payment attempt of a member; saved CREATED before the gateway is called."""

    class Meta(_Meta):
        table_name = table_name("payments")

    payment_id = UnicodeAttribute(hash_key=True)  # 128-bit random, URL-safe: the receipt's key
    reference = UnicodeAttribute()  # ours, sent to the gateway, never reused
    document_number = UnicodeAttribute()
    document_type = UnicodeAttribute(default="CC")
    payer_name = UnicodeAttribute()
    payer_email = UnicodeAttribute(null=True)
    status = UnicodeAttribute()  # CREATED | PENDING | APPROVED | REJECTED | FAILED | EXPIRED
    amount = NumberAttribute()  # COP, integer pesos
    items = ListAttribute(of=PaymentItem)
    bank_code = UnicodeAttribute()
    bank_name = UnicodeAttribute(null=True)
    person_type = UnicodeAttribute()  # natural | juridica
    description = UnicodeAttribute()
    ip = UnicodeAttribute()
    gateway = UnicodeAttribute()
    gateway_id = UnicodeAttribute(null=True)
    cus = UnicodeAttribute(null=True)  # PSE's Código Único de Seguimiento
    bank_url = UnicodeAttribute(null=True)
    status_message = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    approved_at = UTCDateTimeAttribute(null=True)
    status_history = ListAttribute(of=StatusChange)
    idempotency_key = UnicodeAttribute(null=True)
    next_poll_at = UTCDateTimeAttribute(null=True)
    poll_shard = UnicodeAttribute(null=True)
    review_reason = UnicodeAttribute(null=True)
    review_flag = UnicodeAttribute(null=True)
    receipt_emailed = BooleanAttribute(default=False)
    receipt_attempts = NumberAttribute(default=0)
    exported_at = UTCDateTimeAttribute(null=True)  # reserved for the back office export

    by_member = PaymentsByMember()
    by_reference = PaymentsByReference()
    by_cus = PaymentsByCus()
    due_poll = PaymentsDuePoll()
    review = PaymentsForReview()


class GatewayEvent(Model):
    """A verified gateway notification, raw, stored once (its id is the signed checksum)."""

    class Meta(_Meta):
        table_name = table_name("gateway-events")

    event_id = UnicodeAttribute(hash_key=True)
    gateway = UnicodeAttribute()
    body = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()
    reference = UnicodeAttribute(null=True)
    payment_id = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute()  # applied | stale | unchanged | unknown_reference | review


class IdempotencyRecord(Model):
    """A one-shot claim, written in the transaction that creates a payment.

    ``{document}#{Idempotency-Key}`` records expire after 24 h (``ttl``, checked on read);
    ``reference#{reference}`` records never expire: they make a reference impossible to reuse.
    """

    class Meta(_Meta):
        table_name = table_name("idempotency")

    record_key = UnicodeAttribute(hash_key=True)
    payment_id = UnicodeAttribute()
    fingerprint = UnicodeAttribute(null=True)  # SHA-256 of the request the key came with
    created_at = UTCDateTimeAttribute()
    ttl = TTLAttribute(null=True)


class BankListCache(Model):
    """The gateway's bank list, refreshed daily (PSE rule); kept past expiry as a fallback."""

    class Meta(_Meta):
        table_name = table_name("bank-list")

    cache_key = UnicodeAttribute(hash_key=True)  # the gateway's name
    banks = UnicodeAttribute()  # JSON [[code, name], ...] in the gateway's order
    fetched_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()


ALL_MODELS = ALL_MODELS + (Payment, GatewayEvent, IdempotencyRecord, BankListCache)
