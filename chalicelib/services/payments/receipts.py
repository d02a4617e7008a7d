"""Receipts: what pages see of a payment (view, lifecycle), the receipt email and PDF, reading
payments, and the handler of the engine's events (the receipt goes after the commit, once)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

from chalicelib.adapters.mailer import Attachment, Email
from chalicelib.context import Context
from chalicelib.domain import allocation
from chalicelib.domain import payments as rules
from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import PaymentApproved, PaymentEvent, PaymentRejected
from chalicelib.domain.members import mask_document, mask_email
from chalicelib.domain.payments import APPROVED, OPEN_STATUSES, Payment, PaymentItem
from chalicelib.observability import log_event
from chalicelib.services import texts
from chalicelib.services.payments.core import load_payment, payment_logs, poll_shard
from chalicelib.services.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class PaymentItemView:
    obligation_id: str
    type_label: str
    product_number: str  # masked when long
    description: str
    amount: int
    # How the amount is applied to a credit's instalment; empty without parts.
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
    # The stepper: Iniciado → Pendiente en el banco → Aprobado (or how it ended), with
    # the time of each step; shown with or without a session (it names no member data).
    lifecycle: tuple[texts.LifecycleStep, ...] = ()
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
        """Why the receipt splits its credit payments; None when nothing is split, or
        when nothing was (or will be) applied."""
        if not any(item.allocation for item in self.items):
            return None
        if self.status == APPROVED:
            return allocation.APPLIED_NOTE
        return allocation.PLANNED_NOTE if self.status in OPEN_STATUSES else None


def item_view(item: PaymentItem, product_number: str | None = None) -> PaymentItemView:
    """The item as pages show it; its allocation comes from the parts stored when the payment
    started, so a later import or a new ALLOCATION_ORDER never changes it."""
    amount = int(item.amount)
    split = () if item.parts is None else allocation.allocate(
        tuple((str(name), int(pesos)) for name, pesos in item.parts), amount)
    return PaymentItemView(obligation_id=item.obligation_id, type_label=texts.type_label(item.type),
                           product_number=product_number or rules.mask_number(item.product_number),
                           description=item.description, amount=amount, allocation=split)


def item_views(items: list[PaymentItem], masks: dict[str, str] | None = None) -> list[PaymentItemView]:
    """The items as pages show them; ``masks`` tells products apart across several payments."""
    masks = masks if masks is not None else rules.distinct_masks(i.product_number for i in items)
    return [item_view(i, masks.get(i.product_number.strip())) for i in items]


# --- back office: "Aplicado en la cooperativa" -------------------------------------------------
# The core system's import confirms an exported payment (Payment.core_applied_at, set once by
# services/imports.py). The step is shown once reached; it is not in rules.HAPPY_PATH (so an
# approved payment's stepper still ends at "Aprobado" until the core confirms it).

APPLIED_STEP = "APPLIED"
APPLIED_LABEL = "Aplicado en la cooperativa"
APPLIED_HINT = "La cooperativa registró el pago en su sistema: el saldo ya lo refleja."


def timeline(payment: Payment) -> list[tuple[str, datetime]]:
    steps = [(texts.status_label(h.status), h.at) for h in payment.status_history or []]
    if payment.core_applied_at is not None:
        steps.append((APPLIED_LABEL, payment.core_applied_at))
    return steps


def lifecycle(payment: Payment) -> tuple[texts.LifecycleStep, ...]:
    reached = [(h.status, h.at) for h in payment.status_history or []]
    applied_at = payment.core_applied_at if payment.status == APPROVED else None
    if applied_at is not None:
        reached.append((APPLIED_STEP, applied_at))
    steps = texts.lifecycle(payment.status, reached)
    if applied_at is not None and not any(step.key == APPLIED_STEP for step in steps):
        steps = [replace(step, current=False) for step in steps]
        steps.append(texts.LifecycleStep(
            APPLIED_STEP, texts.STEP_LABELS.get(APPLIED_STEP, APPLIED_LABEL),
            texts.STEP_HINTS.get(APPLIED_STEP, APPLIED_HINT), applied_at, "done", True))
    return tuple(steps)


def view(payment: Payment, *, full: bool, masks: dict[str, str] | None = None) -> ReceiptView:
    status = payment.status
    return ReceiptView(
        id=payment.payment_id,
        reference=payment.reference,
        status=status,
        status_label=texts.status_label(status),
        status_detail=texts.status_detail(status),
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
        timeline=timeline(payment) if full else [],  # + "Aplicado en la cooperativa"
        payer_document_type=payment.document_type,
        under_review=bool(payment.review_flag) if full else False,
        lifecycle=lifecycle(payment),
        emailed_to=mask_email(payment.payer_email)
        if full and payment.receipt_emailed and payment.payer_email else None,
        bank_url=payment.bank_url if status == rules.PENDING else None,
    )


def receipt_email(ctx: Context, payment: Payment) -> Email:
    from chalicelib.templating import render

    s = ctx.settings
    receipt_view = view(payment, full=False)  # an email may be forwarded: the document stays masked
    attachments = receipt_attachment(ctx, receipt_view)
    context = {"receipt": receipt_view, "name": payment.payer_name, "settings": s,
               "pdf_attached": bool(attachments)}
    return Email(
        to=payment.payer_email or "",
        subject=f"Comprobante de pago {payment.reference}: {receipt_view.status_label} - "
                f"{s.cooperative_short_name}",
        html=render("emails/receipt.html", **context),
        text=render("emails/receipt.txt", **context),
        attachments=attachments,
    )


def receipt_attachment(ctx: Context, shown: ReceiptView) -> tuple[Attachment, ...]:
    """The PDF receipt for the email. Without it (never expected: the PDF takes any text) the
    email still goes out, says so and points to the download; the log says why."""
    from chalicelib.services import receipt_pdf

    try:
        return (Attachment(receipt_pdf.filename(shown), "application/pdf",
                           receipt_pdf.render(shown, ctx.settings, generated_at=ctx.now())),)
    except Exception as exc:
        log_event("payment_receipt_pdf_failed", level=40, payment_id=shown.id,
                  reference=shown.reference, error=f"{type(exc).__name__}: {exc}"[:200])
        return ()


def receipt_pdf(ctx: Context, payment_id: str, *, document_number: str) -> tuple[str, bytes]:
    """The member's own receipt as a PDF: ``(filename, bytes)``; PaymentNotFound otherwise."""
    from chalicelib.services import receipt_pdf as pdf

    shown = receipt(ctx, payment_id, document_number=document_number)
    return pdf.filename(shown), pdf.render(shown, ctx.settings, generated_at=ctx.now())


