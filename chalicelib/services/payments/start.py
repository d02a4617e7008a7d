"""Starting a payment: the bank list, the preview against the obligations, creation, the gateway call."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.adapters.gateways.base import Bank, GatewayError, GatewayTimeout
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, ServiceUnavailable
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import (
    CREATED,
    FAILED,
    OPEN_STATUSES,
    PENDING,
    Claim,
    Limits,
    Payment,
    PaymentItem,
    PaymentPending,
    StatusChange,
)
from chalicelib.observability import log_event
from chalicelib.services import texts
from chalicelib.services.audit import audit_entry
from chalicelib.services.obligations import outstanding_parts
from chalicelib.services.payments.core import payment_logs, poll_shard, timed
from chalicelib.services.payments.receipts import PaymentItemView, item_views
from chalicelib.services.payments.settle import settle
from chalicelib.services.payments.terms import Acceptance, accept, check_request, payment_request
from chalicelib.services.unit_of_work import UnitOfWork

IDEMPOTENCY_TTL = timedelta(hours=24)
STALE_BANKS_RETRY = timedelta(minutes=5)
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")

OBLIGATION_UNAVAILABLE = "La obligación indicada no existe o ya no está disponible para pago."
MEMBER_UNAVAILABLE = "Su cuenta no puede realizar pagos en este momento. Comuníquese con la cooperativa."
KEY_REUSED = ("Esta solicitud de pago ya se usó con otros datos. Vuelva a la lista de obligaciones "
              "e intente de nuevo.")
BUSY = "Estamos procesando otra operación sobre estas obligaciones. Intente de nuevo en un momento."


@dataclass(frozen=True)
class PaymentPreview:
    lines: list[PaymentItemView]
    total: int
    bank_code: str | None = None  # the member's last bank and person type, chosen beforehand
    person_type: str | None = None


@dataclass(frozen=True)
class StartedPayment:
    id: str
    reference: str
    status: str
    amount: int
    redirect_url: str | None  # the bank's page; None while the outcome of the create is unknown


BANK_MEMO = "payments_bank_memo"  # per Context: a warm container skips the DynamoDB read


def list_banks(ctx: Context) -> list[Bank]:
    """The gateway's banks in its order, without ACH's placeholder; daily cache in DynamoDB.
    ``[]`` when the gateway's own page asks for the bank."""
    if ctx.gateway.chooses_bank:
        return []
    now = ctx.now()
    memo: tuple[list[Bank], datetime] | None = ctx.memos.get(BANK_MEMO)
    if memo and now < memo[1]:
        return memo[0]
    with ctx.unit_of_work() as uow:
        return fetch_banks(ctx, uow, now)


def fetch_banks(ctx: Context, uow: UnitOfWork, now: datetime) -> list[Bank]:
    """From the cache while it is fresh, else from the gateway (the stale cache if it fails)."""
    cache_key = ctx.settings.gateway
    cached = uow.bank_lists.get(cache_key)
    if cached and now < cached[1]:
        banks = [Bank(code, name) for code, name in cached[0]]
        ctx.memos[BANK_MEMO] = (banks, cached[1])
        return banks
    try:
        banks = [b for b in ctx.gateway.list_banks()
                 if b.code and b.code != rules.BANK_PLACEHOLDER_CODE]
        if not banks:
            raise GatewayError(texts.BANK_LIST_UNAVAILABLE_MESSAGE, code="empty_bank_list")
    except GatewayError as exc:
        log_event("payment_banks_unavailable", code=exc.code, stale_cache=bool(cached))
        if cached and cached[0]:
            banks = [Bank(code, name) for code, name in cached[0]]
            ctx.memos[BANK_MEMO] = (banks, now + STALE_BANKS_RETRY)
            return banks
        raise ServiceUnavailable(texts.BANK_LIST_UNAVAILABLE_MESSAGE, code="banks_unavailable") from exc
    expires = now + timedelta(seconds=ctx.settings.bank_list_ttl_seconds)
    uow.bank_lists.put(cache_key, [(b.code, b.name) for b in banks], now=now, expires_at=expires)
    ctx.memos[BANK_MEMO] = (banks, expires)
    return banks


@dataclass
class Checked:
    """A payment's lines checked against the member's obligations as read now."""

    member: Member | None
    lines: list[tuple[Obligation, int]]
    stale_locks: dict[str, str] = field(default_factory=dict)  # obligation id -> dead holder

    @property
    def total(self) -> int:
        return sum(amount for _, amount in self.lines)


def check_against_obligations(ctx: Context, uow: UnitOfWork, document_number: str,
                              items: Sequence[tuple[str, int]]) -> Checked:
    """One round trip (plus one read per lock, only to word the refusal); raises DomainErrors."""
    member, found = uow.obligations.member_and_obligations(document_number, [oid for oid, _ in items])
    checked = Checked(member, [])
    for obligation_id, amount in items:
        obligation = found.get(obligation_id)
        if obligation is None or obligation.status != "OPEN":
            raise rules.ObligationNotFound(OBLIGATION_UNAVAILABLE, field="obligation_id",
                                           extra={"obligation_id": obligation_id})
        if obligation.pending_payment_id:
            holder = uow.payments.get(obligation.pending_payment_id)
            if holder is not None and holder.status in OPEN_STATUSES:
                raise pending_error(ctx, holder)
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


