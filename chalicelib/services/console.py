"""What the staff console shows that the staff API does not already give: the collections summary,
a payment's gateway events and audit trail, a member's overview, the list of exports.

Every read is a Query on a table or an index (never a Scan), or an S3 prefix listing. The staff
JSON API and the console share the rest (search, review, exports, blocking) through
:mod:`chalicelib.services.staff`, :mod:`chalicelib.services.payments` and
:mod:`chalicelib.services.exports`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from chalicelib.adapters.dynamo import backoffice_repo, payments_repo, staff_repo
from chalicelib.adapters.dynamo.models import (
    AuditEvent,
    Export,
    GatewayEvent,
    Member,
    Obligation,
    Payment,
    Session,
)
from chalicelib.config import COLOMBIA
from chalicelib.context import Context
from chalicelib.domain import payments as domain_payments
from chalicelib.domain.errors import NotFound
from chalicelib.domain.payments import STATUSES
from chalicelib.observability import log_event
from chalicelib.services import exports as exports_service
from chalicelib.services import import_jobs
from chalicelib.services.staff import MEMBER_NOT_FOUND
from chalicelib.services.staff_auth import STAFF_SUBJECT

CHART_DAYS = 30
_SUMMARY_FIELDS = ["payment_id", "status", "amount", "created_at", "items"]


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

    def add(self, payment: Payment) -> None:
        self.by_status[payment.status].add(int(payment.amount))
        if payment.status == "APPROVED":
            for item in payment.items or []:
                self.by_type[item.type].add(int(item.amount))


@dataclass
class Summary:
    today: date
    day: Period
    month: Period
    per_day: list[tuple[date, Tally]]  # approved, the last CHART_DAYS days, oldest first
    pending: int
    flagged: int


def _colombian_day(value: datetime) -> date:
    return value.astimezone(COLOMBIA).date()


def collections_summary(ctx: Context) -> Summary:
    """Today's and this month's payments, and approvals per day for 30 days (Colombian days).

    One Query per status on ``by_status`` over the days shown (only the fields needed), plus two
    COUNT queries (pending at the bank, flagged for review)."""
    from chalicelib.domain.payments import REVIEW_FLAG

    now = ctx.now()
    today = _colombian_day(now)
    first = min(today.replace(day=1), today - timedelta(days=CHART_DAYS - 1))
    low = datetime.combine(first, time.min, tzinfo=COLOMBIA)
    day, month = Period(), Period()
    per_day = {today - timedelta(days=n): Tally() for n in range(CHART_DAYS)}
    for status in STATUSES:
        for payment in Payment.by_status.query(status, Payment.created_at >= low,
                                               attributes_to_get=_SUMMARY_FIELDS):
            created = _colombian_day(payment.created_at)
            if created == today:
                day.add(payment)
            if (created.year, created.month) == (today.year, today.month):
                month.add(payment)
            if status == "APPROVED" and created in per_day:
                per_day[created].add(int(payment.amount))
    pending = Payment.by_status.count("PENDING")
    flagged = Payment.review.count(REVIEW_FLAG)
    return Summary(today=today, day=day, month=month, per_day=sorted(per_day.items()),
                   pending=pending, flagged=flagged)


# --- a payment ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PaymentRecord:
    payment: domain_payments.Payment
    events: list[GatewayEvent]
    audit: list[AuditEvent]


def payment_record(ctx: Context, payment_id: str, *, actor: str) -> PaymentRecord:
    """A payment with every gateway notification stored for it and its audit trail."""
    from chalicelib.services import payments as payments_service

    payment = payments_service.staff_payment(ctx, payment_id)
    events = list(GatewayEvent.by_reference.query(payment.reference))
    audit = [e for e in AuditEvent.query(payment.document_number, scan_index_forward=False,
                                         filter_condition=AuditEvent.payment_id == payment.payment_id)]
    log_event("sensitive_read", what="payment_detail", actor=actor, payment_id=payment.payment_id,
              document_number=payment.document_number)
    return PaymentRecord(payment, events, audit)


# --- a member ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberOverview:
    member: Member
    obligations: list[Obligation]
    payments: list[Payment]
    sessions: list[Session]


def member_overview(ctx: Context, document_number: str, *, actor: str) -> MemberOverview:
    member = backoffice_repo.get_member(document_number)
    if member is None:
        raise NotFound(MEMBER_NOT_FOUND, code="member_not_found")
    obligations = payments_repo.obligations_of(document_number)
    payments = payments_repo.payments_of(document_number, limit=20)
    hashes = [s.session_hash for s in Session.by_member.query(document_number)]
    now = ctx.now()
    sessions = [s for s in Session.batch_get(hashes)] if hashes else []
    sessions = sorted((s for s in sessions if s.expires_at > now), key=lambda s: s.created_at,
                      reverse=True)
    log_event("sensitive_read", what="member_overview", actor=actor, document_number=document_number)
    return MemberOverview(member, obligations, payments, sessions)


def end_member_sessions(ctx: Context, document_number: str, *, actor: str, ip: str,
                        reason: str) -> int:
    """Sign the member out everywhere (audited in the member's trail)."""
    from chalicelib.adapters.dynamo import repositories
    from chalicelib.services.audit import record

    if backoffice_repo.get_member(document_number) is None:
        raise NotFound(MEMBER_NOT_FOUND, code="member_not_found")
    ended = repositories.delete_member_sessions(document_number)
    record(ctx, subject=document_number, event="staff_sessions_ended", actor=actor, ip=ip,
           reason=reason, sessions=ended)
    log_event("session_expired", reason="revoked", actor=actor, document_number=document_number,
              sessions=ended)
    return ended


def send_member_recovery(ctx: Context, document_number: str, *, actor: str, ip: str,
                         reason: str) -> str:
    """The recovery email the member could ask for (same limits), sent at staff's request."""
    from chalicelib.services import recovery
    from chalicelib.services.audit import record

    if backoffice_repo.get_member(document_number) is None:
        raise NotFound(MEMBER_NOT_FOUND, code="member_not_found")
    message = recovery.request_recovery(ctx, document_number, ip=ip)
    record(ctx, subject=document_number, event="staff_recovery_sent", actor=actor, ip=ip, reason=reason)
    return message


# --- exports -------------------------------------------------------------------------------------

def recent_exports(ctx: Context, *, months: int = 2) -> list[Export]:
    """The exports of this month and the previous one, newest first: their S3 keys (one prefix
    listing per month, ``exports/YYYY/MM/``) name them, then one BatchGetItem for the records."""
    s3 = import_jobs.s3_client(ctx.settings)
    bucket = exports_service.bucket_name(ctx.settings)
    today = _colombian_day(ctx.now())
    ids: list[str] = []
    year, month = today.year, today.month
    for _ in range(months):
        for key in _keys(s3, bucket, f"exports/{year:04d}/{month:02d}/"):
            name = key.rsplit("/", 1)[-1]
            if name.startswith("pagos-aprobados-") and name.endswith(".csv"):
                ids.append(name[len("pagos-aprobados-"):-len(".csv")])
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    found = list(Export.batch_get(ids[:100])) if ids else []
    return sorted(found, key=lambda e: e.created_at, reverse=True)


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    from botocore.exceptions import ClientError

    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
        log_event("console_bucket_missing", level=logging.WARNING, bucket=bucket)
    return keys


# --- the staff partition of the audit trail ---------------------------------------------------------

def staff_audit(*, limit: int = 50) -> list[AuditEvent]:
    """Staff sign-ins and actions not about one member, newest first (one Query)."""
    return list(AuditEvent.query(STAFF_SUBJECT, scan_index_forward=False, limit=limit))


def staff_sessions_ended(username: str) -> int:
    return staff_repo.delete_of_user(username)
