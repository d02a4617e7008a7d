"""Reminder emails: before an obligation's due date, and when a payment stays pending.

* ``send_due_reminders`` (daily, 8:00 in Colombia): every OPEN obligation due from today to
  ``REMINDER_DAYS_BEFORE_DUE`` days ahead, with something to pay and no payment in progress, one
  email per member listing them. Each day is one query on the ``by_due_date`` index (never a
  scan); the members come in one ``BatchGetItem`` per 100. Looking at every day up to N (not only
  the N-th) catches up on a missed run and on obligations imported late.
* ``send_pending_reminders`` (every 30 minutes, not at night): payments still PENDING at the bank
  ``PENDING_REMINDER_SECONDS`` (2 h) after they got there, found in the poller's sparse
  ``due_poll`` index, which holds exactly the open payments.

At most once: before sending, a conditional put claims ``due#{document}#{obligation}#{due_date}``
or ``pending#{payment}`` in the reminders table; a failed send deletes the claim, so the next run
tries again. Members who followed the unsubscribe link (``reminders_opt_out``), members without an
email, inactive or blocked get nothing. Emails carry no sign-in link (the site tells members never
to sign in from a link in an email); only the unsubscribe link, also as ``List-Unsubscribe``
(RFC 8058 one-click).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.mailer import Email
from chalicelib.config import COLOMBIA
from chalicelib.context import Context
from chalicelib.domain import payments as rules
from chalicelib.domain.backoffice import ReminderClaim
from chalicelib.domain.errors import Conflict
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import Payment
from chalicelib.observability import log_event
from chalicelib.security.signing import BadSignature
from chalicelib.services import texts
from chalicelib.services.audit import audit_entry
from chalicelib.services.unit_of_work import UnitOfWork

CLAIM_TTL = timedelta(days=400)
UNSUBSCRIBE_TTL = timedelta(days=400)
#: Tries of an opt-out whose member changed meanwhile (a sign-in, an import) before giving up.
OPT_OUT_ATTEMPTS = 3
INVALID_LINK = ("El enlace para cancelar los recordatorios no es válido o venció. Use el enlace del "
                "correo más reciente o comuníquese con la cooperativa.")


@dataclass
class ReminderReport:
    examined: int = 0
    sent: int = 0
    already_sent: int = 0
    skipped: int = 0
    failed: int = 0
    quiet_hours: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- unsubscribe links -------------------------------------------------------------------------

def unsubscribe_token(ctx: Context, document_number: str) -> str:
    expires = int((ctx.now() + UNSUBSCRIBE_TTL).timestamp())
    return ctx.signer("unsubscribe").sign({"d": document_number}, expires_at=expires)


def unsubscribe_url(ctx: Context, document_number: str) -> str:
    return f"{ctx.settings.public_base_url}/avisos/cancelar?token={unsubscribe_token(ctx, document_number)}"


def document_for_token(ctx: Context, token: object) -> str:
    """The document number an unsubscribe link names; ``BadSignature`` for a forged or expired link."""
    payload = ctx.signer("unsubscribe").unsign(token, now=int(ctx.now().timestamp()))
    document = payload.get("d")
    if not isinstance(document, str):
        raise BadSignature("malformed payload")
    return document


def linked_member(uow: UnitOfWork, document_number: str) -> Member:
    member = uow.members.get(document_number)
    if member is None:
        raise BadSignature("unknown member")
    return member


def member_for_token(ctx: Context, token: object) -> Member:
    """The member an unsubscribe link names; ``BadSignature`` for a forged or expired link."""
    document = document_for_token(ctx, token)
    with ctx.unit_of_work() as uow:
        return linked_member(uow, document)


def set_opt_out(ctx: Context, token: object, *, opt_out: bool, ip: str) -> Member:
    """Record the member's choice with its audit entry (no session needed: the signed link is the
    proof); a member changed meanwhile (a sign-in, an import) is read again."""
    document = document_for_token(ctx, token)
    attempt = 1
    while True:
        with ctx.unit_of_work() as uow:
            member = linked_member(uow, document)
            member.reminders_opt_out, member.reminders_opt_out_at = opt_out, ctx.now()
            uow.members.update(member)
            uow.audit.add(audit_entry(ctx, subject=document, ip=ip,
                                      event="reminders_opt_out" if opt_out else "reminders_opt_in"))
            try:
                uow.commit()
                return member
            except Conflict:
                if attempt == OPT_OUT_ATTEMPTS:
                    raise
                attempt += 1


# --- claims ------------------------------------------------------------------------------------

def _claim(ctx: Context, uow: UnitOfWork, key: str, *, kind: str, document_number: str) -> bool:
    now = ctx.now()
    return uow.reminders.claim(ReminderClaim(key=key, kind=kind, document_number=document_number,
                                             sent_at=now, expires_at=now + CLAIM_TTL))


def _release(uow: UnitOfWork, keys: Iterable[str]) -> None:
    for key in keys:
        try:
            uow.reminders.release(key)
        except Exception:
            logging.getLogger("sucursal").exception("reminder_release_failed key=%s", key)


def _reachable(member: Member | None) -> bool:
    return bool(member and member.email and member.status == "ACTIVO" and not member.portal_blocked
                and not member.reminders_opt_out)


def _send(ctx: Context, *, to: str, subject: str, template: str, document_number: str,
          **values: object) -> None:
    from chalicelib.templating import render

    link = unsubscribe_url(ctx, document_number)
    context = {"settings": ctx.settings, "unsubscribe_url": link, **values}
    ctx.mailer.send(Email(
        to=to, subject=subject,
        html=render(f"emails/{template}.html", **context),
        text=render(f"emails/{template}.txt", **context),
        headers=(("List-Unsubscribe", f"<{link}>"),
                 ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
    ))


# --- before the due date -----------------------------------------------------------------------

@dataclass(frozen=True)
class DueLine:
    type_label: str
    description: str
    product_number: str  # masked
    due_date: str  # ISO
    days_left: int
    amount_due: int


def _due_obligations(ctx: Context, uow: UnitOfWork,
                     report: ReminderReport) -> dict[str, list[Obligation]]:
    today = rules.colombia_today(ctx.now())
    days = ctx.settings.reminder_days_before_due
    by_member: dict[str, list[Obligation]] = defaultdict(list)
    if days < 0:  # a negative setting switches the due-date reminders off
        return by_member
    for offset in range(days + 1):
        due = (today + timedelta(days=offset)).isoformat()
        for obligation in uow.reminders.due_on(due):
            report.examined += 1
            if int(obligation.amount_due) <= 0 or obligation.pending_payment_id:
                report.skipped += 1  # nothing left to pay, or a payment is on its way
                continue
            by_member[obligation.document_number].append(obligation)
    return by_member


def send_due_reminders(ctx: Context) -> ReminderReport:
    report = ReminderReport()
    with ctx.unit_of_work() as uow:
        _remind_due(ctx, uow, report)
    log_event("reminders_due_run", **report.as_dict())
    return report


def _remind_due(ctx: Context, uow: UnitOfWork, report: ReminderReport) -> None:
    by_member = _due_obligations(ctx, uow, report)
    members = uow.reminders.members_of(list(by_member))
    today = rules.colombia_today(ctx.now())
    for document_number, obligations in sorted(by_member.items()):
        member = members.get(document_number)
        if member is None or not _reachable(member):
            report.skipped += len(obligations)
            continue
        claimed: list[tuple[str, Obligation]] = []
        for obligation in sorted(obligations, key=lambda o: (o.due_date, o.obligation_id)):
            key = f"due#{document_number}#{obligation.obligation_id}#{obligation.due_date}"
            if _claim(ctx, uow, key, kind="due", document_number=document_number):
                claimed.append((key, obligation))
            else:
                report.already_sent += 1
        if not claimed:
            continue
        lines = [DueLine(texts.type_label(o.type), o.description, rules.mask_number(o.product_number),
                         o.due_date, (datetime.fromisoformat(o.due_date).date() - today).days,
                         int(o.amount_due)) for _, o in claimed]
        subject = (f"Recordatorio: {lines[0].description} vence {_when(lines[0].days_left)}"
                   if len(lines) == 1 else f"Recordatorio: {len(lines)} obligaciones por vencer")
        try:
            _send(ctx, to=member.email or "", subject=f"{subject} - {ctx.settings.cooperative_short_name}",
                  template="reminder_due", document_number=document_number,
                  name=member.full_name, lines=lines, total=sum(line.amount_due for line in lines),
                  first_time=not member.password_hash)
        except Exception as exc:
            report.failed += 1
            log_event("reminder_failed", level=30, document_number=document_number, kind="due",
                      error=str(exc)[:200])
            _release(uow, (key for key, _ in claimed))
            continue
        report.sent += 1
        log_event("reminder_sent", document_number=document_number, kind="due",
                  obligations=len(claimed))


def _when(days_left: int) -> str:
    if days_left <= 0:
        return "hoy"
    if days_left == 1:
        return "mañana"
    return f"en {days_left} días"


# --- a payment still pending at the bank --------------------------------------------------------

def _quiet(ctx: Context, now: datetime) -> bool:
    s = ctx.settings
    hour = now.astimezone(COLOMBIA).hour
    start, end = s.reminder_quiet_start_hour, s.reminder_quiet_end_hour
    return (start <= hour or hour < end) if start > end else (start <= hour < end)


def _pending_since(payment: Payment) -> datetime:
    for change in payment.status_history or []:
        if change.status == rules.PENDING:
            return change.at
    return payment.created_at


def send_pending_reminders(ctx: Context) -> ReminderReport:
    from chalicelib.services.payments.core import POLL_SHARDS

    report = ReminderReport()
    now = ctx.now()
    if _quiet(ctx, now):
        report.quiet_hours = True
        return report
    cutoff = now - timedelta(seconds=ctx.settings.pending_reminder_seconds)
    with ctx.unit_of_work() as uow:
        for shard in range(POLL_SHARDS):
            for payment in uow.reminders.pending_in(str(shard), created_before=cutoff):
                report.examined += 1
                if _pending_since(payment) > cutoff or not payment.payer_email:
                    report.skipped += 1
                    continue
                try:
                    _remind_pending(ctx, uow, payment, report)
                except Exception as exc:
                    report.failed += 1
                    log_event("reminder_failed", level=30, document_number=payment.document_number,
                              kind="pending", payment_id=payment.payment_id, error=str(exc)[:200])
    log_event("reminders_pending_run", **report.as_dict())
    return report


def _remind_pending(ctx: Context, uow: UnitOfWork, payment: Payment,
                    report: ReminderReport) -> None:
    if not _reachable(uow.members.get(payment.document_number)):
        report.skipped += 1
        return
    key = f"pending#{payment.payment_id}"
    if not _claim(ctx, uow, key, kind="pending", document_number=payment.document_number):
        report.already_sent += 1
        return
    try:
        _send(ctx, to=payment.payer_email or "", document_number=payment.document_number,
              subject=f"Su pago {payment.reference} sigue pendiente en su banco - "
                      f"{ctx.settings.cooperative_short_name}",
              template="reminder_pending", name=payment.payer_name, payment=payment,
              pending_since=_pending_since(payment), detail=texts.status_detail(rules.PENDING),
              items=[(texts.type_label(i.type), i.description, int(i.amount)) for i in payment.items])
    except Exception:
        _release(uow, [key])
        raise
    report.sent += 1
    log_event("reminder_sent", document_number=payment.document_number, kind="pending",
              payment_id=payment.payment_id)
