"""PynamoDB models: one table per entity, named ``{TABLE_PREFIX}-{entity}``.

Importing this module reads no configuration: :func:`bind_tables` gives every model its table
name and region from the settings, and the composition root calls it (``chalicelib.context`` when
it builds a context or a DynamoDB unit of work, the local runner, the tests' fixtures). A model
used before that fails (PynamoDB: "Models must have a table_name"). DynamoDB TTL deletes lazily
(and moto never does), so every read of an item with ``ttl`` must check expiry itself: see the
``is_expired`` helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

if TYPE_CHECKING:
    from chalicelib.config import Settings


class TableMeta:
    """Every model's ``Meta``: ``entity`` names its table; :func:`bind_tables` sets the name and
    the region."""

    entity: ClassVar[str]
    table_name: ClassVar[str]
    region: ClassVar[str | None] = None
    billing_mode = "PAY_PER_REQUEST"


class Member(Model):
    """A member of the cooperative, loaded from the core system; the password is set by the member."""

    class Meta(TableMeta):
        entity = "members"

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
    # Reminder emails : set by the unsubscribe link; the core system's import keeps it.
    preferred_bank_code = UnicodeAttribute(null=True)  # the last bank and person type paid with
    preferred_person_type = UnicodeAttribute(null=True)
    reminders_opt_out = BooleanAttribute(default=False)
    reminders_opt_out_at = UTCDateTimeAttribute(null=True)
    version = NumberAttribute(null=True)  # the unit of work's optimistic lock (absent = 0)


class SessionsByMember(GlobalSecondaryIndex["Session"]):
    class Meta:
        index_name = "by_member"
        projection = KeysOnlyProjection()

    document_number = UnicodeAttribute(hash_key=True)


class Session(Model):
    """A signed-in browser or API client. Keyed by the SHA-256 of the cookie value."""

    class Meta(TableMeta):
        entity = "sessions"

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

    class Meta(TableMeta):
        entity = "recoveries"

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

    class Meta(TableMeta):
        entity = "rate-counters"

    counter_key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    ttl = TTLAttribute()


class AuditEvent(Model):
    """Append-only security and payment audit trail, per member (``subject``)."""

    class Meta(TableMeta):
        entity = "audit"

    subject = UnicodeAttribute(hash_key=True)  # a document number, or "system"
    event_key = UnicodeAttribute(range_key=True)  # ISO time + random suffix: ordered, unique
    event = UnicodeAttribute()  # OWASP logging vocabulary where one applies
    actor = UnicodeAttribute()  # "member", "staff:<id>", "gateway", "system"
    ip = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    payment_id = UnicodeAttribute(null=True)
    details: MapAttribute[str, Any] = MapAttribute(null=True)


class ObligationsByDueDate(GlobalSecondaryIndex["Obligation"]):
    """Obligations due on one day (the daily reminders query a few days, never scan).

    Partitioned by the due date itself: a day's partition holds that day's instalments, so the
    importer's writes spread over many partitions and a query reads only the day asked for.
    """

    class Meta:
        index_name = "by_due_date"
        projection = AllProjection()

    due_date = UnicodeAttribute(hash_key=True)
    document_number = UnicodeAttribute(range_key=True)


class ObligationsOpenByImport(GlobalSecondaryIndex["Obligation"]):
    """Sparse, back office: OPEN obligations by the last import that listed them.

    ``open_shard`` exists only while the obligation is OPEN (a hash of its key, "0".."15", so an
    import's 100,000 writes spread over 16 index partitions instead of one hot key). After a full
    file, the OPEN obligations it did not list are those whose ``import_batch`` is not the file's:
    two range queries per shard (``< batch`` and ``> batch``), keys only, never a scan.
    """

    class Meta:
        index_name = "open_by_import"
        projection = KeysOnlyProjection()

    open_shard = UnicodeAttribute(hash_key=True)
    import_batch = UnicodeAttribute(range_key=True)


class Obligation(Model):
    """Something a member owes, loaded from the core system (aporte, crédito, ahorro, convenio)."""

    class Meta(TableMeta):
        entity = "obligations"

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
    portal_payments: MapAttribute[str, Any] = MapAttribute(null=True)
    updated_at = UTCDateTimeAttribute(null=True)
    # --- back office: closing obligations absent from a full file (services/imports) ---
    import_batch = UnicodeAttribute(null=True)  # the last import that listed it (a batch id)
    import_line = NumberAttribute(null=True)  # its line in that file (to name repeated rows)
    open_shard = UnicodeAttribute(null=True)  # "0".."15" while OPEN: the open_by_import index
    closed_at = UTCDateTimeAttribute(null=True)  # when a full file without it closed it
    # The instalment's parts at the cut-off when the file gives them (domain/allocation):
    # {"late_interest"|"fees"|"insurance"|"interest"|"capital": pesos}, adding up to the file's amount_due.
    instalment_parts = JSONAttribute(null=True)
    opened_on = UnicodeAttribute(null=True)  # YYYY-MM-DD, the product's opening date (optional)
    version = NumberAttribute(null=True)  # the unit of work's optimistic lock (absent = 0)

    by_due_date = ObligationsByDueDate()
    open_by_import = ObligationsOpenByImport()  # back office


# --- payments: payments, gateway events, idempotency claims, bank list cache ----------

class TypedMap(MapAttribute[str, Any]):
    """A map of named attributes whose constructor is typed: PynamoDB's is not annotated (and
    mypy's ``untyped_calls_exclude`` does not cover a ``super()`` call)."""

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)  # type: ignore[no-untyped-call]