def pending_error(ctx: Context, holder: Payment) -> PaymentPending:
    s = ctx.settings
    message = texts.pending_message(reference=holder.reference, cus=holder.cus,
                                    phone=s.support_phone, email=s.support_email)
    return PaymentPending(message, extra={"cus": holder.cus, "reference": holder.reference,
                                          "payment_id": holder.payment_id})


def payment_items(checked: Checked, order: Sequence[str]) -> list[PaymentItem]:
    """The items as the payment stores them: the obligations as the lock leaves them (balances,
    the version the lock writes) and the instalment's parts still owed."""
    return [PaymentItem(obligation_id=o.obligation_id, type=o.type, product_number=o.product_number,
                        description=o.description, amount=amount, due_before=int(o.amount_due),
                        minimum_before=int(o.minimum_amount), maximum_before=int(o.maximum_amount),
                        parts=parts_list(outstanding_parts(o, order)),
                        obligation_version=o.version + 1, opened_on=o.opened_on)
            for o, amount in checked.lines]


def parts_list(parts: Sequence[tuple[str, int]] | None) -> list[list[object]] | None:
    return None if parts is None else [[name, pesos] for name, pesos in parts]


def preview_payment(ctx: Context, *, document_number: str,
                    items: list[tuple[str, int]]) -> PaymentPreview:
    """The summary before paying: validated lines and total (InvalidAmount, PaymentPending...)."""
    with ctx.unit_of_work() as uow:
        checked = check_against_obligations(ctx, uow, document_number, rules.check_items_shape(items))
    member = checked.member
    return PaymentPreview(lines=item_views(payment_items(checked, ctx.settings.allocation_order)),
                          total=checked.total,
                          bank_code=member.preferred_bank_code if member else None,
                          person_type=member.preferred_person_type if member else None)


def check_idempotency_key(raw: object) -> str:
    if not isinstance(raw, str) or not IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidInput("Falta el encabezado Idempotency-Key o no es válido (1 a 128 letras, "
                           "dígitos, - o _).", code="invalid_idempotency_key",
                           field="Idempotency-Key")
    return raw


def started(payment: Payment) -> StartedPayment:
    return StartedPayment(id=payment.payment_id, reference=payment.reference, status=payment.status,
                          amount=int(payment.amount),
                          redirect_url=payment.bank_url if payment.status == PENDING else None)


def start_payment(ctx: Context, *, document_number: str, items: list[tuple[str, int]],
                  bank_code: str, person_type: str, idempotency_key: str, ip: str,
                  accepted_documents: object = None, user_agent: str = "") -> StartedPayment:
    """Save the payment (CREATED, obligations locked) and only then ask the gateway for it.

    The same Idempotency-Key with the same request answers the same payment; with another
    request, ``idempotency_conflict``. Every document the gateway asks the payer to accept must be
    in ``accepted_documents`` (ids), and the gateway's checks of the payer must pass, before
    anything is saved; the acceptance is stored with the payment. A gateway timeout leaves the
    payment CREATED for the poller (never retried with a new reference); a gateway refusal ends it
    FAILED and frees the locks.
    """
    key = check_idempotency_key(idempotency_key)
    fingerprint = rules.request_fingerprint(document_number=document_number, items=items,
                                            bank_code=bank_code, person_type=person_type)
    try:
        lines = rules.check_items_shape(items)
        kind = rules.check_person_type(person_type)
        code = "" if ctx.gateway.chooses_bank else rules.check_bank_code(
            bank_code, [b.code for b in list_banks(ctx)])
        acceptance = accept(ctx, accepted_documents, ip=ip, user_agent=user_agent)
        uow, payment, member = create(ctx, document_number=document_number, lines=lines,
                                      bank_code=code, person_type=kind, key=key,
                                      fingerprint=fingerprint, ip=ip, acceptance=acceptance)
    except DomainError as error:
        replay = replayed(ctx, document_number, key, fingerprint)
        if replay is not None:
            return replay
        if isinstance(error, Conflict) and error.changed:  # another request holds the key now
            raise rules.IdempotencyConflict(BUSY, code="concurrent_request") from error
        raise
    with payment_logs(payment):
        return call_gateway(ctx, uow, payment, member)


def replayed(ctx: Context, document_number: str, key: str, fingerprint: str) -> StartedPayment | None:
    """The payment an earlier request with this key created, if any (only read on error paths)."""
    with ctx.unit_of_work() as uow:
        claim = uow.claims.get(rules.idempotency_claim_key(document_number, key), ctx.now())
        if claim is None:
            return None
        if claim.fingerprint != fingerprint:
            raise rules.IdempotencyConflict(KEY_REUSED)
        payment = uow.payments.get(claim.payment_id)
    return started(payment) if payment is not None else None


