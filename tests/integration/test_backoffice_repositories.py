"""The back office's repositories hold the same conditions on DynamoDB (moto) and in the fake:
an export's id is taken once, completed once, leased once after its lease ran out; a payment is
claimed by one export and confirmed by the core once; a reminder is claimed once until released;
staff pages resume where they ended, one query a page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.mapping import payment_to_item
from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.backoffice import OPEN, Export, ReminderClaim
from chalicelib.domain.errors import Conflict
from chalicelib.domain.payments import (
    EXPORT_READY,
    REVIEW_FLAG,
    GatewayEventRecord,
    Payment,
    PaymentItem,
    StatusChange,
)
from chalicelib.services.repositories import PaymentFilter
from chalicelib.services.unit_of_work import UnitOfWork
from tests.fakes import FakeStore

AT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
ANA = "1020304050"


@dataclass
class Backend:
    units: Callable[[], UnitOfWork]
    store_payment: Callable[[Payment], None]
    store_notice: Callable[[GatewayEventRecord], None]


@pytest.fixture(params=["dynamo", "fake"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "dynamo":
        request.getfixturevalue("aws")
        def save_notice(n: GatewayEventRecord) -> None:
            models.GatewayEvent(event_id=n.event_id, gateway=n.gateway, body=n.body,
                                received_at=n.received_at, reference=n.reference, outcome=n.outcome).save()

        yield Backend(DynamoUnitOfWork, lambda p: payment_to_item(p).save(), save_notice)
    else:
        store = FakeStore()

        def keep(p: Payment) -> None:
            store.tables["payments"][p.payment_id] = p

        def keep_notice(n: GatewayEventRecord) -> None:
            store.tables["gateway_events"][n.event_id] = n

        yield Backend(store.unit_of_work, keep, keep_notice)


def payment(n: int, *, status: str = "APPROVED", queued: bool = True, review: bool = False) -> Payment:
    at = AT + timedelta(minutes=n)
    return Payment(
        payment_id=f"pay{n:019d}", reference=f"SVABCDEFGH{n:04d}", document_number=ANA,
        payer_name="Ana", status=status, amount=1000 * (n + 1), bank_code="1022",
        person_type="natural", description="Crédito", ip="203.0.113.7", gateway="fake",
        created_at=at, updated_at=at, approved_at=at if status == "APPROVED" else None,
        items=[PaymentItem(obligation_id="CR-1", type="CREDITO", product_number="1",
                           description="Crédito", amount=1000 * (n + 1))],
        status_history=[StatusChange(status="CREATED", at=at)],
        export_pending=EXPORT_READY if queued else None, review_flag=REVIEW_FLAG if review else None,
        review_reason="amount_mismatch" if review else None)


def open_export(lease_until: datetime) -> Export:
    return Export(export_id="20261123-100000-abcdef", status=OPEN, created_at=AT, requested_by="t",
                  lease_until=lease_until)


def test_an_export_id_is_taken_once_and_completed_once(backend: Backend) -> None:
    export = open_export(AT + timedelta(minutes=20))
    with backend.units() as uow:
        uow.exports.add(export)
        uow.commit()
    with backend.units() as uow:
        uow.exports.add(replace(export, requested_by="other"))
        with pytest.raises(Conflict) as taken:
            uow.commit()
    assert taken.value.changed == {f"export:{export.export_id}"}
    for attempt in range(2):
        done = replace(export)
        done.completed(key="exports/k.csv", rows=2, payments=1, total_amount=5, now=AT)
        with backend.units() as uow:
            uow.exports.complete(done)
            uow.audit.add(AuditEntry(subject="system", event="payments_exported", actor="t", at=AT,
                                     suffix=f"s{attempt}"))
            if attempt:
                with pytest.raises(Conflict) as again:
                    uow.commit()
                assert again.value.changed == {f"export:{export.export_id}"}
            else:
                uow.commit()
    with backend.units() as uow:
        assert [e.suffix for e in uow.audit.of("system")] == ["s0"]  # the audit fell with it
        stored = uow.exports.get(export.export_id)
        assert stored is not None and stored.is_complete and stored.lease_until is None
        assert (stored.key, stored.rows, stored.payments, stored.requested_by) == ("exports/k.csv", 2, 1, "t")
        assert uow.exports.open_before(AT + timedelta(days=1)) == []
        assert [e.export_id for e in uow.exports.get_many([export.export_id, "nope-00000000"])] == [
            export.export_id]


def test_an_open_export_is_leased_only_after_its_lease_and_by_one(backend: Backend) -> None:
    export = open_export(AT + timedelta(minutes=20))
    with backend.units() as uow:
        uow.exports.add(export)
        uow.commit()
        (stale,) = uow.exports.open_before(AT + timedelta(seconds=1))
        assert stale == export and uow.exports.open_before(AT) == []
        assert not uow.exports.take_lease(stale, now=AT + timedelta(minutes=5), until=AT)  # still held
        later = AT + timedelta(minutes=21)
        assert uow.exports.take_lease(stale, now=later, until=later + timedelta(minutes=20))
        assert not uow.exports.take_lease(replace(export), now=later, until=later)  # taken now
        stored = uow.exports.get(export.export_id)
        assert stored is not None and stored.lease_until == later + timedelta(minutes=20)


def test_a_queued_payment_is_claimed_by_one_export_and_confirmed_once(backend: Backend) -> None:
    for n in (2, 0, 1):
        backend.store_payment(payment(n))
    backend.store_payment(payment(3, status="REJECTED", queued=False))
    backend.store_payment(payment(4, status="PENDING"))  # marked, but not approved: never claimed
    first, second = backend.units(), backend.units()
    queued = list(first.exports.queued(page_size=2))
    ids = [payment(n).payment_id for n in range(5)]
    assert queued == ids[:3]  # oldest approval first (the index holds approved ones only)
    won = first.exports.claim(ids[0], export_id="A", now=AT)
    assert won is not None and won.reference == "SVABCDEFGH0000" and won.items[0].amount == 1000
    assert (won.export_id, won.export_pending, won.exported_at) == ("A", None, AT)
    assert second.exports.claim(ids[0], export_id="B", now=AT) is None
    assert second.exports.claim(ids[3], export_id="B", now=AT) is None
    assert second.exports.claim(ids[4], export_id="B", now=AT) is None
    assert second.exports.claim(ids[1], export_id="B", now=AT + timedelta(hours=1)) is not None
    assert list(first.exports.queued(page_size=2)) == [ids[2]]
    assert [p.payment_id for p in first.exports.payments_of("A")] == [ids[0]]

    assert first.exports.exported_before(ids, AT) == {ids[0]}
    assert not first.exports.confirm_in_core(ids[1], cutoff=AT, now=AT)  # exported after the cut-off
    assert not first.exports.confirm_in_core(ids[2], cutoff=AT, now=AT)  # not exported
    assert first.exports.confirm_in_core(ids[0], cutoff=AT, now=AT)
    assert not second.exports.confirm_in_core(ids[0], cutoff=AT, now=AT)  # once


def test_a_reminder_is_claimed_once_until_released(backend: Backend) -> None:
    claim = ReminderClaim(key=f"pending#{'p' * 22}", kind="pending", document_number=ANA, sent_at=AT,
                          expires_at=AT + timedelta(days=400))
    first, second = backend.units(), backend.units()
    assert first.reminders.claim(claim)
    assert not second.reminders.claim(replace(claim, sent_at=AT + timedelta(minutes=30)))
    first.reminders.release(claim.key)
    assert second.reminders.claim(claim)


def test_staff_pages_resume_where_they_ended(backend: Backend) -> None:
    for n in range(5):
        backend.store_payment(payment(n, queued=False, review=n in (1, 3)))
    def last_digits(items: list[Payment]) -> list[str]:
        return [p.reference[-1] for p in items]

    with backend.units() as uow:
        first = uow.backoffice.payment_page(PaymentFilter(document=ANA), limit=2, start=None)
        assert last_digits(first.items) == ["4", "3"] and first.resume is not None
        rest = uow.backoffice.payment_page(PaymentFilter(document=ANA), limit=3, start=first.resume)
        assert last_digits(rest.items) == ["2", "1", "0"] and rest.resume is None
        narrowed = PaymentFilter(status="APPROVED", created=(AT + timedelta(minutes=1),
                                                             AT + timedelta(minutes=2)))
        assert last_digits(uow.backoffice.payment_page(narrowed, limit=5, start=None).items) == ["2", "1"]
        by_reference = PaymentFilter(reference="SVABCDEFGH0002", status="PENDING")
        assert uow.backoffice.payment_page(by_reference, limit=5, start=None).items == []
        review = uow.backoffice.review_page(limit=1, start=None)
        assert last_digits(review.items) == ["1"] and review.resume is not None
        assert last_digits(uow.backoffice.review_page(limit=1, start=review.resume).items) == ["3"]
        assert uow.backoffice.count_flagged() == 2 and uow.backoffice.count_in_status("APPROVED") == 5


def test_a_payment_s_gateway_notices_oldest_first(backend: Backend) -> None:
    later = GatewayEventRecord(event_id="e2", gateway="fake", reference="SVABCDEFGH0001",
                               received_at=AT + timedelta(minutes=5), outcome="applied",
                               body='{"status": "APPROVED"}')
    backend.store_notice(later)
    backend.store_notice(replace(later, event_id="e1", received_at=AT, outcome="unchanged", body="{}"))
    backend.store_notice(replace(later, event_id="e3", reference="SVABCDEFGH0002"))
    with backend.units() as uow:
        assert [(n.outcome, n.body) for n in uow.backoffice.gateway_notices("SVABCDEFGH0001")] == [
            ("unchanged", "{}"), ("applied", '{"status": "APPROVED"}')]


def test_an_audit_page_resumes_newest_first(backend: Backend) -> None:
    with backend.units() as uow:
        for n in range(3):
            uow.audit.add(AuditEntry(subject=ANA, event=f"e{n}", actor="member",
                                     at=AT + timedelta(seconds=n), suffix=f"s{n}"))
        uow.commit()
    with backend.units() as uow:
        first = uow.backoffice.audit_page(ANA, limit=2, start=None)
        assert [e.event for e in first.items] == ["e2", "e1"] and first.resume is not None
        rest = uow.backoffice.audit_page(ANA, limit=2, start=first.resume)
        assert [e.event for e in rest.items] == ["e0"] and rest.resume is None


def test_a_page_is_one_query(aws: None, dynamo_calls) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        payment_to_item(payment(n, queued=False)).save()
    uow = DynamoUnitOfWork()
    dynamo_calls.reset()
    page = uow.backoffice.payment_page(PaymentFilter(status="APPROVED"), limit=2, start=None)
    uow.backoffice.payment_page(PaymentFilter(status="APPROVED"), limit=2, start=page.resume)
    assert dynamo_calls.operations == ["Query", "Query"]
