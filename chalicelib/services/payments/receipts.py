"""Receipts: what pages see of a payment (view, lifecycle), the receipt email and PDF, reading payments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import payments_repo as store
from chalicelib.adapters.dynamo.models import Payment, PaymentItem
from chalicelib.adapters.dynamo.repositories import aws_error_code
from chalicelib.adapters.mailer import Attachment, Email
from chalicelib.context import Context
from chalicelib.domain import allocation
from chalicelib.domain import payments as rules
from chalicelib.domain.events import PaymentEvent
from chalicelib.domain.members import mask_document, mask_email
from chalicelib.domain.payments import APPROVED, OPEN_STATUSES
from chalicelib.observability import log_event
from chalicelib.services.payments.core import _load, _shard

RECEIPT_MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class PaymentItemView:
    obligation_id: str
    type_label: str
    product_number: str  # masked when long
    description: str
    amount: int
    # How the amount is applied to a credit's instalment (issue 6); empty without parts.
    allocation: tuple[allocation.AllocationLine, ...] = ()


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
    emailed_to: str | None = None  # the masked address the receipt went to (with a session)
    bank_url: str | None = None  # where the payer goes on at the bank, while the payment is pending

    @property
    def retry_query(self) -> str:
        """The same items and amounts, as the summary's address takes them ("Intentar de nuevo")."""
        return urlencode([(f"otro_{item.obligation_id}", str(item.amount)) for item in self.items])

    @property
    def result_at(self) -> datetime:
        """The time of the receipt's status (approval, refusal...): the receipt's "Fecha y hora"."""
        return self.approved_at or self.updated_at

    @property
    def allocation_note(self) -> str | None:
        """Why the receipt splits its credit payments (issue 6); None when nothing is split, or
        when nothing was (or will be) applied."""
        if not any(item.allocation for item in self.items):
            return None
        if self.status == APPROVED:
            return allocation.APPLIED_NOTE
        return allocation.PLANNED_NOTE if self.status in OPEN_STATUSES else None


def _item_view(item: PaymentItem, product_number: str | None = None) -> PaymentItemView:
    """The item as pages show it; its allocation comes from the parts stored when the payment
    started, so a later import or a new ALLOCATION_ORDER never changes it."""
    amount = int(item.amount)
    split = () if item.parts is None else allocation.allocate(
        tuple((str(name), int(pesos)) for name, pesos in item.parts), amount)
    return PaymentItemView(obligation_id=item.obligation_id, type_label=rules.type_label(item.type),
                           product_number=product_number or rules.mask_number(item.product_number),
                           description=item.description, amount=amount, allocation=split)


def item_views(items: list[PaymentItem], masks: dict[str, str] | None = None) -> list[PaymentItemView]:
    """The items as pages show them; ``masks`` tells products apart across several payments."""
    masks = masks if masks is not None else rules.distinct_masks(i.product_number for i in items)
    return [_item_view(i, masks.get(i.product_number.strip())) for i in items]


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


def _view(payment: Payment, *, full: bool, masks: dict[str, str] | None = None) -> ReceiptView:
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
        payer_document=(payment.document_number if full
                        else mask_document(payment.document_number, for_people=True)),
        payer_name=payment.payer_name if full else None,
        items=item_views(payment.items, masks),
        timeline=_timeline(payment) if full else [],  # back office (issue 4): + core applied
        payer_document_type=payment.document_type,
        under_review=bool(payment.review_flag) if full else False,
        lifecycle=_lifecycle(payment),  # back office (issue 4): + "Aplicado en la cooperativa"
        emailed_to=mask_email(payment.payer_email)
        if full and payment.receipt_emailed and payment.payer_email else None,
        bank_url=payment.bank_url if status == rules.PENDING else None,
    )


