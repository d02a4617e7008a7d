"""The payment engine (SPEC §3): start a PSE payment, learn its outcome, apply it exactly once.

Truth comes only from a verified gateway event or a server-side status query. Every transition is
one conditional write on the status it was planned from; an approval, the obligations' new
balances, their released locks and the audit event are one ``TransactWriteItems``, so concurrent
or repeated notifications apply it once. DynamoDB round trips per action (SPEC §7):

* ``start_payment``: 3 - member and obligations (one ``BatchGetItem``), the creation transaction
  (payment, idempotency and reference claims, locks, audit), the PENDING transition - plus the
  bank list when this container has not memoized it yet (the summary page reads it before).
* ``apply_gateway_event``: 2 - the payment by reference, one transaction storing the raw event
  with the transition.
* ``reconcile_pending``: one index query per page, then ≤ 2 per due payment (the transition or the
  rescheduling; a second write only when the receipt email fails).

A race that cancels a transaction costs a re-read and another try; it never applies twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import payments_repo as store
from chalicelib.adapters.dynamo.models import (
    GatewayEvent,
    IdempotencyRecord,
    Member,
    Obligation,
    Payment,
    PaymentItem,
    StatusChange,
)
from chalicelib.adapters.dynamo.repositories import ConcurrentUpdate
from chalicelib.adapters.gateways.base import (
    Bank,
    GatewayError,
    GatewayTimeout,
    GatewayTransaction,
    InvalidEvent,
    PaymentRequest,
)
from chalicelib.adapters.mailer import Attachment, Email
from chalicelib.context import Context, Runtime
from chalicelib.domain import payments as rules
from chalicelib.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, ServiceUnavailable
from chalicelib.domain.payments import (
    APPROVED,
    CREATED,
    EXPIRED,
    FAILED,
    OPEN_STATUSES,
    PENDING,
    Limits,
    PaymentNotFound,
    PaymentPending,
)
from chalicelib.formatting import cop
from chalicelib.observability import emit_metric, log_event
from chalicelib.services.audit import audit_item

POLL_SHARDS = 1  # partitions of the due_poll index; raise only if its write rate ever matters
POLL_PAGE_SIZE = 50
IDEMPOTENCY_TTL = timedelta(hours=24)
RECEIPT_MAX_ATTEMPTS = 8
REVIEW_FLAG = "REVIEW"
REVIEW_KEYS = ("review_flag", "review_reason")
EXPORT_READY = "READY"  # Payment.export_pending: approved, no export has claimed it yet (issue 4)
METRIC_FLAGGED = "PaymentsFlaggedForReview"  # the names devtools/infra.py alarms on (issue 4)
METRIC_SIGNATURE_FAILURES = "WebhookSignatureFailures"
LATE_APPROVAL = "approved_after_final"  # review reason: the gateway approved an ended payment
LOST_IF_APPROVED = frozenset({"REJECTED", "FAILED"})
STALE_BANKS_RETRY = timedelta(minutes=5)
_RACE_ATTEMPTS = 5
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PAYMENT_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")

OBLIGATION_UNAVAILABLE = "La obligación indicada no existe o ya no está disponible para pago."
MEMBER_UNAVAILABLE = "Su cuenta no puede realizar pagos en este momento. Comuníquese con la cooperativa."
PAYMENT_NOT_FOUND = "No encontramos ese pago."
KEY_REUSED = ("Esta solicitud de pago ya se usó con otros datos. Vuelva a la lista de obligaciones "
              "e intente de nuevo.")
BUSY = "Estamos procesando otra operación sobre estas obligaciones. Intente de nuevo en un momento."


# --- what the pages and the API receive --------------------------------------------------------

@dataclass(frozen=True)
class PaymentItemView:
    obligation_id: str
    type_label: str
    product_number: str  # masked when long
    description: str
    amount: int


@dataclass(frozen=True)
class PaymentPreview:
    lines: list[PaymentItemView]
    total: int


@dataclass(frozen=True)
class StartedPayment:
    id: str
    reference: str
    status: str
    amount: int
    redirect_url: str | None  # the bank's page; None while the outcome of the create is unknown


@dataclass(frozen=True)
class ReceiptView:
    id: str
    reference: str
    status: str
    status_label: str
    status_detail: str | None
    is_final: bool
    can_retry: bool
    amount: int
    cus: str | None
    bank_name: str | None
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    description: str
    ip: str
    payer_document: str  # masked when seen without a session
    payer_name: str | None  # None without a session
    items: list[PaymentItemView]
    timeline: list[tuple[str, datetime]]  # empty without a session
    payer_document_type: str = "CC"
    under_review: bool = False
    # The stepper (issue 6): Iniciado → Pendiente en el banco → Aprobado (or how it ended), with
    # the time of each step; shown with or without a session (it names no member data).
    lifecycle: tuple[rules.LifecycleStep, ...] = ()

    @property
    def result_at(self) -> datetime:
        """The time of the receipt's status (approval, refusal...): the receipt's "Fecha y hora"."""
        return self.approved_at or self.updated_at


@dataclass
class ReconcileReport:
    examined: int = 0
    applied: int = 0
    still_pending: int = 0
    expired: int = 0
    flagged: int = 0
    emails_sent: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


# --- bank list (PSE: cached, refreshed daily) ----------------------------------------------------

_BANK_MEMO = "_payments_bank_memo"  # per Context: a warm container skips the DynamoDB read


def list_banks(ctx: Context) -> list[Bank]:
    """The gateway's banks in its order, without ACH's placeholder; daily cache in DynamoDB."""
    now = ctx.now()
    memo: tuple[list[Bank], datetime] | None = vars(ctx).get(_BANK_MEMO)
    if memo and now < memo[1]:
        return memo[0]
    cache_key = ctx.settings.gateway
    cached = store.read_bank_list(cache_key)
    if cached and now < cached[1]:
        banks = [Bank(code, name) for code, name in cached[0]]
        vars(ctx)[_BANK_MEMO] = (banks, cached[1])
        return banks
    try:
        banks = [b for b in ctx.gateway.list_banks()
                 if b.code and b.code != rules.BANK_PLACEHOLDER_CODE]
        if not banks:
            raise GatewayError(rules.BANK_LIST_UNAVAILABLE_MESSAGE, code="empty_bank_list")
    except GatewayError as exc:
        log_event("payment_banks_unavailable", code=exc.code, stale_cache=bool(cached))
        if cached and cached[0]:
            banks = [Bank(code, name) for code, name in cached[0]]
            vars(ctx)[_BANK_MEMO] = (banks, now + STALE_BANKS_RETRY)
            return banks
        raise ServiceUnavailable(rules.BANK_LIST_UNAVAILABLE_MESSAGE, code="banks_unavailable") from exc
    expires = now + timedelta(seconds=ctx.settings.bank_list_ttl_seconds)
    store.write_bank_list(cache_key, [(b.code, b.name) for b in banks], now=now, expires_at=expires)
    vars(ctx)[_BANK_MEMO] = (banks, expires)
    return banks


# --- validating a payment against the member's obligations ---------------------------------------

@dataclass
class _Checked:
    member: Member | None
    lines: list[tuple[Obligation, int]]
    stale_locks: dict[str, str] = field(default_factory=dict)  # obligation id -> dead holder

    @property
    def total(self) -> int:
        return sum(amount for _, amount in self.lines)


def _check_against_obligations(ctx: Context, document_number: str,
                               items: Sequence[tuple[str, int]]) -> _Checked:
    """One round trip (plus one read per lock, only to word the refusal); raises DomainErrors."""
    member, found = store.member_and_obligations(document_number, [oid for oid, _ in items])
    checked = _Checked(member, [])
    for obligation_id, amount in items:
        obligation = found.get(obligation_id)
        if obligation is None or obligation.status != "OPEN":
            raise rules.ObligationNotFound(OBLIGATION_UNAVAILABLE, field="obligation_id",
                                           extra={"obligation_id": obligation_id})
        if obligation.pending_payment_id:
            holder = store.get_payment(obligation.pending_payment_id)
            if holder is not None and holder.status in OPEN_STATUSES:
                raise _pending_error(ctx, holder)
            # Locks are released in the transaction that ends a payment; this one outlived it.
            log_event("payment_stale_lock", level=30, document_number=document_number,
                      obligation_id=obligation_id, payment_id=obligation.pending_payment_id)
            checked.stale_locks[obligation_id] = obligation.pending_payment_id
        rules.check_item_amount(amount, Limits(int(obligation.minimum_amount),
                                               int(obligation.maximum_amount)),
                                description=obligation.description)
        checked.lines.append((obligation, amount))
    s = ctx.settings
    rules.check_total(checked.total, Limits(s.payment_min_amount, s.payment_max_amount))
    return checked


def _pending_error(ctx: Context, holder: Payment) -> PaymentPending:
    s = ctx.settings
    message = rules.pending_message(reference=holder.reference, cus=holder.cus,
                                    phone=s.support_phone, email=s.support_email)
    return PaymentPending(message, extra={"cus": holder.cus, "reference": holder.reference,
                                          "payment_id": holder.payment_id})


def _item_view(item: PaymentItem) -> PaymentItemView:
    return PaymentItemView(obligation_id=item.obligation_id, type_label=rules.type_label(item.type),
                           product_number=rules.mask_number(item.product_number),
                           description=item.description, amount=int(item.amount))


def _payment_items(checked: _Checked) -> list[PaymentItem]:
    return [PaymentItem(obligation_id=o.obligation_id, type=o.type, product_number=o.product_number,
                        description=o.description, amount=amount, due_before=int(o.amount_due),
                        minimum_before=int(o.minimum_amount), maximum_before=int(o.maximum_amount))
            for o, amount in checked.lines]


def preview_payment(ctx: Context, *, document_number: str,
                    items: list[tuple[str, int]]) -> PaymentPreview:
    """The summary before paying: validated lines and total (InvalidAmount, PaymentPending...)."""
    checked = _check_against_obligations(ctx, document_number, rules.check_items_shape(items))
    return PaymentPreview(lines=[_item_view(i) for i in _payment_items(checked)], total=checked.total)


# --- starting a payment ------------------------------------------------------------------------

def _check_idempotency_key(raw: object) -> str:
    if not isinstance(raw, str) or not _IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidInput("Falta el encabezado Idempotency-Key o no es válido (1 a 128 letras, "
                           "dígitos, - o _).", code="invalid_idempotency_key",
                           field="Idempotency-Key")
    return raw


def _started(payment: Payment) -> StartedPayment:
    return StartedPayment(id=payment.payment_id, reference=payment.reference, status=payment.status,
                          amount=int(payment.amount),
                          redirect_url=payment.bank_url if payment.status == PENDING else None)


def start_payment(ctx: Context, *, document_number: str, items: list[tuple[str, int]],
                  bank_code: str, person_type: str, idempotency_key: str, ip: str) -> StartedPayment:
    """Save the payment (CREATED, obligations locked) and only then ask the gateway for it.

    The same Idempotency-Key with the same request answers the same payment; with another
    request, ``idempotency_conflict``. A gateway timeout leaves the payment CREATED for the poller
    (never retried with a new reference); a gateway refusal ends it FAILED and frees the locks.
    """
    key = _check_idempotency_key(idempotency_key)
    fingerprint = rules.request_fingerprint(document_number=document_number, items=items,
                                            bank_code=bank_code, person_type=person_type)
    try:
        lines = rules.check_items_shape(items)
        kind = rules.check_person_type(person_type)
        code = rules.check_bank_code(bank_code, [b.code for b in list_banks(ctx)])
        payment, member = _create(ctx, document_number=document_number, lines=lines, bank_code=code,
                                  person_type=kind, key=key, fingerprint=fingerprint, ip=ip)
    except (DomainError, store.Cancelled) as error:
        replay = _replayed(ctx, document_number, key, fingerprint)
        if replay is not None:
            return replay
        if isinstance(error, store.Cancelled):
            raise rules.IdempotencyConflict(BUSY, code="concurrent_request") from error
        raise
    return _call_gateway(ctx, payment, member)


def _replayed(ctx: Context, document_number: str, key: str, fingerprint: str) -> StartedPayment | None:
    """The payment an earlier request with this key created, if any (only read on error paths)."""
    record = store.get_claim(store.idempotency_key(document_number, key), ctx.now())
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise rules.IdempotencyConflict(KEY_REUSED)
    payment = store.get_payment(record.payment_id)
    return _started(payment) if payment is not None else None


def _create(ctx: Context, *, document_number: str, lines: list[tuple[str, int]], bank_code: str,
            person_type: str, key: str, fingerprint: str, ip: str) -> tuple[Payment, Member]:
    banks = {b.code: b.name for b in list_banks(ctx)}
    for _ in range(3):
        checked = _check_against_obligations(ctx, document_number, lines)
        member = checked.member
        if member is None or member.status != "ACTIVO" or member.portal_blocked:
            raise Forbidden(MEMBER_UNAVAILABLE, code="member_unavailable")
        payment = _new_payment(ctx, member, checked, bank_code=bank_code, bank_name=banks.get(bank_code),
                               person_type=person_type, key=key, ip=ip)
        try:
            _save_and_lock(ctx, payment, checked, key=key, fingerprint=fingerprint)
        except store.Cancelled as cancelled:
            if "idempotency" in cancelled.failed:
                raise
            continue  # a lock or a balance changed meanwhile (or a 60-bit collision): look again
        return payment, member
    raise rules.IdempotencyConflict(BUSY, code="concurrent_request")


def _new_payment(ctx: Context, member: Member, checked: _Checked, *, bank_code: str,
                 bank_name: str | None, person_type: str, key: str, ip: str) -> Payment:
    now = ctx.now()
    payment_id = ctx.token(16)  # 128 bits: the receipt link works without a session
    return Payment(
        payment_id=payment_id,
        reference=rules.new_reference(ctx.random_code),
        document_number=member.document_number,
        document_type=member.document_type or "CC",
        payer_name=member.full_name,
        payer_email=member.email or None,
        status=CREATED,
        amount=checked.total,
        items=_payment_items(checked),
        bank_code=bank_code,
        bank_name=bank_name,
        person_type=person_type,
        description=rules.payment_description([(o.type, o.product_number) for o, _ in checked.lines]),
        ip=ip,
        gateway=ctx.gateway.name,
        created_at=now,
        updated_at=now,
        status_history=[StatusChange(status=CREATED, at=now)],
        idempotency_key=key,
        poll_shard=_shard(payment_id),
        next_poll_at=now + timedelta(seconds=ctx.settings.poll_first_seconds),
        receipt_emailed=False,
        receipt_attempts=0,
    )


def _save_and_lock(ctx: Context, payment: Payment, checked: _Checked, *, key: str,
                   fingerprint: str) -> None:
    """One transaction: the payment, both claims, the obligations' locks and the audit event."""
    now = payment.created_at
    o = Obligation
    tx = store.Tx()
    tx.put("payment", payment, Payment.payment_id.does_not_exist())
    tx.put("idempotency", IdempotencyRecord(
        record_key=store.idempotency_key(payment.document_number, key), payment_id=payment.payment_id,
        fingerprint=fingerprint, created_at=now, ttl=now + IDEMPOTENCY_TTL), store.claim_condition(now))
    tx.put("reference", IdempotencyRecord(
        record_key=store.reference_claim_key(payment.reference), payment_id=payment.payment_id,
        created_at=now), IdempotencyRecord.record_key.does_not_exist())
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event="payment_created",
                               ip=payment.ip, payment_id=payment.payment_id,
                               reference=payment.reference, amount=payment.amount))
    for obligation, _ in checked.lines:
        stale = checked.stale_locks.get(obligation.obligation_id)
        free = o.pending_payment_id == stale if stale else o.pending_payment_id.does_not_exist()
        tx.update(f"obligation:{obligation.obligation_id}", obligation, [
            o.pending_payment_id.set(payment.payment_id),
            o.pending_reference.set(payment.reference),
            o.portal_payments.set(o.portal_payments | {}),  # so an approval can add its entry
        ], free & (o.status == "OPEN") & (o.amount_due == obligation.amount_due)
            & (o.minimum_amount == obligation.minimum_amount)
            & (o.maximum_amount == obligation.maximum_amount))
    tx.commit()


