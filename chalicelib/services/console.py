"""What the staff console shows that the staff API does not already give: the collections summary,
a payment's gateway events and audit trail, a member's overview, the list of exports.

Every read is a Query on a table or an index (never a Scan), or an S3 prefix listing. The staff
JSON API and the console share the rest (search, review, exports, blocking) through
:mod:`chalicelib.services.staff`, :mod:`chalicelib.services.payments` and
:mod:`chalicelib.services.exports`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from chalicelib.adapters import export_files
from chalicelib.config import COLOMBIA
from chalicelib.context import Context
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.backoffice import Export, PaymentFigures
from chalicelib.domain.errors import NotFound
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import APPROVED, PENDING, STATUSES, GatewayEventRecord, Payment
from chalicelib.domain.sessions import Session
from chalicelib.observability import log_event
from chalicelib.services import exports as exports_service
from chalicelib.services.audit import audit_entry
from chalicelib.services.staff import MEMBER_NOT_FOUND
from chalicelib.services.staff_auth import STAFF_SUBJECT
from chalicelib.services.unit_of_work import UnitOfWork

CHART_DAYS = 30


@dataclass
class Tally:
    count: int = 0
    amount: int = 0

    def add(self, amount: int) -> None:
        self.count += 1
        self.amount += amount


@dataclass
class Period:
    """Collections of a period: by status (payments) and by obligation type (items paid)."""

    by_status: dict[str, Tally] = field(default_factory=lambda: {s: Tally() for s in STATUSES})
    by_type: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))

    def add(self, payment: PaymentFigures) -> None:
        self.by_status[payment.status].add(payment.amount)
        if payment.status == APPROVED:
            for obligation_type, amount in payment.paid:
                self.by_type[obligation_type].add(amount)


@dataclass
class Summary:
    today: date
    day: Period
    month: Period
    per_day: list[tuple[date, Tally]]  # approved, the last CHART_DAYS days, oldest first
    pending: int
    flagged: int


def colombian_day(value: datetime) -> date:
    return value.astimezone(COLOMBIA).date()


def collections_summary(ctx: Context) -> Summary:
    """Today's and this month's payments, and approvals per day for 30 days (Colombian days).

    One Query per status on ``by_status`` over the days shown (only the fields needed), plus two
    COUNT queries (pending at the bank, flagged for review)."""
    now = ctx.now()
    today = colombian_day(now)
    first = min(today.replace(day=1), today - timedelta(days=CHART_DAYS - 1))
    low = datetime.combine(first, time.min, tzinfo=COLOMBIA)
    day, month = Period(), Period()
    per_day = {today - timedelta(days=n): Tally() for n in range(CHART_DAYS)}
    with ctx.unit_of_work() as uow:
        for status in STATUSES:
            for payment in uow.backoffice.payment_figures(status, since=low):
                created = colombian_day(payment.created_at)
                if created == today:
                    day.add(payment)
                if (created.year, created.month) == (today.year, today.month):
                    month.add(payment)
                if status == APPROVED and created in per_day:
                    per_day[created].add(payment.amount)
        pending = uow.backoffice.count_in_status(PENDING)
        flagged = uow.backoffice.count_flagged()
    return Summary(today=today, day=day, month=month, per_day=sorted(per_day.items()),
                   pending=pending, flagged=flagged)


# --- a payment ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaymentRecord:
    payment: Payment
    events: list[GatewayEventRecord]
    audit: list[AuditEntry]


def payment_record(ctx: Context, payment_id: str, *, actor: str) -> PaymentRecord:
    """A payment with every gateway notification stored for it and its audit trail."""
    from chalicelib.services import payments as payments_service

    payment = payments_service.staff_payment(ctx, payment_id)
    with ctx.unit_of_work() as uow:
        events = uow.backoffice.gateway_notices(payment.reference)
        audit = uow.backoffice.payment_audit(payment.document_number, payment.payment_id)
    log_event("sensitive_read", what="payment_detail", actor=actor, payment_id=payment.payment_id,
              document_number=payment.document_number)
    return PaymentRecord(payment, events, audit)


# --- a member ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberOverview:
    member: Member
    obligations: list[Obligation]
    payments: list[Payment]
    sessions: list[Session]  # open ones, newest first


def existing_member(uow: UnitOfWork, document_number: str) -> Member:
    member = uow.members.get(document_number)
    if member is None:
        raise NotFound(MEMBER_NOT_FOUND, code="member_not_found")
    return member


def member_overview(ctx: Context, document_number: str, *, actor: str) -> MemberOverview:
    now = ctx.now()
    with ctx.unit_of_work() as uow:
        member = existing_member(uow, document_number)
        obligations = uow.obligations.of_member(document_number)
        payments = uow.payments.of_member(document_number, limit=20)
        sessions = uow.backoffice.sessions_of(document_number)
    sessions = sorted((s for s in sessions if s.expires_at > now), key=lambda s: s.created_at,
                      reverse=True)
    log_event("sensitive_read", what="member_overview", actor=actor, document_number=document_number)
    return MemberOverview(member, obligations, payments, sessions)


def end_member_sessions(ctx: Context, document_number: str, *, actor: str, ip: str,
                        reason: str) -> int:
    """Sign the member out everywhere (audited in the member's trail)."""
    with ctx.unit_of_work() as uow:
        existing_member(uow, document_number)
        ended = uow.sessions.delete_of_member(document_number)
        uow.audit.add(audit_entry(ctx, subject=document_number, event="staff_sessions_ended",
                                  actor=actor, ip=ip, reason=reason, sessions=ended))
        uow.commit()
    log_event("session_expired", reason="revoked", actor=actor, document_number=document_number,
              sessions=ended)
    return ended


def send_member_recovery(ctx: Context, document_number: str, *, actor: str, ip: str,
                         reason: str) -> str:
    """The recovery email the member could ask for (same limits), sent at staff's request."""
    from chalicelib.services import recovery

    with ctx.unit_of_work() as uow:
        existing_member(uow, document_number)
    message = recovery.request_recovery(ctx, document_number, ip=ip)
    with ctx.unit_of_work() as uow:
        uow.audit.add(audit_entry(ctx, subject=document_number, event="staff_recovery_sent",
                                  actor=actor, ip=ip, reason=reason))
        uow.commit()
    return message


# --- exports -------------------------------------------------------------------------------------

def recent_exports(ctx: Context, *, months: int = 2) -> list[Export]:
    """The exports of this month and the previous one, newest first: their S3 keys (one prefix
    listing per month, ``exports/YYYY/MM/``) name them, then one BatchGetItem for the records."""
    bucket = exports_service.bucket_name(ctx.settings)
    today = colombian_day(ctx.now())
    ids: list[str] = []
    year, month = today.year, today.month
    for _ in range(months):
        for key in export_files.keys(ctx.settings.region, bucket, f"exports/{year:04d}/{month:02d}/"):
            name = key.rsplit("/", 1)[-1]
            if name.startswith("pagos-aprobados-") and name.endswith(".csv"):
                ids.append(name[len("pagos-aprobados-"):-len(".csv")])
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    with ctx.unit_of_work() as uow:
        found = uow.exports.get_many(ids)
    return sorted(found, key=lambda e: e.created_at, reverse=True)


# --- the staff partition of the audit trail ---------------------------------------------------------

def staff_audit(ctx: Context, *, limit: int = 50) -> list[AuditEntry]:
    """Staff sign-ins and actions not about one member, newest first (one Query)."""
    with ctx.unit_of_work() as uow:
        return uow.audit.of(STAFF_SUBJECT, limit=limit)


def staff_sessions_ended(ctx: Context, username: str) -> int:
    with ctx.unit_of_work() as uow:
        return uow.staff_sessions.delete_of_user(username)