def create(ctx: Context, *, document_number: str, lines: list[tuple[str, int]], bank_code: str,
           person_type: str, key: str, fingerprint: str, ip: str,
           acceptance: Acceptance) -> tuple[UnitOfWork, Payment, Member]:
    """The payment stored CREATED with its obligations locked; the unit of work it was written in.
    The gateway's checks of the payer run before anything is saved."""
    banks = {b.code: b.name for b in list_banks(ctx)}
    for _ in range(3):
        with ctx.unit_of_work() as uow:
            checked = check_against_obligations(ctx, uow, document_number, lines)
            member = checked.member
            if member is None or member.status != "ACTIVO" or member.portal_blocked:
                raise Forbidden(MEMBER_UNAVAILABLE, code="member_unavailable")
            payment = new_payment(ctx, member, checked, bank_code=bank_code,
                                  bank_name=banks.get(bank_code), person_type=person_type, key=key,
                                  ip=ip, acceptance=acceptance)
            check_request(ctx, payment, member)
            try:
                save_and_lock(ctx, uow, payment, checked, key=key, fingerprint=fingerprint)
            except Conflict as conflict:
                if "idempotency" in conflict.changed:
                    raise
                continue  # a lock or a balance changed meanwhile (or a 60-bit collision): look again
        return uow, payment, member
    raise rules.IdempotencyConflict(BUSY, code="concurrent_request")


def new_payment(ctx: Context, member: Member, checked: Checked, *, bank_code: str,
                bank_name: str | None, person_type: str, key: str, ip: str,
                acceptance: Acceptance) -> Payment:
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
        items=payment_items(checked, ctx.settings.allocation_order),
        bank_code=bank_code,
        bank_name=bank_name,
        person_type=person_type,
        description=rules.payment_description([(texts.type_label(o.type), o.product_number)
                                               for o, _ in checked.lines]),
        ip=ip,
        gateway=ctx.gateway.name,
        created_at=now,
        updated_at=now,
        status_history=[StatusChange(status=CREATED, at=now)],
        idempotency_key=key,
        poll_shard=poll_shard(payment_id),
        next_poll_at=now + timedelta(seconds=ctx.settings.poll_first_seconds),
        receipt_emailed=False,
        receipt_attempts=0,
        consent=acceptance.record(),
    )


def save_and_lock(ctx: Context, uow: UnitOfWork, payment: Payment, checked: Checked, *, key: str,
                  fingerprint: str) -> None:
    """One atomic write: the payment, both claims, the obligations' locks and the audit entry."""
    now = payment.created_at
    uow.payments.add(payment)
    uow.claims.add(Claim(key=rules.idempotency_claim_key(payment.document_number, key),
                         payment_id=payment.payment_id, created_at=now, fingerprint=fingerprint,
                         expires_at=now + IDEMPOTENCY_TTL), now)
    uow.claims.add(Claim(key=rules.reference_claim_key(payment.reference),
                         payment_id=payment.payment_id, created_at=now), now)
    uow.audit.add(audit_entry(ctx, subject=payment.document_number, event="payment_created",
                              ip=payment.ip, payment_id=payment.payment_id,
                              reference=payment.reference, amount=payment.amount))
    member = checked.member
    if member is not None and (member.preferred_bank_code, member.preferred_person_type) != (
            payment.bank_code, payment.person_type):  # remembered for the next payment
        remembered = copy.deepcopy(member)
        remembered.preferred_bank_code = payment.bank_code
        remembered.preferred_person_type = payment.person_type
        uow.members.update(remembered)
    for obligation, _ in checked.lines:
        uow.obligations.change(obligation.lock_for(payment.payment_id, payment.reference))
    uow.commit()


def call_gateway(ctx: Context, uow: UnitOfWork, payment: Payment, member: Member) -> StartedPayment:
    s = ctx.settings
    request = payment_request(ctx, payment, member)
    try:
        transaction = timed("create_transaction", ctx.gateway.create_transaction, request)
    except GatewayTimeout as exc:
        # The outcome is unknown (a CUS may exist): the poller looks it up by this reference.
        log_event("payment_create_timeout", level=30, document_number=payment.document_number,
                  code=exc.code)
        return started(payment)
    except GatewayError as exc:
        log_event("payment_create_failed", level=30, document_number=payment.document_number,
                  code=exc.code)
        message = texts.creation_failure_message(exc.code, exc.message, phone=s.support_phone,
                                                 email=s.support_email)
        settle(ctx, payment, target=FAILED, transaction=None, actor="gateway", message=message,
               uow=uow)
        raise rules.GatewayFailure(message, extra={"reference": payment.reference}) from exc
    _, payment = settle(ctx, payment, target=transaction.status, transaction=transaction,
                        actor="gateway", uow=uow)
    return started(payment)