def _call_gateway(ctx: Context, payment: Payment, member: Member) -> StartedPayment:
    s = ctx.settings
    request = PaymentRequest(
        reference=payment.reference, amount=int(payment.amount), bank_code=payment.bank_code,
        person_type=payment.person_type,  # type: ignore[arg-type]
        payer_document_type=payment.document_type, payer_document_number=payment.document_number,
        payer_name=payment.payer_name, payer_email=payment.payer_email or "",
        payer_phone=member.phone or "", description=payment.description,
        return_url=f"{s.public_base_url}/pagos/{payment.payment_id}/retorno", ip=payment.ip)
    try:
        transaction = _timed("create_transaction", ctx.gateway.create_transaction, request)
    except GatewayTimeout as exc:
        # The outcome is unknown (a CUS may exist): the poller looks it up by this reference.
        log_event("payment_create_timeout", level=30, document_number=payment.document_number,
                  payment_id=payment.payment_id, reference=payment.reference, code=exc.code)
        return _started(payment)
    except GatewayError as exc:
        log_event("payment_create_failed", level=30, document_number=payment.document_number,
                  payment_id=payment.payment_id, reference=payment.reference, code=exc.code)
        message = rules.creation_failure_message(exc.code, exc.message, phone=s.support_phone,
                                                 email=s.support_email)
        _settle(ctx, payment, target=FAILED, transaction=None, actor="gateway", message=message)
        raise rules.GatewayFailure(message, extra={"reference": payment.reference}) from exc
    _, payment = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                         actor="gateway")
    return _started(payment)