def deliver_receipt(ctx: Context, payment: Payment, *, uow: UnitOfWork | None = None) -> bool:
    """Claim the receipt ``payment`` owes (one version-checked write, so concurrent senders send
    it once) and send it; a failed send un-claims it and counts an attempt (the poller retries
    later). ``uow``: the one ``payment`` was read in."""
    if not payment.receipt_owed:
        return False
    claimed = copy.deepcopy(payment)
    claimed.claim_receipt()
    work = uow if uow is not None else ctx.unit_of_work()
    with work:
        work.payments.update(claimed)
        try:
            work.commit()
        except Conflict:
            return False  # another sender claimed it, or a newer transition owns it now
    with payment_logs(claimed):
        try:
            ctx.mailer.send(receipt_email(ctx, claimed))
        except Exception as exc:
            log_event("payment_receipt_failed", level=30, document_number=claimed.document_number,
                      error=str(exc)[:200])
            retry_at = ctx.now() + timedelta(seconds=ctx.settings.poll_every_seconds)
            if not claimed.receipt_failed(poll_shard(claimed.payment_id), retry_at):
                log_event("payment_receipt_abandoned", level=40)
            with work, suppress(Conflict):  # a newer transition owns the receipt now
                work.payments.update(claimed)
                work.commit()
            return False
        log_event("payment_receipt_sent", document_number=claimed.document_number,
                  status=claimed.status)
    return True


def send_receipt(ctx: Context, payment_id: str) -> bool:
    """Email the receipt a final payment owes, once however often this is called; True if it
    went now."""
    with ctx.unit_of_work() as uow:
        payment = uow.payments.get(payment_id)
        return payment is not None and deliver_receipt(ctx, payment, uow=uow)


def handle_payment_events(ctx: Context, events: Sequence[PaymentEvent]) -> None:
    """After the commit, off the request path (the events table's stream, the local runner):
    an ended payment's receipt goes to its payer. At least once: a repeated event sends nothing."""
    for event in events:
        if isinstance(event, (PaymentApproved, PaymentRejected)):
            send_receipt(ctx, event.payment_id)


def receipt(ctx: Context, payment_id: str, *, document_number: str | None) -> ReceiptView:
    """A member's receipt; ``document_number=None`` is access by the unguessable id alone (return
    page after the session ended): then only the receipt's own fields, the document masked."""
    with ctx.unit_of_work() as uow:
        return view(load_payment(uow, payment_id, document_number), full=document_number is not None)


def list_payments(ctx: Context, document_number: str) -> list[ReceiptView]:
    """Every payment of the member, newest first (one query)."""
    with ctx.unit_of_work() as uow:
        found = uow.payments.of_member(document_number)
    masks = rules.distinct_masks(i.product_number for p in found for i in p.items)
    return [view(p, full=True, masks=masks) for p in found]
