"""The payment engine's repositories, held by DynamoDB (moto) and the fakes alike: every condition
the engine relies on (a payment's or an obligation's version, a replayed gateway event, a live
claim) is a Conflict naming what changed, and nothing is written then."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork
from chalicelib.domain.errors import Conflict
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import Claim, GatewayEventRecord, Payment, PaymentItem, StatusChange
from chalicelib.services.unit_of_work import UnitOfWork

AT = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
ANA = "1020304050"


def a_payment(**changes: object) -> Payment:
    values: dict[str, object] = dict(
        payment_id="p" * 22, reference="SVABCDEFGHIJKL", document_number=ANA, payer_name="Ana",
        status="PENDING", amount=150_000, bank_code="1022", person_type="natural",
        description="Crédito 1234", ip="203.0.113.7", gateway="fake", created_at=AT, updated_at=AT,
        items=[PaymentItem(obligation_id="CR-1", type="CREDITO", product_number="004500001234",
                           description="Crédito", amount=150_000, due_before=150_000,
                           minimum_before=50_000, maximum_before=900_000, obligation_version=1)],
        status_history=[StatusChange(status="CREATED", at=AT)], poll_shard="0", next_poll_at=AT)
    values.update(changes)
    return Payment(**values)  # type: ignore[arg-type]


def an_obligation() -> Obligation:
    return Obligation(document_number=ANA, obligation_id="CR-1", type="CREDITO",
                      product_number="004500001234", description="Crédito", due_date="2026-03-05",
                      amount_due=150_000, minimum_amount=50_000, maximum_amount=900_000, cutoff=AT)


def stored_obligation(units: Callable[[], UnitOfWork]) -> Obligation:
    with units() as uow:
        _, found = uow.obligations.member_and_obligations(ANA, ["CR-1"])
    return found["CR-1"]


def put_obligation(units: Callable[[], UnitOfWork]) -> None:
    uow = units()
    if isinstance(uow, DynamoUnitOfWork):
        from chalicelib.adapters.dynamo.mapping import obligation_to_item

        item = obligation_to_item(an_obligation())
        item.version = None  # imported before versions existed: version 0
        item.save()
    else:
        uow.store.tables["obligations"][(ANA, "CR-1")] = an_obligation()  # type: ignore[attr-defined]


def test_a_payment_is_added_once_and_written_over_its_version(units) -> None:  # type: ignore[no-untyped-def]
    payment = a_payment()
    with units() as uow:
        uow.payments.add(payment)
        uow.commit()
    assert payment.version == 1
    with units() as uow:
        uow.payments.add(a_payment())
        with pytest.raises(Conflict) as raised:
            uow.commit()
    assert raised.value.changed == {"payment"}
    with units() as first, units() as second:
        mine, theirs = first.payments.get(payment.payment_id), second.payments.get(payment.payment_id)
        assert mine is not None and theirs is not None
        mine.status, theirs.status = "APPROVED", "REJECTED"
        first.payments.update(mine)
        first.commit()
        second.payments.update(theirs)
        with pytest.raises(Conflict) as raised:
            second.commit()
    assert raised.value.changed == {"payment"}
    with units() as uow:
        stored = uow.payments.get(payment.payment_id)
        assert stored is not None and (stored.status, stored.version) == ("APPROVED", 2)
        assert uow.payments.by_reference(payment.reference) == stored
        assert uow.payments.of_member(ANA) == [stored]
        assert list(uow.payments.due("0", AT, page_size=10)) == [stored]
        assert list(uow.payments.due("0", AT - timedelta(seconds=1), page_size=10)) == []


def test_an_update_writes_only_what_changed(aws) -> None:  # type: ignore[no-untyped-def]
    with DynamoUnitOfWork() as uow:
        uow.payments.add(a_payment())
        uow.commit()
    with DynamoUnitOfWork() as uow:
        payment = uow.payments.get("p" * 22)
        assert payment is not None
        # another writer that does not count versions (an export claiming it) meanwhile:
        models.Payment(payment_id=payment.payment_id).update(
            actions=[models.Payment.export_id.set("EXP-1")])
        payment.receipt_emailed = True
        payment.leave_poller()
        uow.payments.update(payment)
        uow.commit()
    stored = models.Payment.get("p" * 22)
    assert stored.export_id == "EXP-1" and stored.receipt_emailed is True
    assert stored.next_poll_at is None and stored.version == 2


def test_an_obligation_change_is_written_over_the_version_it_was_decided_from(units) -> None:  # type: ignore[no-untyped-def]
    put_obligation(units)
    obligation = stored_obligation(units)
    assert obligation.version == 0
    lock = obligation.lock_for("p" * 22, "SVABCDEFGHIJKL")
    with units() as uow:
        uow.obligations.change(lock)
        uow.commit()
    locked = stored_obligation(units)
    assert (locked.pending_payment_id, locked.portal_payments, locked.version) == ("p" * 22, {}, 1)
    with units() as uow:  # the same decision again: its version is gone
        uow.obligations.change(lock)
        with pytest.raises(Conflict) as raised:
            uow.commit()
    assert raised.value.changed == {"obligation:CR-1"}
    from chalicelib.domain.payments import settle_obligation

    payment = a_payment()
    change = settle_obligation(payment, payment.items[0], None, approve=True, at=AT)
    assert change is not None
    with units() as uow:
        uow.obligations.change(change)
        uow.commit()
    paid = stored_obligation(units)
    assert (paid.amount_due, paid.minimum_amount, paid.maximum_amount) == (0, 0, 750_000)
    assert paid.pending_payment_id is None and paid.version == 2
    assert paid.portal_payments == {"p" * 22: {"amount": 150_000, "at": AT.isoformat(),
                                               "reference": "SVABCDEFGHIJKL"}}
    with units() as uow:  # a replayed approval never decrements twice
        uow.obligations.change(change)
        with pytest.raises(Conflict):
            uow.commit()
    assert stored_obligation(units) == paid


def test_a_replayed_gateway_event_is_a_conflict_on_event(units) -> None:  # type: ignore[no-untyped-def]
    event = GatewayEventRecord(event_id="fake#gw-1#APPROVED", gateway="fake", body="{}",
                               received_at=AT, reference="SVABCDEFGHIJKL", outcome="applied")
    with units() as uow:
        uow.gateway_events.add(event)
        uow.commit()
    with units() as uow:
        uow.payments.add(a_payment())
        uow.gateway_events.add(event)
        with pytest.raises(Conflict) as raised:
            uow.commit()
    assert raised.value.changed == {"event"}
    with units() as uow:
        assert uow.payments.get("p" * 22) is None  # nothing written with it


def test_a_claim_holds_its_key_while_live(units) -> None:  # type: ignore[no-untyped-def]
    claim = Claim(key=f"{ANA}#key-1", payment_id="p" * 22, created_at=AT, fingerprint="f",
                  expires_at=AT + timedelta(hours=24))
    reference = Claim(key="reference#SVABCDEFGHIJKL", payment_id="p" * 22, created_at=AT)
    with units() as uow:
        uow.claims.add(claim, AT)
        uow.claims.add(reference, AT)
        uow.commit()
    with units() as uow:
        assert uow.claims.get(claim.key, AT) == claim
        assert uow.claims.get(claim.key, AT + timedelta(hours=24)) is None  # expired
        uow.claims.add(Claim(key=claim.key, payment_id="q" * 22, created_at=AT), AT)
        uow.claims.add(Claim(key=reference.key, payment_id="q" * 22, created_at=AT), AT)
        with pytest.raises(Conflict) as raised:
            uow.commit()
    assert raised.value.changed == {"idempotency", "reference"}
    later = AT + timedelta(hours=25)
    with units() as uow:  # an expired Idempotency-Key may be taken again; a reference never
        uow.claims.add(Claim(key=claim.key, payment_id="q" * 22, created_at=later), later)
        uow.commit()
        assert uow.claims.get(claim.key, later) is not None


def test_the_bank_list_is_cached_at_once(units) -> None:  # type: ignore[no-untyped-def]
    with units() as uow:
        assert uow.bank_lists.get("fake") is None
        uow.bank_lists.put("fake", [("1022", "BANCO UNION")], now=AT, expires_at=AT + timedelta(days=1))
    with units() as uow:
        assert uow.bank_lists.get("fake") == ([("1022", "BANCO UNION")], AT + timedelta(days=1))