class PaymentItem(TypedMap):
    """One obligation paid, as it was when the payment locked it."""

    obligation_id = UnicodeAttribute()
    type = UnicodeAttribute()
    product_number = UnicodeAttribute()  # as the core system wrote it; masked when shown
    description = UnicodeAttribute()
    amount = NumberAttribute()
    # The obligation's balance and version when it was locked: the basis for applying an approval
    # in the same transaction as the status change (re-read only if it changed meanwhile).
    due_before = NumberAttribute(null=True)
    minimum_before = NumberAttribute(null=True)
    maximum_before = NumberAttribute(null=True)
    obligation_version = NumberAttribute(null=True)
    # What was left of each part of the instalment, in the cooperative's order of application, when
    # the payment started: [[part, pesos], ...] . The receipt's allocation comes from it,
    # so a later import or a new ALLOCATION_ORDER never changes a past receipt.
    parts = JSONAttribute(null=True)
    opened_on = UnicodeAttribute(null=True)  # the obligation's product opening date


class StatusChange(TypedMap):
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


# --- back office: export queue, staff search --------------------------------------------

class PaymentsToExport(GlobalSecondaryIndex["Payment"]):
    """Sparse: APPROVED payments no export has claimed yet. ``export_pending`` is set in the
    transaction that applies the approval and removed by the conditional write that claims the
    payment for one export. Keys only: the claim's ``ALL_NEW`` answer carries the whole item."""

    class Meta:
        index_name = "export_queue"
        projection = KeysOnlyProjection()

    export_pending = UnicodeAttribute(hash_key=True)
    approved_at = UTCDateTimeAttribute(range_key=True)


class PaymentsByExport(GlobalSecondaryIndex["Payment"]):
    """Sparse: the payments an export claimed (to finish an export a crash left half done)."""

    class Meta:
        index_name = "by_export"
        projection = KeysOnlyProjection()

    export_id = UnicodeAttribute(hash_key=True)


class PaymentsByStatus(GlobalSecondaryIndex["Payment"]):
    """Staff search by status and creation date (Colombian days turned into a created_at range)."""

    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class Payment(Model):
    """One PSE payment attempt of a member; saved CREATED before the gateway is called."""

    class Meta(TableMeta):
        entity = "payments"

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
    exported_at = UTCDateTimeAttribute(null=True)  # when an export claimed it (back office)
    # --- back office ---
    export_pending = UnicodeAttribute(null=True)  # "READY" from approval until an export claims it
    export_id = UnicodeAttribute(null=True)  # the one export that carries it
    core_applied_at = UTCDateTimeAttribute(null=True)  # confirmed by the core system's import
    original_amount = NumberAttribute(null=True)  # before staff applied the gateway's amount
    poll_horizon_at = UTCDateTimeAttribute(null=True)  # staff kept it pending: the new horizon
    review_resolution = UnicodeAttribute(null=True)  # apply | reject | keep_pending (the last one)
    review_resolved_by = UnicodeAttribute(null=True)  # staff:<identity>
    review_resolved_at = UTCDateTimeAttribute(null=True)
    review_note = UnicodeAttribute(null=True)  # the staff member's reason
    version = NumberAttribute(null=True)  # the unit of work's optimistic lock (absent = 0)
    # What the payer accepted before paying (documents with their versions, time, IP, user agent).
    consent = JSONAttribute(null=True)

    by_member = PaymentsByMember()
    by_reference = PaymentsByReference()
    by_cus = PaymentsByCus()
    due_poll = PaymentsDuePoll()
    review = PaymentsForReview()
    export_queue = PaymentsToExport()  # back office
    by_export = PaymentsByExport()  # back office
    by_status = PaymentsByStatus()  # back office