# --- applying what the gateway says --------------------------------------------------------------

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


POLL_KEYS = ("poll_shard", "next_poll_at")


def _details(payment: Payment, transaction: GatewayTransaction | None) -> dict[str, Any]:
    """What the gateway tells that we did not know yet (its id, the CUS, the bank's URL...)."""
    if transaction is None:
        return {}
    found: dict[str, Any] = {}
    if transaction.gateway_id and not payment.gateway_id:
        found["gateway_id"] = transaction.gateway_id
    if transaction.cus and not payment.cus:
        found["cus"] = transaction.cus
    if transaction.bank_url and transaction.status == PENDING and payment.bank_url != transaction.bank_url:
        found["bank_url"] = transaction.bank_url
    if transaction.bank_name and not payment.bank_name:
        found["bank_name"] = transaction.bank_name
    if transaction.status_message and transaction.status_message != payment.status_message:
        found["status_message"] = transaction.status_message[:500]
    return found


def _mismatch(payment: Payment, transaction: GatewayTransaction | None) -> str | None:
    if transaction is None:
        return None
    if transaction.reference != payment.reference:
        return "reference_mismatch"
    if int(transaction.amount) != int(payment.amount):
        return "amount_mismatch"
    if payment.gateway_id and transaction.gateway_id and transaction.gateway_id != payment.gateway_id:
        return "gateway_id_mismatch"
    return None


def _next_poll(ctx: Context, payment: Payment, now: datetime) -> datetime:
    """First query 7 minutes after creation, then at least 12 minutes apart (PSE's sonda)."""
    first = payment.created_at + timedelta(seconds=ctx.settings.poll_first_seconds)
    return first if first > now else now + timedelta(seconds=ctx.settings.poll_every_seconds)


def _wants_receipt(payment: Payment, target: str, transaction: GatewayTransaction | None) -> bool:
    """Receipts go to payments that reached the bank (or got approved), not to refused creations."""
    reached = bool(payment.gateway_id or (transaction and transaction.gateway_id))
    return bool(payment.payer_email) and (target == APPROVED or reached)


@dataclass(frozen=True)
class _Held:
    """An obligation as the plan believes it is (from the lock-time snapshot or a fresh read)."""

    due: int
    minimum: int
    maximum: int
    has_map: bool
    ours: bool  # locked by this payment
    applied: bool  # already carries this payment's entry


def _held(payment: Payment, item: PaymentItem, known: dict[str, Obligation] | None) -> _Held | None:
    if known is None:  # open payment: its lock still holds the lock-time balances
        return _Held(int(item.due_before), int(item.minimum_before), int(item.maximum_before),
                     has_map=True, ours=True, applied=False)
    obligation = known.get(item.obligation_id)
    if obligation is None:
        return None
    portal = obligation.portal_payments.as_dict() if obligation.portal_payments is not None else None
    return _Held(int(obligation.amount_due), int(obligation.minimum_amount),
                 int(obligation.maximum_amount), has_map=portal is not None,
                 ours=obligation.pending_payment_id == payment.payment_id,
                 applied=bool(portal) and payment.payment_id in portal)  # type: ignore[operator]


