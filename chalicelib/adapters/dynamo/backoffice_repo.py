"""DynamoDB reads and writes of the back office (issue 4): staff searches, exports, members.

Every search is a ``Query`` on the table or one of its indexes, never a ``Scan``. Pages are cut
at ``limit`` items: the query asks for ``limit + 1`` so that the page knows whether more follow
without an extra (often empty) round trip, and the resume key is the key of the page's last item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.adapters.dynamo.models import AuditEvent, Export, Member, Payment
from chalicelib.adapters.dynamo.repositories import ConcurrentUpdate, aws_error_code

T = TypeVar("T")
ResumeKey = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    resume_key: ResumeKey | None  # None: this was the last page


def _page(query: Callable[..., Iterator[T]], *, limit: int, start: ResumeKey | None,
          **kwargs: Any) -> Page[T]:
    """One page of a PynamoDB query: ``limit`` items and the key to resume after them."""
    iterator: Any = query(limit=limit + 1, page_size=limit + 1, last_evaluated_key=start, **kwargs)
    items: list[T] = []
    resume: ResumeKey | None = None
    for item in iterator:
        if len(items) == limit:  # one more exists: the page is full and not the last one
            return Page(items, resume)
        items.append(item)
        if len(items) == limit:
            resume = iterator.last_evaluated_key
    return Page(items, None)


# --- payments --------------------------------------------------------------------------------

#: index name → the PynamoDB query method, for :func:`payments_page`.
PAYMENT_INDEXES = {
    "by_reference": Payment.by_reference,
    "by_cus": Payment.by_cus,
    "by_member": Payment.by_member,
    "by_status": Payment.by_status,
    "review": Payment.review,
}


def payments_page(index: str, hash_key: str, *, range_condition: Condition | None = None,
                  filter_condition: Condition | None = None, newest_first: bool = True,
                  limit: int, start: ResumeKey | None) -> Page[Payment]:
    """One page from a payment index: one Query (more only when a filter drops items)."""
    return _page(PAYMENT_INDEXES[index].query, limit=limit, start=start, hash_key=hash_key,
                 range_key_condition=range_condition, filter_condition=filter_condition,
                 scan_index_forward=not newest_first)


def export_candidates(marker: str, *, page_size: int) -> Iterator[Payment]:
    """Approved payments no export has claimed yet (``export_pending == marker``), oldest approval
    first: the sparse export_queue index, keys only, one Query per page."""
    return iter(Payment.export_queue.query(marker, page_size=page_size))


def claim_for_export(payment_id: str, *, export_id: str, now: datetime) -> Payment | None:
    """Take one approved payment for ``export_id``: a conditional write that only one export can
    win (``export_pending`` is removed by the winner). Returns the whole item (ALL_NEW), or None
    when another export claimed it first."""
    payment = Payment(payment_id=payment_id)
    try:
        payment.update(actions=[Payment.export_pending.remove(), Payment.exported_at.set(now),
                                Payment.export_id.set(export_id)],
                       condition=Payment.export_pending.exists() & (Payment.status == "APPROVED"))
    except UpdateError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return payment


def payments_of_export(export_id: str) -> list[Payment]:
    """Every payment an export claimed (index by_export, then one consistent BatchGetItem per 100)."""
    ids = [p.payment_id for p in Payment.by_export.query(export_id)]
    found = list(Payment.batch_get(ids, consistent_read=True)) if ids else []
    return sorted(found, key=lambda p: (p.approved_at or p.created_at, p.reference))


def mark_applied_in_core(payment_id: str, *, cutoff: datetime, now: datetime) -> bool:
    """The core system confirmed an exported payment (its file was cut after the export)."""
    try:
        Payment(payment_id=payment_id).update(
            actions=[Payment.core_applied_at.set(now)],
            condition=(Payment.exported_at.exists() & (Payment.exported_at <= cutoff)
                       & Payment.core_applied_at.does_not_exist()))
    except UpdateError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def exported_before(payment_ids: Sequence[str], cutoff: datetime) -> set[str]:
    """Of these payments, those an export had claimed at or before ``cutoff``."""
    ids = list(dict.fromkeys(payment_ids))
    if not ids:
        return set()
    return {p.payment_id for p in Payment.batch_get(ids, consistent_read=True,
                                                    attributes_to_get=["payment_id", "exported_at"])
            if p.exported_at is not None and p.exported_at <= cutoff}


# --- exports ---------------------------------------------------------------------------------

OPEN = "OPEN"
COMPLETE = "COMPLETE"


def create_export(export: Export) -> None:
    try:
        export.save(condition=Export.export_id.does_not_exist())
    except PutError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            raise ConcurrentUpdate(f"export {export.export_id} exists") from exc
        raise


def get_export(export_id: str) -> Export | None:
    try:
        return Export.get(export_id, consistent_read=True)
    except DoesNotExist:
        return None


def open_exports(*, older_than: datetime) -> list[Export]:
    """Exports still OPEN created before ``older_than`` (sparse index; normally none)."""
    return list(Export.open_exports.query(OPEN, Export.created_at < older_than))


def take_lease(export: Export, *, now: datetime, until: datetime) -> bool:
    """Become the one process finishing an OPEN export whose lease ran out."""
    try:
        export.update(actions=[Export.lease_until.set(until)],
                      condition=(Export.status == OPEN) & (Export.lease_until < now))
    except UpdateError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def complete_export(export: Export, *, key: str, rows: int, payments: int, total_amount: int,
                    now: datetime) -> bool:
    """OPEN → COMPLETE with what the file holds; False if someone else completed it first."""
    try:
        export.update(actions=[Export.status.set(COMPLETE), Export.open_flag.remove(),
                               Export.key.set(key), Export.rows.set(rows),
                               Export.payments.set(payments), Export.total_amount.set(total_amount),
                               Export.completed_at.set(now), Export.lease_until.remove()],
                      condition=Export.status == OPEN)
    except UpdateError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


# --- members and their audit trail -----------------------------------------------------------

def get_member(document_number: str) -> Member | None:
    try:
        return Member.get(document_number, consistent_read=True)
    except DoesNotExist:
        return None


def audit_page(subject: str, *, limit: int, start: ResumeKey | None) -> Page[AuditEvent]:
    """A member's audit trail, newest first (one Query per page). Read only: the trail is
    append-only, and this module, like every other, has no code that updates or deletes it."""
    return _page(AuditEvent.query, limit=limit, start=start, hash_key=subject,
                 scan_index_forward=False)