class GatewayEventsByReference(GlobalSecondaryIndex["GatewayEvent"]):
    """A payment's notifications in the order received (the staff console's payment detail)."""

    class Meta:
        index_name = "by_reference"
        projection = AllProjection()

    reference = UnicodeAttribute(hash_key=True)
    received_at = UTCDateTimeAttribute(range_key=True)


class GatewayEvent(Model):
    """A verified gateway notification, raw, stored once per ``gateway#transaction id#status``
    (the signed values; ``gateway_events.event_key``), never read back to decide anything."""

    class Meta(TableMeta):
        entity = "gateway-events"

    event_id = UnicodeAttribute(hash_key=True)
    gateway = UnicodeAttribute()
    body = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()
    reference = UnicodeAttribute(null=True)
    payment_id = UnicodeAttribute(null=True)
    outcome = UnicodeAttribute()  # applied | stale | unchanged | unknown_reference | review
    by_reference = GatewayEventsByReference()  # staff console


class IdempotencyRecord(Model):
    """A one-shot claim, written in the transaction that creates a payment.

    ``{document}#{Idempotency-Key}`` records expire after 24 h (``ttl``, checked on read);
    ``reference#{reference}`` records never expire: they make a reference impossible to reuse.
    """

    class Meta(TableMeta):
        entity = "idempotency"

    record_key = UnicodeAttribute(hash_key=True)
    payment_id = UnicodeAttribute()
    fingerprint = UnicodeAttribute(null=True)  # SHA-256 of the request the key came with
    created_at = UTCDateTimeAttribute()
    ttl = TTLAttribute(null=True)


class BankListCache(Model):
    """The gateway's bank list, refreshed daily (PSE rule); kept past expiry as a fallback."""

    class Meta(TableMeta):
        entity = "bank-list"

    cache_key = UnicodeAttribute(hash_key=True)  # the gateway's name
    banks = UnicodeAttribute()  # JSON [[code, name], ...] in the gateway's order
    fetched_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()




# --- back office: exports of approved payments for the core system ---------------------

class OpenExports(GlobalSecondaryIndex["Export"]):
    """Sparse: exports not finished yet (a crash between claiming and writing the file)."""

    class Meta:
        index_name = "open_exports"
        projection = AllProjection()

    open_flag = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class Export(Model):
    """One CSV of approved payments written to S3 for the core system (SPEC §4)."""

    class Meta(TableMeta):
        entity = "exports"

    export_id = UnicodeAttribute(hash_key=True)  # YYYYMMDD-HHMMSS (Colombia) + random suffix
    status = UnicodeAttribute()  # OPEN (claiming, file not written yet) | COMPLETE
    created_at = UTCDateTimeAttribute()
    requested_by = UnicodeAttribute()  # "system:schedule" or "staff:<identity>"
    key = UnicodeAttribute(null=True)  # S3 object key, set when the file is written
    rows = NumberAttribute(default=0)  # CSV data rows: one per (payment, obligation)
    payments = NumberAttribute(default=0)
    total_amount = NumberAttribute(default=0)  # COP, sum of the payments' totals
    completed_at = UTCDateTimeAttribute(null=True)
    lease_until = UTCDateTimeAttribute(null=True)  # who may finish an OPEN export, and until when
    open_flag = UnicodeAttribute(null=True)  # "OPEN" while open (the open_exports index)

    open_exports = OpenExports()




# --- member reminders -----------------------------------------------------------------

class ReminderSent(Model):
    """One reminder email, claimed with a conditional put before it is sent (at most once).

    Keys: ``due#{document}#{obligation_id}#{due_date}`` and ``pending#{payment_id}``. A failed
    send deletes its claim so the next run tries again; ``ttl`` forgets claims long after use.
    """

    class Meta(TableMeta):
        entity = "reminders"

    reminder_key = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # due | pending
    document_number = UnicodeAttribute()
    sent_at = UTCDateTimeAttribute()
    ttl = TTLAttribute(null=True)




# --- back office: runs of the core system's imports, and their lock --------------------