def _obligation_write(payment: Payment, item: PaymentItem, held: _Held, *, approve: bool,
                      now: datetime) -> tuple[list[Action], Any] | None:
    """Apply the amount (approval) and release this payment's lock, conditioned on ``held``."""
    o = Obligation
    pid = payment.payment_id
    actions: list[Action] = []
    condition: Any = None
    if approve and not held.applied:
        paid = int(item.amount)
        entry = {"amount": paid, "at": now.isoformat(), "reference": payment.reference}
        actions += [o.amount_due.set(rules.decrement(held.due, paid)),
                    o.minimum_amount.set(rules.decrement(held.minimum, paid)),
                    o.maximum_amount.set(rules.decrement(held.maximum, paid))]
        if held.has_map:
            actions.append(o.portal_payments[pid].set(entry))
            condition = o.portal_payments.exists() & o.portal_payments[pid].does_not_exist()
        else:
            actions.append(o.portal_payments.set({pid: entry}))
            condition = o.portal_payments.does_not_exist()
        condition &= ((o.amount_due == held.due) & (o.minimum_amount == held.minimum)
                      & (o.maximum_amount == held.maximum))
    if held.ours:
        actions += [o.pending_payment_id.remove(), o.pending_reference.remove()]
        lock = o.pending_payment_id == pid
    else:
        lock = o.pending_payment_id.does_not_exist() | (o.pending_payment_id != pid)
    if not actions:
        return None
    return actions, lock if condition is None else condition & lock


def _needs_read(payment: Payment, target: str) -> bool:
    """The lock-time snapshot is enough only while the payment still holds its obligations."""
    if target == PENDING or not rules.can_transition(payment.status, target):
        return False
    return payment.status not in OPEN_STATUSES or any(i.due_before is None for i in payment.items)


def _plan(ctx: Context, tx: store.Tx, payment: Payment, *, target: str,
          transaction: GatewayTransaction | None, actor: str, message: str | None,
          known: dict[str, Obligation] | None, review: dict[str, Any] | None = None,
          ip: str | None = None) -> tuple[str, _Change | None]:
    """Fill ``tx`` with what the news means for ``payment``; returns the outcome and the change.

    ``review``: a staff resolution (issue 4), written with the transition and clearing the flag."""
    now = ctx.now()
    guard = Payment.status == payment.status
    mismatch = _mismatch(payment, transaction)
    if mismatch:
        if payment.review_reason == mismatch:
            return "review", None
        return "review", _flag(ctx, tx, payment, mismatch, actor=actor, now=now,
                               reported_amount=transaction.amount if transaction else None,
                               reported_reference=transaction.reference if transaction else None)
    if not rules.can_transition(payment.status, target):
        if target == APPROVED and payment.status in LOST_IF_APPROVED and not payment.review_flag:
            # The bank confirmed a debit after the payment ended (e.g. rejected by staff): the
            # money arrived but cannot be applied by the machine; staff must see it (issue 4).
            return "review", _flag(ctx, tx, payment, LATE_APPROVAL, actor=actor, now=now,
                                   reported_amount=transaction.amount if transaction else None)
        details = _details(payment, transaction) if payment.status == target else {}
        if not details or payment.status not in OPEN_STATUSES:
            return ("unchanged" if payment.status == target else "stale"), None
        change = _Change(sets={**details, "updated_at": now})
        tx.update("payment", payment, change.actions(), guard)
        return "unchanged", change

    sets: dict[str, Any] = {"status": target, "updated_at": now, **_details(payment, transaction)}
    removes: tuple[str, ...] = ()
    if message:
        sets["status_message"] = message[:500]
    if target == APPROVED:
        sets["approved_at"] = now
        sets["export_pending"] = EXPORT_READY  # back office: the export_queue index (issue 4)
    if target == PENDING:
        sets.update(poll_shard=_shard(payment.payment_id), next_poll_at=_next_poll(ctx, payment, now))
    else:
        sets["receipt_emailed"] = _wants_receipt(payment, target, transaction)  # claimed: sent below
        removes = POLL_KEYS
    if review is not None:  # staff resolution (issue 4)
        sets.update(review)
        removes = (*removes, *REVIEW_KEYS)
    change = _Change(sets=sets, removes=removes, history=StatusChange(status=target, at=now))
    tx.update("payment", payment, change.actions(), guard)
    if target != PENDING:
        for item in payment.items:
            held = _held(payment, item, known)
            if held is None:
                log_event("payment_obligation_missing", level=40, payment_id=payment.payment_id,
                          obligation_id=item.obligation_id)
                continue
            write = _obligation_write(payment, item, held, approve=target == APPROVED, now=now)
            if write is not None:
                key = Obligation(document_number=payment.document_number,
                                 obligation_id=item.obligation_id)
                tx.update(f"obligation:{item.obligation_id}", key, *write)
    details = {"reference": payment.reference, "from_status": payment.status,
               "amount": payment.amount, "cus": sets.get("cus", payment.cus)}
    if review is not None:
        details["resolution"] = review["review_resolution"]
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event=f"payment_{target.lower()}",
                               actor=actor, payment_id=payment.payment_id, ip=ip,
                               reason=review["review_note"] if review is not None else None,
                               **{k: v for k, v in details.items() if v is not None}))
    return "applied", change


def _flag(ctx: Context, tx: store.Tx, payment: Payment, reason: str, *, actor: str, now: datetime,
          **details: Any) -> _Change:
    """Mark for staff review (nothing applied); an open payment leaves the poller's index."""
    removes = POLL_KEYS if payment.status in OPEN_STATUSES else ()
    change = _Change(sets={"review_flag": REVIEW_FLAG, "review_reason": reason, "updated_at": now},
                     removes=removes)
    tx.update("payment", payment, change.actions(), Payment.status == payment.status)
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event="payment_review",
                               actor=actor, payment_id=payment.payment_id, reason=reason,
                               reference=payment.reference, amount=payment.amount,
                               **{k: v for k, v in details.items() if v is not None}))
    return change


def _settle(ctx: Context, payment: Payment, *, target: str, transaction: GatewayTransaction | None,
            actor: str, message: str | None = None,
            event: GatewayEvent | None = None,
            review: dict[str, Any] | None = None, ip: str | None = None) -> tuple[str, Payment]:
    """Apply ``target`` to ``payment`` in one transaction (with the raw ``event`` when given).

    Outcomes: applied, unchanged, stale, review, duplicate (the event was stored before). A lost
    race re-reads what changed and plans again, so the result is the same whatever the order.
    """
    known: dict[str, Obligation] | None = None
    for _ in range(_RACE_ATTEMPTS):
        if known is None and _needs_read(payment, target):
            known = {o.obligation_id: o for o in store.obligations_of(payment.document_number)}
        tx = store.Tx()
        outcome, change = _plan(ctx, tx, payment, target=target, transaction=transaction,
                                actor=actor, message=message, known=known, review=review, ip=ip)
        if event is not None:
            event.outcome, event.payment_id = outcome, payment.payment_id
            tx.put("event", event, GatewayEvent.event_id.does_not_exist())
        if not tx.puts and not tx.updates:
            return outcome, payment
        try:
            tx.commit()
        except store.Cancelled as cancelled:
            if "event" in cancelled.failed:
                return "duplicate", payment
            if "payment" in cancelled.failed:
                fresh = store.get_payment(payment.payment_id)
                if fresh is None:
                    raise
                payment, known = fresh, None
                continue
            if any(label.startswith("obligation:") for label in cancelled.failed):
                known = {o.obligation_id: o for o in store.obligations_of(payment.document_number)}
                continue
            raise
        if change is not None:
            change.mirror(payment)
            _emit_outcome(outcome, payment)
        if outcome == "applied" and rules.is_final(payment.status) and payment.receipt_emailed:
            _send_receipt(ctx, payment)
        return outcome, payment
    raise ConcurrentUpdate(f"payment {payment.payment_id} kept changing")


