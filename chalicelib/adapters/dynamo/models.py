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
    # Payments applied in the portal, not yet known to the core: payment id -> {amount, at}.
    portal_payments = MapAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (Member, Session, Recovery, RateCounter, AuditEvent, Obligation)