def _send_receipt(ctx: Context, payment: Payment) -> bool:
    """Email the receipt; on failure the claim is undone and the poller retries later."""
    try:
        ctx.mailer.send(_receipt_email(ctx, payment))
    except Exception as exc:
        log_event("payment_receipt_failed", level=30, document_number=payment.document_number,
                  error=str(exc)[:200])
        _receipt_failed(ctx, payment)
        return False
    log_event("payment_receipt_sent", document_number=payment.document_number, status=payment.status)
    return True


def _receipt_email(ctx: Context, payment: Payment) -> Email:
    from chalicelib.templating import render

    s = ctx.settings
    view = _view(payment, full=False)  # an email may be forwarded: the document stays masked
    attachments = _receipt_attachment(ctx, view)
    context = {"receipt": view, "name": payment.payer_name, "settings": s,
               "pdf_attached": bool(attachments)}
    return Email(
        to=payment.payer_email or "",
        subject=f"Comprobante de pago {payment.reference}: {view.status_label} - "
                f"{s.cooperative_short_name}",
        html=render("emails/receipt.html", **context),
        text=render("emails/receipt.txt", **context),
        attachments=attachments,
    )


def _receipt_attachment(ctx: Context, view: ReceiptView) -> tuple[Attachment, ...]:
    """The PDF receipt for the email. Without it (never expected: the PDF takes any text) the
    email still goes out, says so and points to the download; the log says why."""
    from chalicelib.services import receipt_pdf

    try:
        return (Attachment(receipt_pdf.filename(view), "application/pdf",
                           receipt_pdf.render(view, ctx.settings, generated_at=ctx.now())),)
    except Exception as exc:
        log_event("payment_receipt_pdf_failed", level=40, payment_id=view.id,
                  reference=view.reference, error=f"{type(exc).__name__}: {exc}"[:200])
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
        log_event("payment_receipt_abandoned", level=40)
    try:
        payment.update(actions=actions, condition=Payment.status == payment.status)
    except UpdateError as exc:  # a newer transition owns the receipt now
        if aws_error_code(exc) != "ConditionalCheckFailedException":
            raise


def _retry_receipt(ctx: Context, payment: Payment) -> bool:
    """Claim the owed receipt (one conditional write, so concurrent pollers send it once), send it."""
    try:
        payment.update(actions=[Payment.receipt_emailed.set(True), Payment.poll_shard.remove(),
                                Payment.next_poll_at.remove()],
                       condition=(Payment.status == payment.status) & (Payment.receipt_emailed == False))  # noqa: E712
    except UpdateError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return _send_receipt(ctx, payment)


def receipt(ctx: Context, payment_id: str, *, document_number: str | None) -> ReceiptView:
    """A member's receipt; ``document_number=None`` is access by the unguessable id alone (return
    page after the session ended): then only the receipt's own fields, the document masked."""
    return _view(_load(payment_id, document_number), full=document_number is not None)


def list_payments(ctx: Context, document_number: str) -> list[ReceiptView]:
    """Every payment of the member, newest first (one query)."""
    found = store.payments_of(document_number)
    masks = rules.distinct_masks(i.product_number for p in found for i in p.items)
    return [_view(p, full=True, masks=masks) for p in found]


# --- TEMPORARY (effects helper): the receipt from the stream's domain events. The pay helper's
# send_receipt and handle_payment_events replace this block at merge (same names, same meaning).

def send_receipt(ctx: Context, payment_id: str) -> bool:
    """Claim the payment's owed receipt and send it: True once sent; False when nothing is owed
    (sent already, no address, not final, never reached a bank) or the send failed (then the
    poller retries it)."""
    payment = store.get_payment(payment_id)
    if payment is None or not rules.is_final(payment.status) or not payment.payer_email:
        return False
    if payment.status != APPROVED and not payment.gateway_id:  # refused before reaching a bank
        return False
    return _retry_receipt(ctx, payment)


def handle_payment_events(ctx: Context, events: Sequence[PaymentEvent]) -> None:
    """What follows a payment's approval or rejection: its receipt, once however often told."""
    for event in events:
        send_receipt(ctx, event.payment_id)
