"""The imports' storage contract, held by the DynamoDB one (moto) and the fake alike: every write
of a member or an obligation stores the next version (so a payment's version-checked write that
read it before fails), and the conditions the importer relies on."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork
from chalicelib.config import get_settings
from chalicelib.context import Context
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import Conflict
from chalicelib.domain.imports import ObligationRow, new_obligation
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.services.imports import import_obligations
from chalicelib.services.repositories import ImportStorage
from chalicelib.services.unit_of_work import UnitOfWork

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
CUT = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
KEY = ("52345678", "CRE-1")


@pytest.fixture
def storage(units: Callable[[], UnitOfWork]) -> ImportStorage:
    return units().imports


def a_row(**changes: object) -> ObligationRow:
    row = ObligationRow(2, *KEY, "CREDITO", "0302024001876", "Crédito", "2026-12-15", 200_000,
                        100_000, 500_000, CUT, CUT.isoformat())
    return replace(row, **changes)  # type: ignore[arg-type]


def stored(storage: ImportStorage, **changes: object) -> int:
    """An obligation stored by a first import (batch "b-1"); its version."""
    storage.add_obligations([replace(new_obligation(a_row(), batch_id="b-1", now=NOW),
                                     **changes)])  # type: ignore[arg-type]
    current = storage.obligation(*KEY)
    assert current is not None
    return current.version


def version(storage: ImportStorage) -> int:
    current = storage.obligation(*KEY)
    assert current is not None
    return current.version


def test_new_items_are_written_at_version_1(storage: ImportStorage) -> None:
    assert stored(storage) == 1
    storage.add_members([Member("52345678", full_name="María")])
    assert storage.members(["52345678", "99999999"])["52345678"].version == 1
    assert storage.existing_members(["52345678", "99999999"]) == {"52345678"}


def test_every_update_stores_the_next_version(storage: ImportStorage) -> None:
    stored(storage)
    assert storage.stamp(KEY, batch_id="b-2", line=5) and version(storage) == 2
    assert storage.update_obligation(KEY, {"amount_due": 150_000, "description": None},
                                     portal_payments_read={}, kept={}, reopen=False,
                                     batch_id="b-2", line=5, now=NOW)
    current = storage.obligation(*KEY)
    assert current is not None and current.version == 3 and current.amount_due == 150_000
    assert current.description is None and (current.import_batch, current.import_line) == ("b-2", 5)
    assert storage.close(KEY, batch_id="b-3", now=NOW) and version(storage) == 4
    storage.add_members([Member("52345678", full_name="María")])
    member = Member("52345678", full_name="María José", email="mj@correo.example")
    assert storage.update_member_core_fields(member, NOW)
    again = storage.members(["52345678"])["52345678"]
    assert (again.full_name, again.email, again.version) == ("María José", "mj@correo.example", 2)


def test_writes_to_what_does_not_exist_fail(storage: ImportStorage) -> None:
    assert not storage.stamp(KEY, batch_id="b", line=2)
    assert not storage.close(KEY, batch_id="b", now=NOW)
    assert not storage.update_obligation(KEY, {}, portal_payments_read={}, kept={}, reopen=False,
                                         batch_id="b", line=2, now=NOW)
    assert not storage.update_member_core_fields(Member("52345678", full_name="X"), NOW)
    assert storage.obligation(*KEY) is None


def test_an_update_needs_the_portal_payments_it_read(storage: ImportStorage) -> None:
    payments = {"pay-1": {"amount": 5000, "at": CUT.isoformat(), "reference": "R"}}
    stored(storage, portal_payments=payments)
    assert not storage.update_obligation(KEY, {"amount_due": 1}, portal_payments_read={},
                                         kept={}, reopen=False, batch_id="b-2", line=2, now=NOW)
    assert storage.update_obligation(KEY, {"amount_due": 1}, portal_payments_read=payments,
                                     kept={}, reopen=False, batch_id="b-2", line=2, now=NOW)
    current = storage.obligation(*KEY)
    assert current is not None and current.portal_payments is None and current.amount_due == 1


def test_closing_refuses_a_held_or_just_listed_obligation(storage: ImportStorage) -> None:
    stored(storage, pending_payment_id="pay-9")
    assert not storage.close(KEY, batch_id="b-2", now=NOW)  # a payment holds it
    assert not storage.close(KEY, batch_id="b-1", now=NOW)  # listed by this very import
    assert list(storage.open_obligations_of_other_imports("b-2")) == [KEY]
    assert list(storage.open_obligations_of_other_imports("b-1")) == []


def test_the_lock_has_one_holder_until_its_lease_runs_out(storage: ImportStorage) -> None:
    lease = NOW + timedelta(minutes=20)
    common = {"kind": "obligations", "source": None}
    assert storage.acquire_lock("lock#t", holder="a", now=NOW, lease_until=lease, **common) is None
    held = storage.acquire_lock("lock#t", holder="b", now=NOW, lease_until=lease, **common)
    assert held is not None and (held.holder, held.lease_until) == ("a", lease)
    assert not storage.renew_lock("lock#t", holder="b", lease_until=lease)
    assert storage.renew_lock("lock#t", holder="a", lease_until=lease + timedelta(minutes=1))
    storage.release_lock("lock#t", holder="b")  # not b's: kept
    assert storage.acquire_lock("lock#t", holder="c", now=NOW, lease_until=lease, **common)
    later = lease + timedelta(minutes=2)
    assert storage.acquire_lock("lock#t", holder="c", now=later, lease_until=later, **common) is None
    storage.release_lock("lock#t", holder="c")
    assert storage.acquire_lock("lock#t", holder="d", now=NOW, lease_until=lease, **common) is None


def test_an_import_makes_a_payments_version_checked_write_fail(
        units: Callable[[], UnitOfWork]) -> None:
    """A payment read the obligation, an import changed it meanwhile: the payment's write (the
    unit of work's, conditioned on the version it read) is a Conflict, the import's change stays."""
    storage = units().imports
    storage.add_members([Member("52345678", full_name="María")])
    stored(storage)
    read_by_payment = storage.obligation(*KEY)
    assert read_by_payment is not None
    newer = CUT + timedelta(days=1)
    csv = ("document_number;obligation_id;type;product_number;description;due_date;amount_due;"
           "minimum_amount;maximum_amount;cutoff\n"
           f"52345678;CRE-1;CREDITO;0302024001876;Crédito;2026-12-15;170000;100000;500000;"
           f"{newer.isoformat()}\n")
    report = import_obligations(io.BytesIO(csv.encode()), now=NOW, full=False,
                                ctx=_context(units))
    assert report.updated == 1
    read_by_payment.amount_due -= 50_000
    read_by_payment.pending_payment_id = None
    with units() as uow:
        _stage_obligation(uow, read_by_payment)
        with pytest.raises(Conflict) as raised:
            uow.commit()
    assert raised.value.changed == {f"obligation:{KEY[1]}"}
    current = storage.obligation(*KEY)
    assert current is not None and current.amount_due == 170_000 and current.version == 2


def test_an_import_makes_a_members_version_checked_write_fail(
        units: Callable[[], UnitOfWork]) -> None:
    """A login read the member, an import changed the core fields meanwhile: the login's write is
    a Conflict (it re-reads), the import's change stays."""
    storage = units().imports
    storage.add_members([Member("52345678", full_name="María")])
    with units() as login:
        read = login.members.get("52345678")
        assert read is not None and read.version == 1
        assert storage.update_member_core_fields(
            Member("52345678", full_name="María José", status="INACTIVO"), NOW)
        read.failed_consecutive = 1
        login.members.update(read)
        with pytest.raises(Conflict) as raised:
            login.commit()
    assert raised.value.changed == {"member:52345678"}
    stored_member = storage.members(["52345678"])["52345678"]
    assert (stored_member.full_name, stored_member.status, stored_member.failed_consecutive,
            stored_member.version) == ("María José", "INACTIVO", 0, 2)


