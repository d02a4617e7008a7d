"""The unit of work's contract, held by the DynamoDB one (moto) and the fake alike: staged writes
go together or not at all, a stale version or a taken key is a Conflict naming it, events ride
along, leaving without a commit writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.outbox import event_from_item
from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import PaymentApproved, PaymentFlagged
from chalicelib.domain.members import Member

AT = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def entry(subject: str, event: str, suffix: str) -> AuditEntry:
    return AuditEntry(subject=subject, event=event, actor="member", at=AT, suffix=suffix,
                      details={"ip": "203.0.113.7"})


def test_a_commit_writes_everything_and_gives_each_entity_its_new_version(units) -> None:
    with units() as uow:
        member = Member(document_number="1020304050", full_name="María Pérez")
        uow.members.add(member)
        uow.audit.add(entry("1020304050", "member_created", "aaaaaa"))
        uow.commit()
    assert member.version == 1
    with units() as uow:
        stored = uow.members.get("1020304050")
        assert stored is not None and stored.full_name == "María Pérez" and stored.version == 1
        assert [e.event for e in uow.audit.of("1020304050")] == ["member_created"]
        assert uow.audit.of("1020304050")[0].details == {"ip": "203.0.113.7"}


def test_a_stale_version_is_a_conflict_naming_it_and_nothing_is_written(units) -> None:
    with units() as uow:
        uow.members.add(Member(document_number="1020304050", full_name="María"))
        uow.commit()
    with units() as first, units() as second:
        mine, theirs = first.members.get("1020304050"), second.members.get("1020304050")
        assert mine is not None and theirs is not None
        mine.email, theirs.email = "mine@correo.example", "theirs@correo.example"
        first.members.update(mine)
        first.commit()
        second.members.update(theirs)
        second.audit.add(entry("1020304050", "email_changed", "bbbbbb"))
        with pytest.raises(Conflict) as raised:
            second.commit()
    assert raised.value.changed == {"member:1020304050"}
    with units() as uow:
        stored = uow.members.get("1020304050")
        assert stored is not None and stored.email == "mine@correo.example" and stored.version == 2
        assert uow.audit.of("1020304050") == []


def test_adding_a_taken_key_is_a_conflict(units) -> None:
    for attempt in range(2):
        with units() as uow:
            uow.members.add(Member(document_number="1020304050", full_name=f"María {attempt}"))
            if attempt:
                with pytest.raises(Conflict) as raised:
                    uow.commit()
                assert raised.value.changed == {"member:1020304050"}
            else:
                uow.commit()


def test_leaving_without_a_commit_writes_nothing(units) -> None:
    with units() as uow:
        uow.members.add(Member(document_number="1020304050", full_name="María"))
        uow.record(PaymentApproved(payment_id="p" * 22, document_number="1020304050",
                                   reference="SV-1", at=AT))
    with units() as uow:
        assert uow.members.get("1020304050") is None


def test_a_member_stored_before_versions_existed_is_version_zero(aws) -> None:
    models.Member(document_number="1020304050", full_name="María").save()
    with DynamoUnitOfWork() as uow:
        member = uow.members.get("1020304050")
        assert member is not None and member.version == 0
        member.phone = "3001234567"
        uow.members.update(member)
        uow.commit()
    assert models.Member.get("1020304050").version == 1


def test_events_are_written_in_the_same_transaction_and_read_back(aws) -> None:
    flagged = PaymentFlagged(payment_id="p" * 22, document_number="1020304050", reference="SV-1",
                             at=AT, reason="amount_mismatch")
    with DynamoUnitOfWork() as uow:
        uow.members.add(Member(document_number="1020304050", full_name="María"))
        uow.record(flagged)
        uow.commit()
    assert [event_from_item(item) for item in models.OutboxEvent.scan()] == [flagged]
    with DynamoUnitOfWork() as uow:  # a conflict takes the events down with it
        uow.members.add(Member(document_number="1020304050", full_name="Otra"))
        uow.record(PaymentApproved(payment_id="q" * 22, document_number="1020304050",
                                   reference="SV-2", at=AT))
        with pytest.raises(Conflict):
            uow.commit()
    assert models.OutboxEvent.count() == 1


def test_payments_and_obligations_round_trip_through_their_items(aws) -> None:
    from chalicelib.adapters.dynamo.mapping import (
        obligation_from_item,
        obligation_to_item,
        payment_from_item,
        payment_to_item,
    )
    from chalicelib.domain.obligations import Obligation
    from chalicelib.domain.payments import Payment, PaymentItem, StatusChange

    payment = Payment(
        payment_id="p" * 22, reference="SV-ABC", document_number="1020304050", payer_name="María",
        status="PENDING", amount=150_000, bank_code="1022", person_type="natural",
        description="Aporte", ip="203.0.113.7", gateway="wompi", created_at=AT, updated_at=AT,
        items=[PaymentItem(obligation_id="AP-1", type="APORTE", product_number="123456789",
                           description="Aporte", amount=150_000, due_before=150_000,
                           minimum_before=50_000, maximum_before=300_000,
                           parts=[["capital", 150_000]])],
        status_history=[StatusChange(status="CREATED", at=AT), StatusChange(status="PENDING", at=AT)],
    )
    payment_to_item(payment).save()
    stored = payment_from_item(models.Payment.get(payment.payment_id))
    assert stored == Payment(**{**payment.__dict__, "version": 1})
    obligation = Obligation(document_number="1020304050", obligation_id="AP-1", type="APORTE",
                            product_number="123456789", description="Aporte", due_date="2026-03-05",
                            amount_due=150_000, minimum_amount=50_000, maximum_amount=300_000,
                            cutoff=AT, portal_payments={"x": {"amount": 1, "at": "t", "reference": "r"}},
                            instalment_parts={"capital": 150_000})
    obligation_to_item(obligation).save()
    assert obligation_from_item(models.Obligation.get("1020304050", "AP-1")) == Obligation(
        **{**obligation.__dict__, "version": 1})