# --- receipts: view and email -------------------------------------------------------------------

# --- back office (issue 4): "Aplicado en la cooperativa" ------------------------------------------
# The core system's import confirms an exported payment (Payment.core_applied_at, set once by
# services/imports.py). The step is shown once reached; it is not in rules.HAPPY_PATH (so an
# approved payment's stepper still ends at "Aprobado" until the core confirms it).

APPLIED_STEP = "APPLIED"
APPLIED_LABEL = "Aplicado en la cooperativa"
APPLIED_HINT = "La cooperativa registró el pago en su sistema: el saldo ya lo refleja."


def _timeline(payment: Payment) -> list[tuple[str, datetime]]:
    timeline = [(rules.status_label(h.status), h.at) for h in payment.status_history or []]
    if payment.core_applied_at is not None:
        timeline.append((APPLIED_LABEL, payment.core_applied_at))
    return timeline


def _lifecycle(payment: Payment) -> tuple[rules.LifecycleStep, ...]:
    from dataclasses import replace

    reached = [(h.status, h.at) for h in payment.status_history or []]
    applied = payment.status == APPROVED and payment.core_applied_at is not None
    if applied:
        reached.append((APPLIED_STEP, payment.core_applied_at))
    steps = rules.lifecycle(payment.status, reached)
    if applied and not any(step.key == APPLIED_STEP for step in steps):
        steps = [replace(step, current=False) for step in steps]
        steps.append(rules.LifecycleStep(
            APPLIED_STEP, rules.STEP_LABELS.get(APPLIED_STEP, APPLIED_LABEL),
            rules.STEP_HINTS.get(APPLIED_STEP, APPLIED_HINT), payment.core_applied_at, "done", True))
    return tuple(steps)


def _view(payment: Payment, *, full: bool) -> ReceiptView:
    status = payment.status
    return ReceiptView(
        id=payment.payment_id,
        reference=payment.reference,
        status=status,
        status_label=rules.status_label(status),
        status_detail=rules.status_detail(status),
        is_final=rules.is_final(status),
        can_retry=status in rules.RETRYABLE_STATUSES,
        amount=int(payment.amount),
        cus=payment.cus,
        bank_name=payment.bank_name,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
        approved_at=payment.approved_at,
        description=payment.description,
        ip=payment.ip,
        payer_document=payment.document_number if full else rules.mask_document(payment.document_number),
        payer_name=payment.payer_name if full else None,
        items=[_item_view(i) for i in payment.items],
        timeline=_timeline(payment) if full else [],  # back office (issue 4): + core applied
        payer_document_type=payment.document_type,
        under_review=bool(payment.review_flag) if full else False,
        lifecycle=_lifecycle(payment),  # back office (issue 4): + "Aplicado en la cooperativa"
    )


def _send_receipt(ctx: Context, payment: Payment) -> bool:
    """Email the receipt; on failure the claim is undone and the poller retries later."""
    try:
        ctx.mailer.send(_receipt_email(ctx, payment))
    except Exception as exc:
        log_event("payment_receipt_failed", level=30, document_number=payment.document_number,
                  payment_id=payment.payment_id, error=str(exc)[:200])
        _receipt_failed(ctx, payment)
        return False
    log_event("payment_receipt_sent", document_number=payment.document_number,
              payment_id=payment.payment_id, status=payment.status)
    return True


def _receipt_email(ctx: Context, payment: Payment) -> Email:
    from chalicelib.templating import render

    s = ctx.settings
    view = _view(payment, full=False)  # an email may be forwarded: the document stays masked
    context = {"receipt": view, "name": payment.payer_name, "settings": s}
    return Email(
        to=payment.payer_email or "",
        subject=f"Comprobante de pago {payment.reference}: {view.status_label} - "
                f"{s.cooperative_short_name}",
        html=render("emails/receipt.html", **context),
        text=render("emails/receipt.txt", **context),
        attachments=_receipt_attachment(ctx, view),
    )


def _receipt_attachment(ctx: Context, view: ReceiptView) -> tuple[Attachment, ...]:
    """The PDF receipt for the email; without it (never expected) the email still goes out."""
    from chalicelib.services import receipt_pdf

    try:
        return (Attachment(receipt_pdf.filename(view), "application/pdf",
                           receipt_pdf.render(view, ctx.settings, generated_at=ctx.now())),)
    except Exception as exc:
        log_event("payment_receipt_pdf_failed", level=40, payment_id=view.id, error=str(exc)[:200])
        return ()


def receipt_pdf(ctx: Context, payment_id: str, *, document_number: str) -> tuple[str, bytes]:
    """The member's own receipt as a PDF: ``(filename, bytes)``; PaymentNotFound otherwise."""
    from chalicelib.services import receipt_pdf as pdf

    view = receipt(ctx, payment_id, document_number=document_number)
    return pdf.filename(view), pdf.render(view, ctx.settings, generated_at=ctx.now())


def _receipt_failed(ctx: Context, payment: Payment) -> None:
    now = ctx.now()
    attempts = int(payment.receipt_attempts or 0) + 1
    actions: list[Action] = [Payment.receipt_emailed.set(False), Payment.receipt_attempts.set(attempts)]
    if attempts < RECEIPT_MAX_ATTEMPTS:
        retry_at = now + timedelta(seconds=ctx.settings.poll_every_seconds)
        actions += [Payment.poll_shard.set(_shard(payment.payment_id)), Payment.next_poll_at.set(retry_at)]
    else:
        log_event("payment_receipt_abandoned", level=40, payment_id=payment.payment_id)
    try:
        payment.update(actions=actions, condition=Payment.status == payment.status)
    except UpdateError as exc:  # a newer transition owns the receipt now
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise


def _retry_receipt(ctx: Context, payment: Payment) -> bool:
    """Claim the owed receipt (one conditional write, so concurrent pollers send it once), send it."""
    try:
        payment.update(actions=[Payment.receipt_emailed.set(True), Payment.poll_shard.remove(),
                                Payment.next_poll_at.remove()],
                       condition=(Payment.status == payment.status) & (Payment.receipt_emailed == False))  # noqa: E712
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return _send_receipt(ctx, payment)


# --- reading payments ----------------------------------------------------------------------------

def _load(payment_id: object, document_number: str | None) -> Payment:
    if not isinstance(payment_id, str) or not _PAYMENT_ID.fullmatch(payment_id):
        raise PaymentNotFound(PAYMENT_NOT_FOUND)
    payment = store.get_payment(payment_id)
    if payment is None or (document_number is not None and payment.document_number != document_number):
        raise PaymentNotFound(PAYMENT_NOT_FOUND)
    return payment