class ImportRun(Model):
    """One import of a core-system file (what it did), or the lock ``lock#obligations`` that keeps
    obligations imports one at a time: closing the obligations a full file does not list is only
    right if no other import is stamping obligations meanwhile (services/imports.py)."""

    class Meta(TableMeta):
        entity = "imports"

    run_id = UnicodeAttribute(hash_key=True)  # the import's batch id, or "lock#obligations"
    kind = UnicodeAttribute()  # members | obligations
    source = UnicodeAttribute(null=True)  # the file: a path, or s3://bucket/key
    started_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)
    holder = UnicodeAttribute(null=True)  # the lock: the batch id of the import holding it
    lease_until = UTCDateTimeAttribute(null=True)  # the lock: free after this (a crashed import)
    summary = UnicodeAttribute(null=True)  # the report's counts, JSON




# --- staff console: server-side staff sessions (the identity itself lives in Cognito) -----------

class StaffSessionsByUser(GlobalSecondaryIndex["StaffSession"]):
    """A staff user's sessions (to end them all when the user is disabled or asks to)."""

    class Meta:
        index_name = "by_username"
        projection = KeysOnlyProjection()

    username = UnicodeAttribute(hash_key=True)


class StaffSession(Model):
    """A staff browser, keyed by the SHA-256 of its cookie value. ``stage`` is ``ACTIVE`` for a
    signed-in session, else the Cognito challenge the sign-in waits for (``NEW_PASSWORD_REQUIRED``,
    ``SOFTWARE_TOKEN_MFA``, ``MFA_SETUP``, ``TOKEN_SETUP``): a pending sign-in opens no page."""

    class Meta(TableMeta):
        entity = "staff-sessions"

    session_hash = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute()
    stage = UnicodeAttribute()
    groups = ListAttribute(of=UnicodeAttribute, null=True)
    csrf_token = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    last_seen_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()  # absolute end (a pending sign-in: a few minutes)
    ip = UnicodeAttribute(null=True)
    challenge_session = UnicodeAttribute(null=True)  # Cognito's Session while a challenge is open
    access_token = UnicodeAttribute(null=True)  # only while setting up TOTP without a challenge
    totp_secret = UnicodeAttribute(null=True)  # only while setting up TOTP (shown to the user)
    ttl = TTLAttribute()
    by_username = StaffSessionsByUser()


# --- domain events (the outbox): written with the change, handled from the table's stream ------

class OutboxEvent(Model):
    """A domain event (``chalicelib.domain.events``), put in the same transaction as the change it
    records; its table's stream (new images) feeds the handlers that act after the commit."""

    class Meta(TableMeta):
        entity = "events"
        stream_view_type = "NEW_IMAGE"

    event_id = UnicodeAttribute(hash_key=True)  # {payment_id}#{type}#{at}: a replay is one item
    kind = UnicodeAttribute()  # the event's class name
    payment_id = UnicodeAttribute()
    document_number = UnicodeAttribute()
    reference = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    data = JSONAttribute(null=True)  # the event's other fields (status, reason)
    ttl = TTLAttribute()


ALL_MODELS: tuple[type[Model], ...] = (
    Member, Session, Recovery, RateCounter, AuditEvent, Obligation, Payment, GatewayEvent,
    IdempotencyRecord, BankListCache, Export, ReminderSent, ImportRun, StaffSession, OutboxEvent,
)

_bound: tuple[str, str] | None = None  # (table prefix, region) of the last bind_tables


def _table_meta(model: type[Model]) -> type[TableMeta]:
    meta = model.Meta
    if not (isinstance(meta, type) and issubclass(meta, TableMeta)):
        raise TypeError(f"{model.__name__}.Meta must derive from TableMeta")
    return meta


def entity(model: type[Model]) -> str:
    """What follows the prefix in the model's table name (``members``, ``rate-counters``...)."""
    return _table_meta(model).entity


def bind_tables(settings: Settings) -> None:
    """Point every model at ``{settings.table_prefix}-{entity}`` in ``settings.region``.

    Idempotent and cheap once bound. PynamoDB keeps one connection per model and makes a new one
    only when ``Meta.table_name`` changes, so a new region alone drops the cached connection too.
    """
    global _bound
    wanted = (settings.table_prefix, settings.region)
    if _bound == wanted:
        return
    for model in ALL_MODELS:
        meta = _table_meta(model)
        if meta.region != settings.region:
            model._connection = None
        meta.table_name = f"{settings.table_prefix}-{meta.entity}"
        meta.region = settings.region
    _bound = wanted
