"""The back office's repositories on DynamoDB: staff reads, exports, reminder claims.

Every search is a ``Query`` on the table or one of its indexes, never a ``Scan``. Pages are cut
at ``limit`` items: the query asks for ``limit + 1`` so that the page knows whether more follow
without an extra (often empty) round trip, and the resume key is the key of the page's last item.
Claims are single conditional writes made at once (see ``services/repositories.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.audit import entry_from_item
from chalicelib.adapters.dynamo.mapping import (
    absent,
    entity_from_item,
    obligation_from_item,
    payment_from_item,
)
from chalicelib.adapters.dynamo.members import member_from_item
from chalicelib.adapters.dynamo.repositories import aws_error_code
from chalicelib.adapters.dynamo.transaction import Tx
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.backoffice import (
    OPEN,
    Export,
    PaymentFigures,
    ReminderClaim,
)
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import (
    APPROVED,
    EXPORT_READY,
    PENDING,
    REVIEW_FLAG,
    GatewayEventRecord,
    Payment,
)
from chalicelib.domain.sessions import Session
from chalicelib.services.repositories import (
    BackOffice,
    ExportRepository,
    Page,
    PaymentFilter,
    ReminderRepository,
    ResumeKey,
)

T = TypeVar("T")
ItemT = TypeVar("ItemT", bound=Model)


def page_of(query: Callable[..., Iterator[ItemT]], convert: Callable[[ItemT], T], *, limit: int,
            start: ResumeKey | None, **kwargs: Any) -> Page[T]:
    """One page of a PynamoDB query: ``limit`` items and the key to resume after them."""
    iterator: Any = query(limit=limit + 1, page_size=limit + 1, last_evaluated_key=start, **kwargs)
    items: list[T] = []
    resume: ResumeKey | None = None
    for item in iterator:
        if len(items) == limit:  # one more exists: the page is full and not the last one
            return Page(items, resume)
        items.append(convert(item))
        if len(items) == limit:
            resume = iterator.last_evaluated_key
    return Page(items, None)


def conditional_failed(exc: Exception) -> bool:
    return aws_error_code(exc) == "ConditionalCheckFailedException"


def all_of(conditions: Iterable[Condition]) -> Condition | None:
    combined: Condition | None = None
    for condition in conditions:
        combined = condition if combined is None else combined & condition
    return combined


def audit_page(subject: str, *, limit: int, start: ResumeKey | None) -> Page[AuditEntry]:
    """A subject's audit trail, newest first (one Query per page). Read only: the trail is
    append-only, and this module, like every other, has no code that updates or deletes it."""
    return page_of(models.AuditEvent.query, entry_from_item, limit=limit, start=start,
                   hash_key=subject, scan_index_forward=False)


# --- staff reads ------------------------------------------------------------------------------

P = models.Payment
#: PaymentFilter.index → the index queried.
PAYMENT_INDEXES = {"by_reference": P.by_reference, "by_cus": P.by_cus, "by_member": P.by_member,
                   "by_status": P.by_status}
SUMMARY_FIELDS = ["payment_id", "status", "amount", "created_at", "items"]


def payment_conditions(search: PaymentFilter) -> tuple[str, Condition | None, Condition | None]:
    """The hash key, range key condition and filter of a search on ``search.index``."""
    between = P.created_at.between(*search.created) if search.created else None
    if search.reference or search.cus:
        filters: list[Condition] = [P.cus == search.cus] if search.reference and search.cus else []
        filters += [P.document_number == search.document] if search.document else []
        filters += [P.status == search.status] if search.status else []
        filters += [between] if between is not None else []
        return search.reference or search.cus or "", None, all_of(filters)
    if search.document:
        return search.document, between, P.status == search.status if search.status else None
    return search.status or "", between, None


def figures_from_item(item: models.Payment) -> PaymentFigures:
    return PaymentFigures(status=item.status, amount=int(item.amount), created_at=item.created_at,
                          paid=tuple((line.type, int(line.amount)) for line in item.items or []))


class DynamoBackOffice(BackOffice):
    def payment_page(self, search: PaymentFilter, *, limit: int,
                     start: ResumeKey | None) -> Page[Payment]:
        hash_key, range_condition, filter_condition = payment_conditions(search)
        return page_of(PAYMENT_INDEXES[search.index].query, payment_from_item, limit=limit,
                       start=start, hash_key=hash_key, range_key_condition=range_condition,
                       filter_condition=filter_condition, scan_index_forward=False)

    def review_page(self, *, limit: int, start: ResumeKey | None) -> Page[Payment]:
        return page_of(P.review.query, payment_from_item, limit=limit, start=start,
                       hash_key=REVIEW_FLAG, scan_index_forward=True)

    def audit_page(self, subject: str, *, limit: int, start: ResumeKey | None) -> Page[AuditEntry]:
        return audit_page(subject, limit=limit, start=start)

    def payment_figures(self, status: str, *, since: datetime) -> Iterator[PaymentFigures]:
        for item in P.by_status.query(status, P.created_at >= since, attributes_to_get=SUMMARY_FIELDS):
            yield figures_from_item(item)

    def count_in_status(self, status: str) -> int:
        return P.by_status.count(status)

    def count_flagged(self) -> int:
        return P.review.count(REVIEW_FLAG)

    def gateway_notices(self, reference: str) -> list[GatewayEventRecord]:
        return [entity_from_item(GatewayEventRecord, e)
                for e in models.GatewayEvent.by_reference.query(reference)]

    def payment_audit(self, document_number: str, payment_id: str) -> list[AuditEntry]:
        return [entry_from_item(e) for e in models.AuditEvent.query(
            document_number, scan_index_forward=False,
            filter_condition=models.AuditEvent.payment_id == payment_id)]

    def sessions_of(self, document_number: str) -> list[Session]:
        """Index by_member (keys only), then one BatchGetItem."""
        hashes = [s.session_hash for s in models.Session.by_member.query(document_number)]
        found = models.Session.batch_get(hashes) if hashes else []
        return [entity_from_item(Session, s) for s in found]


# --- exports ----------------------------------------------------------------------------------

def export_label(export_id: str) -> str:
    return f"export:{export_id}"


def export_from_item(item: models.Export) -> Export:
    return entity_from_item(Export, item)


def export_to_item(export: Export) -> models.Export:
    """The item of an OPEN export (its ``open_flag`` puts it in the open-exports index)."""
    return models.Export(export_id=export.export_id, status=export.status, created_at=export.created_at,
                         requested_by=export.requested_by, key=export.key, rows=export.rows,
                         payments=export.payments, total_amount=export.total_amount,
                         completed_at=export.completed_at, lease_until=export.lease_until,
                         open_flag=OPEN if export.status == OPEN else None)


class DynamoExports(ExportRepository):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def add(self, export: Export) -> None:
        self.tx.put(export_label(export.export_id), export_to_item(export), absent(models.Export))

    def complete(self, export: Export) -> None:
        E = models.Export
        if export.key is None or export.completed_at is None:
            raise ValueError(f"export {export.export_id} completes with its file")
        self.tx.update(export_label(export.export_id), E(export_id=export.export_id),
                       [E.status.set(export.status), E.open_flag.remove(), E.key.set(export.key),
                        E.rows.set(export.rows), E.payments.set(export.payments),
                        E.total_amount.set(export.total_amount),
                        E.completed_at.set(export.completed_at), E.lease_until.remove()],
                       E.status == OPEN)

    def get(self, export_id: str) -> Export | None:
        try:
            return export_from_item(models.Export.get(export_id, consistent_read=True))
        except DoesNotExist:
            return None

    def get_many(self, export_ids: list[str]) -> list[Export]:
        return [export_from_item(e) for e in models.Export.batch_get(export_ids[:100])] if export_ids else []

    def open_before(self, older_than: datetime) -> list[Export]:
        return [export_from_item(e) for e in
                models.Export.open_exports.query(OPEN, models.Export.created_at < older_than)]

    def take_lease(self, export: Export, *, now: datetime, until: datetime) -> bool:
        E = models.Export
        try:
            E(export_id=export.export_id).update(actions=[E.lease_until.set(until)],
                                                 condition=(E.status == OPEN) & (E.lease_until < now))
        except UpdateError as exc:
            if conditional_failed(exc):
                return False
            raise
        export.lease_until = until
        return True

    def queued(self, *, page_size: int) -> Iterator[str]:
        """The sparse export_queue index (keys only), one Query per page."""
        return (p.payment_id for p in P.export_queue.query(EXPORT_READY, page_size=page_size))

    def claim(self, payment_id: str, *, export_id: str, now: datetime) -> Payment | None:
        """``export_pending`` is removed by the winner: one conditional UpdateItem (ALL_NEW)."""
        item = P(payment_id=payment_id)
        try:
            item.update(actions=[P.export_pending.remove(), P.exported_at.set(now),
                                 P.export_id.set(export_id)],
                        condition=P.export_pending.exists() & (P.status == APPROVED))
        except UpdateError as exc:
            if conditional_failed(exc):
                return None
            raise
        return payment_from_item(item)

    def payments_of(self, export_id: str) -> list[Payment]:
        """Index by_export, then one consistent BatchGetItem per 100."""
        ids = [p.payment_id for p in P.by_export.query(export_id)]
        found = [payment_from_item(p) for p in P.batch_get(ids, consistent_read=True)] if ids else []
        return sorted(found, key=lambda p: (p.approved_at or p.created_at, p.reference))

    def exported_before(self, payment_ids: list[str], cutoff: datetime) -> set[str]:
        ids = list(dict.fromkeys(payment_ids))
        if not ids:
            return set()
        return {p.payment_id for p in P.batch_get(ids, consistent_read=True,
                                                  attributes_to_get=["payment_id", "exported_at"])
                if p.exported_at is not None and p.exported_at <= cutoff}

    def confirm_in_core(self, payment_id: str, *, cutoff: datetime, now: datetime) -> bool:
        try:
            P(payment_id=payment_id).update(
                actions=[P.core_applied_at.set(now)],
                condition=(P.exported_at.exists() & (P.exported_at <= cutoff)
                           & P.core_applied_at.does_not_exist()))
        except UpdateError as exc:
            if conditional_failed(exc):
                return False
            raise
        return True


# --- reminders --------------------------------------------------------------------------------

class DynamoReminders(ReminderRepository):
    def due_on(self, due_date: str) -> list[Obligation]:
        due = models.Obligation.by_due_date.query(due_date,
                                                  filter_condition=models.Obligation.status == "OPEN")
        return [obligation_from_item(o) for o in due]

    def members_of(self, document_numbers: list[str]) -> dict[str, Member]:
        if not document_numbers:
            return {}
        return {m.document_number: member_from_item(m)
                for m in models.Member.batch_get(document_numbers)}

    def pending_in(self, shard: str, *, created_before: datetime) -> list[Payment]:
        return [payment_from_item(p) for p in P.due_poll.query(
            shard, filter_condition=(P.status == PENDING) & (P.created_at <= created_before))]

    def claim(self, claim: ReminderClaim) -> bool:
        R = models.ReminderSent
        try:
            R(reminder_key=claim.key, kind=claim.kind, document_number=claim.document_number,
              sent_at=claim.sent_at, ttl=claim.expires_at).save(condition=absent(R))
        except PutError as exc:
            if conditional_failed(exc):
                return False
            raise
        return True

    def release(self, key: str) -> None:
        models.ReminderSent(reminder_key=key).delete()