def receipt(ctx: Context, payment_id: str, *, document_number: str | None) -> ReceiptView:
    """A member's receipt; ``document_number=None`` is access by the unguessable id alone (return
    page after the session ended): then only the receipt's own fields, the document masked."""
    return _view(_load(payment_id, document_number), full=document_number is not None)


def list_payments(ctx: Context, document_number: str) -> list[ReceiptView]:
    """Every payment of the member, newest first (one query)."""
    return [_view(p, full=True) for p in store.payments_of(document_number)]


def _query_gateway(ctx: Context, payment: Payment) -> GatewayTransaction | None:
    if payment.gateway_id:
        return _timed("get_transaction", ctx.gateway.get_transaction, payment.gateway_id)
    return _timed("find_by_reference", ctx.gateway.find_by_reference, payment.reference)


def _timed(operation: str, call: Any, *args: Any) -> Any:
    """A gateway call, with its duration emitted as the GatewayLatencyMs metric (issue 4)."""
    started = Runtime.monotonic()
    try:
        return call(*args)
    finally:
        emit_metric("GatewayLatencyMs", round((Runtime.monotonic() - started) * 1000, 1),
                    "Milliseconds", Operation=operation)


def refresh_payment(ctx: Context, payment_id: str, *,
                    document_number: str | None = None) -> ReceiptView:
    """Ask the gateway server-side and apply the answer (the return page; never query params)."""
    payment = _load(payment_id, document_number)
    if payment.status in OPEN_STATUSES or payment.status == EXPIRED:
        try:
            transaction = _query_gateway(ctx, payment)
        except GatewayError as exc:
            log_event("payment_query_failed", level=30, payment_id=payment.payment_id, code=exc.code)
            transaction = None
        if transaction is not None:
            _, payment = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                                 actor="gateway")
    return _view(payment, full=document_number is not None)


# --- the webhook ---------------------------------------------------------------------------------

def apply_gateway_event(ctx: Context, headers: Mapping[str, str], body: bytes) -> str:
    """A gateway notification: ``processed``, ``duplicate`` or ``ignored``; InvalidEvent if forged,
    malformed or stale. Two round trips: the payment by reference, one transaction."""
    now = ctx.now()
    try:
        event = ctx.gateway.verify_event(headers, body, now=int(now.timestamp()))
    except InvalidEvent:
        emit_metric(METRIC_SIGNATURE_FAILURES, 1, "Count")
        raise
    except Exception as exc:
        emit_metric(METRIC_SIGNATURE_FAILURES, 1, "Count")
        raise InvalidEvent(f"unverifiable event: {type(exc).__name__}") from exc
    age = int(now.timestamp()) - int(event.sent_at)
    if age > ctx.settings.webhook_max_age_seconds or age < -300:
        raise InvalidEvent(f"stale event ({age}s)")
    transaction = event.transaction
    record = GatewayEvent(event_id=event.event_id[:256], gateway=ctx.gateway.name,
                          body=body.decode("utf-8", "replace"), received_at=now,
                          reference=transaction.reference[:64], outcome="")
    payment = store.payment_by_reference(transaction.reference) if rules.is_reference(
        transaction.reference) else None
    if payment is None:
        record.outcome = "unknown_reference"
        try:
            record.save(condition=GatewayEvent.event_id.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return "duplicate"
            raise
        log_event("payment_event_unknown_reference", level=30, reference=transaction.reference[:64])
        return "ignored"
    outcome, _ = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                         actor="gateway", event=record)
    return {"applied": "processed", "duplicate": "duplicate"}.get(outcome, "ignored")


# --- scheduled reconciliation ---------------------------------------------------------------------

def reconcile_pending(ctx: Context) -> ReconcileReport:
    """Query the gateway for every payment due in the sparse due_poll index (never a scan)."""
    report = ReconcileReport()
    now = ctx.now()
    for shard in range(POLL_SHARDS):
        for payment in store.due_payments(str(shard), now, page_size=POLL_PAGE_SIZE):
            report.examined += 1
            try:
                _reconcile_one(ctx, payment, now, report)
            except Exception:
                report.errors += 1
                logging.getLogger("sucursal").exception("reconcile_failed payment_id=%s",
                                                        payment.payment_id)
    log_event("payment_reconcile_run", **report.as_dict())
    return report


def _reschedule(payment: Payment, at: datetime, extra: Mapping[str, Any] | None = None) -> None:
    change = _Change(sets={**(extra or {}), "next_poll_at": at})
    try:
        payment.update(actions=change.actions(), condition=Payment.status == payment.status)
    except UpdateError as exc:  # it moved meanwhile: the next run sees the new state
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise


def _reconcile_one(ctx: Context, payment: Payment, now: datetime, report: ReconcileReport) -> None:
    s = ctx.settings
    every = timedelta(seconds=s.poll_every_seconds)
    if rules.is_final(payment.status):  # only here while its receipt email is owed
        if not payment.receipt_emailed and _retry_receipt(ctx, payment):
            report.emails_sent += 1
        elif payment.receipt_emailed:
            _reschedule_out(payment)
        return
    past_horizon = now >= max(payment.created_at + timedelta(seconds=s.poll_horizon_seconds),
                              payment.poll_horizon_at or payment.created_at)  # staff: keep_pending
    try:
        transaction = _query_gateway(ctx, payment)
    except GatewayError as exc:
        log_event("payment_query_failed", level=30, payment_id=payment.payment_id, code=exc.code)
        report.errors += 1
        if past_horizon:
            report.flagged += _flag_horizon(ctx, payment, now)
        else:
            _reschedule(payment, now + every)
        return
    if transaction is None:  # never reached the gateway (a create that timed out, or never sent)
        expires = payment.created_at + timedelta(seconds=s.created_expiry_seconds)
        if payment.status == CREATED and now >= expires:
            outcome, _ = _settle(ctx, payment, target=EXPIRED, transaction=None, actor="system")
            report.expired += outcome == "applied"
        else:
            _reschedule(payment, min(now + every, max(expires, now + timedelta(seconds=60))))
            report.still_pending += 1
        return
    if transaction.status != payment.status or _mismatch(payment, transaction):
        outcome, payment = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                                   actor="gateway")
        report.applied += outcome == "applied"
        report.flagged += outcome == "review"
        if outcome in ("applied", "review"):
            return
    if payment.status != PENDING:
        return
    if past_horizon:
        report.flagged += _flag_horizon(ctx, payment, now)
        return
    _reschedule(payment, now + every, _details(payment, transaction))
    report.still_pending += 1


def _flag_horizon(ctx: Context, payment: Payment, now: datetime) -> bool:
    """Past the horizon (24 h): staff reconcile it with ACH's tools; the poller lets it go."""
    tx = store.Tx()
    _flag(ctx, tx, payment, "horizon_exceeded", actor="system", now=now)
    try:
        tx.commit()
    except store.Cancelled:
        return False  # it moved meanwhile; nothing to flag
    emit_metric(METRIC_FLAGGED, 1, "Count")
    return True


def _reschedule_out(payment: Payment) -> None:
    """A stale index entry (its receipt already sent): take it out of the poller's index."""
    payment.update(actions=[Payment.poll_shard.remove(), Payment.next_poll_at.remove()])