def test_confirming_a_payment_applied_in_core_happens_once(units: Callable[[], UnitOfWork]) -> None:
    uow = units()
    exported = CUT - timedelta(hours=1)
    _add_payment(uow, "pay-1", exported_at=exported)
    _add_payment(uow, "pay-late", exported_at=CUT + timedelta(hours=1))
    assert uow.imports.export_times(["pay-1", "pay-late", "pay-none"]) == {
        "pay-1": exported, "pay-late": CUT + timedelta(hours=1)}

    def entry(pid: str) -> AuditEntry:
        return AuditEntry(subject="52345678", event="payment_applied_in_core",
                          actor="system:import", at=NOW, suffix=pid[-6:].rjust(6, "x"),
                          payment_id=pid)

    assert uow.imports.confirm_applied_in_core("pay-1", cutoff=CUT, at=NOW, entry=entry("pay-1"))
    assert not uow.imports.confirm_applied_in_core("pay-1", cutoff=CUT, at=NOW,
                                                   entry=entry("pay-1b"))
    assert not uow.imports.confirm_applied_in_core("pay-late", cutoff=CUT, at=NOW,
                                                   entry=entry("pay-late"))
    assert [e.payment_id for e in uow.audit.of("52345678")] == ["pay-1"]


# --- helpers: what belongs to other areas' repositories, done here the plain way ---------------

def _context(units: Callable[[], UnitOfWork]) -> Context:
    return Context(get_settings(), units_of_work=units)


def _stage_obligation(uow: UnitOfWork, obligation: Obligation) -> None:
    """The payment engine's write of an obligation: a put over the version it was read at."""
    label = f"obligation:{obligation.obligation_id}"
    if isinstance(uow, DynamoUnitOfWork):
        from chalicelib.adapters.dynamo import models
        from chalicelib.adapters.dynamo.mapping import obligation_to_item, unchanged_since_read

        uow.tx.put(label, obligation_to_item(obligation),
                   unchanged_since_read(models.Obligation, obligation.version))
    else:
        key = (obligation.document_number, obligation.obligation_id)
        uow.stage(label, "obligations", key, obligation, obligation.version)  # type: ignore[attr-defined]


def _add_payment(uow: UnitOfWork, payment_id: str, *, exported_at: datetime) -> None:
    if isinstance(uow, DynamoUnitOfWork):
        from chalicelib.adapters.dynamo import models

        models.Payment(payment_id=payment_id, reference=f"REF-{payment_id}",
                       document_number="52345678", payer_name="María", status="APPROVED",
                       amount=50000, items=[], bank_code="1022", person_type="natural",
                       description="Pago", ip="190.1.1.1", gateway="fake", created_at=NOW,
                       updated_at=NOW, approved_at=NOW, status_history=[],
                       exported_at=exported_at, export_id="exp-1").save()
    else:
        from types import SimpleNamespace

        uow.store.tables["payments"][payment_id] = SimpleNamespace(  # type: ignore[attr-defined]
            payment_id=payment_id, exported_at=exported_at, core_applied_at=None)