# --- back office (issue 4): outcome metrics, staff re-query, review resolution, receipt resend ----

REVIEW_ACTIONS = ("apply", "reject", "keep_pending")
NOT_UNDER_REVIEW = "Este pago no está marcado para revisión."
CHANGED_MEANWHILE = "El pago cambió mientras se resolvía; consúltelo de nuevo y decida otra vez."
GATEWAY_UNREACHABLE = "No pudimos consultar la pasarela de pagos; intente de nuevo en unos minutos."
REJECTED_BY_STAFF = "Rechazado por la cooperativa después de revisarlo."


def _emit_outcome(outcome: str, payment: Payment) -> None:
    """PaymentsFinal by final state and PaymentsFlaggedForReview (EMF, dimension Stage)."""
    if outcome == "applied" and rules.is_final(payment.status):
        emit_metric("PaymentsFinal", 1, "Count", Status=payment.status)
    elif outcome == "review":
        emit_metric(METRIC_FLAGGED, 1, "Count")


def staff_payment(payment_id: str) -> Payment:
    """Any payment by id, for staff (PaymentNotFound otherwise). One GetItem."""
    return _load(payment_id, None)


@dataclass(frozen=True)
class Requery:
    payment: Payment
    before: str
    outcome: str  # applied | unchanged | stale | review | duplicate | not_at_gateway | gateway_error
    gateway: GatewayTransaction | None
    error: str | None = None


def staff_requery(ctx: Context, payment_id: str, *, actor: str, ip: str | None) -> Requery:
    """Ask the gateway now, whatever the status, and apply its answer through the engine (the
    transition's actor stays "gateway": the truth comes from it); audited with the staff actor."""
    payment = _load(payment_id, None)
    before = payment.status
    transaction: GatewayTransaction | None = None
    error: str | None = None
    try:
        transaction = _query_gateway(ctx, payment)
    except GatewayError as exc:
        error = exc.code or "gateway_error"
        log_event("payment_query_failed", level=30, payment_id=payment.payment_id, code=exc.code)
    if transaction is not None:
        outcome, payment = _settle(ctx, payment, target=transaction.status, transaction=transaction,
                                   actor="gateway")
    else:
        outcome = "gateway_error" if error else "not_at_gateway"
    details = {"reference": payment.reference, "from_status": before, "to_status": payment.status,
               "outcome": outcome, "gateway_status": transaction.status if transaction else None,
               "gateway_amount": transaction.amount if transaction else None, "error": error}
    audit_item(ctx, subject=payment.document_number, event="staff_payment_requery", actor=actor,
               ip=ip, payment_id=payment.payment_id,
               **{k: v for k, v in details.items() if v is not None}).save()
    return Requery(payment=payment, before=before, outcome=outcome, gateway=transaction, error=error)


@dataclass(frozen=True)
class Resolution:
    action: str
    outcome: str  # approved | rejected | kept_pending | flag_cleared
    payment: Payment
    gateway: GatewayTransaction | None = None


def allocate(confirmed: int, items: Sequence[tuple[int, int]]) -> list[int] | None:
    """Spread the amount the gateway confirmed over the items ``(amount, maximum)``, in order.

    Less than asked: the later items give up first (earlier obligations get what the member
    chose). More: the excess goes to the items in order, each up to its maximum payable. None
    when the amount cannot be placed (not positive, or above the sum of the maxima)."""
    if confirmed <= 0 or not items:
        return None
    amounts = [a for a, _ in items]
    total = sum(amounts)
    if confirmed <= total:
        short = total - confirmed
        for index in range(len(amounts) - 1, -1, -1):
            cut = min(short, amounts[index])
            amounts[index] -= cut
            short -= cut
        return amounts
    excess = confirmed - total
    for index, (_, maximum) in enumerate(items):
        room = max(0, maximum - amounts[index])
        add = min(room, excess)
        amounts[index] += add
        excess -= add
    return amounts if excess == 0 else None


def resolve_review(ctx: Context, payment_id: str, *, action: str, reason: str, actor: str,
                   ip: str | None) -> Resolution:
    """A staff decision on a payment flagged for review, through the engine's conditional writes.

    * ``apply``: only if the gateway confirms APPROVED now (same reference and transaction); the
      gateway's amount is applied (spread over the obligations by :func:`allocate` when it
      differs, in an audited correction first). Already APPROVED: the flag is cleared.
    * ``reject``: REJECTED and locks released, refused while the gateway reports APPROVED.
      Already ended (rejected, failed, expired): the flag is cleared.
    * ``keep_pending``: an open payment goes back to the poller, queried at once, with a new
      horizon from now.
    Every outcome is audited with the staff actor, IP and reason; the flag is cleared."""
    if action not in REVIEW_ACTIONS:
        raise InvalidInput("«action» debe ser apply, reject o keep_pending.", code="invalid_action",
                           field="action")
    payment = _load(payment_id, None)
    if not payment.review_flag:
        raise Conflict(NOT_UNDER_REVIEW, code="not_under_review")
    review = {"review_resolution": action, "review_resolved_by": actor,
              "review_resolved_at": ctx.now(), "review_note": reason[:500]}
    if action == "keep_pending":
        return _keep_pending(ctx, payment, review, actor=actor, ip=ip)
    try:
        transaction = _query_gateway(ctx, payment)
    except GatewayError as exc:
        raise ServiceUnavailable(GATEWAY_UNREACHABLE, code="gateway_unavailable") from exc
    if action == "apply":
        return _resolve_apply(ctx, payment, transaction, review, actor=actor, ip=ip)
    return _resolve_reject(ctx, payment, transaction, review, actor=actor, ip=ip)


def _refuse(ctx: Context, payment: Payment, review: dict[str, Any], *, actor: str, ip: str | None,
            code: str, message: str, **details: Any) -> Conflict:
    """Audit a refused resolution (who tried what, and why it was refused) and build the error."""
    audit_item(ctx, subject=payment.document_number, event="staff_review_refused", actor=actor,
               ip=ip, reason=review["review_note"], payment_id=payment.payment_id,
               action=review["review_resolution"], refusal=code, status=payment.status,
               **{k: v for k, v in details.items() if v is not None}).save()
    return Conflict(message, code=code, extra={k: v for k, v in details.items() if v is not None})


def _resolve_apply(ctx: Context, payment: Payment, transaction: GatewayTransaction | None,
                   review: dict[str, Any], *, actor: str, ip: str | None) -> Resolution:
    status = transaction.status if transaction else None
    if transaction is None or transaction.status != APPROVED:
        shown = rules.status_label(status) if status else "sin transacción en la pasarela"
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="gateway_not_approved",
                      message=f"La pasarela no confirma este pago como aprobado ({shown}); no se aplicó.",
                      gateway_status=status)
    if transaction.reference != payment.reference or (
            payment.gateway_id and transaction.gateway_id and transaction.gateway_id != payment.gateway_id):
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="gateway_mismatch",
                      message="La transacción de la pasarela no corresponde a este pago (referencia "
                              "o identificador distintos); no se aplicó.",
                      gateway_reference=transaction.reference[:64])
    if payment.status == APPROVED:
        payment = _clear_review(ctx, payment, review, actor=actor, ip=ip)
        return Resolution("apply", "flag_cleared", payment, transaction)
    if not rules.can_transition(payment.status, APPROVED):
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="invalid_transition",
                      message=f"Un pago {rules.status_label(payment.status)} no puede pasar a "
                              "Aprobada; regístrelo en el sistema central.")
    if int(transaction.amount) != int(payment.amount):
        payment = _correct_amount(ctx, payment, int(transaction.amount), review, actor=actor, ip=ip)
    outcome, payment = _settle(ctx, payment, target=APPROVED, transaction=transaction, actor=actor,
                               review=review, ip=ip)
    if outcome != "applied":
        raise Conflict(CHANGED_MEANWHILE, code="concurrent_change", extra={"status": payment.status})
    return Resolution("apply", "approved", payment, transaction)


def _correct_amount(ctx: Context, payment: Payment, confirmed: int, review: dict[str, Any], *,
                    actor: str, ip: str | None) -> Payment:
    """Make the payment carry the gateway's amount (one audited conditional transaction), so the
    approval that follows is the engine's ordinary one and matches the gateway."""
    caps = [(int(i.amount), int(i.maximum_before) if i.maximum_before is not None else int(i.amount))
            for i in payment.items]
    amounts = allocate(confirmed, caps)
    if amounts is None:
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="amount_not_applicable",
                      message=f"La pasarela confirma {cop(confirmed)}, que no se puede repartir "
                              f"entre las obligaciones del pago (máximo {cop(sum(m for _, m in caps))}); "
                              "no se aplicó.", gateway_amount=confirmed)
    old = int(payment.amount)
    items = [PaymentItem(obligation_id=i.obligation_id, type=i.type, product_number=i.product_number,
                         description=i.description, amount=amount, due_before=i.due_before,
                         minimum_before=i.minimum_before, maximum_before=i.maximum_before)
             for i, amount in zip(payment.items, amounts)]
    tx = store.Tx()
    tx.update("payment", payment, [Payment.amount.set(confirmed), Payment.items.set(items),
                                   Payment.original_amount.set(old), Payment.updated_at.set(ctx.now())],
              (Payment.status == payment.status) & (Payment.amount == old) & Payment.review_flag.exists())
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event="payment_amount_corrected",
                               actor=actor, ip=ip, reason=review["review_note"],
                               payment_id=payment.payment_id, reference=payment.reference,
                               from_amount=old, to_amount=confirmed))
    try:
        tx.commit()
    except store.Cancelled as exc:
        raise Conflict(CHANGED_MEANWHILE, code="concurrent_change") from exc
    payment.amount, payment.items, payment.original_amount = confirmed, items, old
    return payment


def _resolve_reject(ctx: Context, payment: Payment, transaction: GatewayTransaction | None,
                    review: dict[str, Any], *, actor: str, ip: str | None) -> Resolution:
    if payment.status == APPROVED:
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="already_approved",
                      message="El pago ya se aplicó como aprobado; no se puede rechazar.")
    if payment.status in LOST_IF_APPROVED:
        # Rejected or failed for good: even if the bank approved it later, the engine cannot
        # apply it; staff settle that money in the core system and the reason says how.
        payment = _clear_review(ctx, payment, review, actor=actor, ip=ip)
        return Resolution("reject", "flag_cleared", payment, transaction)
    if transaction is not None and transaction.status == APPROVED and transaction.reference == payment.reference:
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="gateway_approved",
                      message="La pasarela reporta este pago como aprobado: no se puede rechazar. "
                              "Use «apply».", gateway_status=APPROVED)
    if rules.is_final(payment.status):  # expired: nothing holds its obligations any more
        payment = _clear_review(ctx, payment, review, actor=actor, ip=ip)
        return Resolution("reject", "flag_cleared", payment, transaction)
    outcome, payment = _settle(ctx, payment, target=rules.REJECTED, transaction=None, actor=actor,
                               message=REJECTED_BY_STAFF, review=review, ip=ip)
    if outcome != "applied":
        raise Conflict(CHANGED_MEANWHILE, code="concurrent_change", extra={"status": payment.status})
    return Resolution("reject", "rejected", payment, transaction)


def _keep_pending(ctx: Context, payment: Payment, review: dict[str, Any], *, actor: str,
                  ip: str | None) -> Resolution:
    if payment.status not in OPEN_STATUSES:
        raise _refuse(ctx, payment, review, actor=actor, ip=ip, code="not_pending",
                      message=f"Solo un pago Iniciado o Pendiente puede seguir pendiente; este está "
                              f"{rules.status_label(payment.status)}.")
    now = ctx.now()
    extra = {"poll_shard": _shard(payment.payment_id), "next_poll_at": now,
             "poll_horizon_at": now + timedelta(seconds=ctx.settings.poll_horizon_seconds)}
    payment = _clear_review(ctx, payment, review, actor=actor, ip=ip, extra=extra)
    return Resolution("keep_pending", "kept_pending", payment)


def _clear_review(ctx: Context, payment: Payment, review: dict[str, Any], *, actor: str,
                  ip: str | None, extra: dict[str, Any] | None = None) -> Payment:
    """Record the resolution and clear the flag without a status change (one transaction)."""
    change = _Change(sets={**review, **(extra or {}), "updated_at": ctx.now()}, removes=REVIEW_KEYS)
    tx = store.Tx()
    tx.update("payment", payment, change.actions(),
              (Payment.status == payment.status) & Payment.review_flag.exists())
    tx.put("audit", audit_item(ctx, subject=payment.document_number, event="payment_review_resolved",
                               actor=actor, ip=ip, reason=review["review_note"],
                               payment_id=payment.payment_id, reference=payment.reference,
                               resolution=review["review_resolution"], status=payment.status,
                               review_reason=payment.review_reason))
    try:
        tx.commit()
    except store.Cancelled as exc:
        raise Conflict(CHANGED_MEANWHILE, code="concurrent_change") from exc
    change.mirror(payment)
    return payment


def resend_receipt(ctx: Context, payment_id: str, *, actor: str, ip: str | None,
                   reason: str | None = None) -> Payment:
    """Send the receipt email of a final payment again (to the address on the payment); audited."""
    payment = _load(payment_id, None)
    if not rules.is_final(payment.status):
        raise Conflict("Solo se reenvía el comprobante de un pago en estado final; este está "
                       f"{rules.status_label(payment.status)}.", code="not_final")
    if not payment.payer_email:
        raise Conflict("El pago no tiene un correo del asociado al cual enviar el comprobante.",
                       code="no_email")
    try:
        ctx.mailer.send(_receipt_email(ctx, payment))
    except Exception as exc:
        log_event("payment_receipt_failed", level=30, document_number=payment.document_number,
                  payment_id=payment.payment_id, error=str(exc)[:200], actor=actor)
        raise ServiceUnavailable("No pudimos enviar el correo; intente de nuevo en unos minutos.",
                                 code="mail_failed") from exc
    audit_item(ctx, subject=payment.document_number, event="staff_receipt_resent", actor=actor,
               ip=ip, reason=reason, payment_id=payment.payment_id, reference=payment.reference,
               status=payment.status).save()
    return payment
