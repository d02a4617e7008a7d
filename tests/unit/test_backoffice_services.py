"""The back office's use cases on the fake unit of work (no moto): blocking a member, claiming
payments for an export, reminders sent at most once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters import export_files
from chalicelib.adapters.mailer import Email
from chalicelib.config import get_settings
from chalicelib.context import Context, Runtime
from chalicelib.domain.backoffice import COMPLETE, OPEN, Export
from chalicelib.domain.errors import Conflict
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import EXPORT_READY, Payment, PaymentItem, StatusChange
from chalicelib.domain.sessions import Session
from chalicelib.services import exports, reminders, staff
from tests.fakes import FakeStore, FakeUnitOfWork

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in Colombia
ANA = "1020304050"
SESSION = Session(session_hash="h" * 43, document_number=ANA, csrf_token="c", created_at=NOW,
                  last_seen_at=NOW, expires_at=NOW + timedelta(hours=1))


class Outbox:
    def __init__(self) -> None:
        self.sent: list[Email] = []
        self.failures = 0

    def send(self, email: Email) -> str:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("SES is down")
        self.sent.append(email)
        return f"m-{len(self.sent)}"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    monkeypatch.setattr(Runtime, "clock", staticmethod(lambda: NOW))
    store = FakeStore()
    store.tables["members"][ANA] = Member(document_number=ANA, full_name="Ana Pérez",
                                          email="ana@correo.example", version=3)
    return store


@pytest.fixture
def ctx(store: FakeStore) -> Context:
    context = Context(get_settings(), units_of_work=store.unit_of_work)
    context.mailer = Outbox()  # type: ignore[misc]
    return context


def payment(payment_id: str, *, status: str = "APPROVED", queued: bool = True,
            minutes: int = 0) -> Payment:
    at = NOW - timedelta(hours=3) + timedelta(minutes=minutes)
    return Payment(
        payment_id=payment_id, reference=f"SV{payment_id.upper():0>12}"[:14], document_number=ANA,
        payer_name="Ana Pérez", status=status, amount=150_000, bank_code="1022",
        person_type="natural", description="Crédito", ip="203.0.113.7", gateway="fake",
        created_at=at, updated_at=at, approved_at=at if status == "APPROVED" else None,
        items=[PaymentItem(obligation_id="CR-1", type="CREDITO", product_number="0045",
                           description="Crédito", amount=150_000)],
        status_history=[StatusChange(status="CREATED", at=at), StatusChange(status="PENDING", at=at)],
        export_pending=EXPORT_READY if queued else None, payer_email="ana@correo.example",
        poll_shard="0" if status == "PENDING" else None)


# --- blocking ----------------------------------------------------------------------------------------

def test_blocking_writes_the_member_and_its_audit_entry_together_and_ends_the_sessions(
        ctx: Context, store: FakeStore) -> None:
    store.tables["sessions"][SESSION.session_hash] = SESSION
    result = staff.set_blocked(ctx, ANA, blocked=True, reason="Suplantación", actor="staff:ana", ip=None)
    assert (result.changed, result.sessions_ended, result.member.version) == (True, 1, 4)
    stored = store.tables["members"][ANA]
    assert stored.portal_blocked is True and stored.updated_at == NOW and stored.version == 4
    (entry,) = store.tables["audit"].values()
    assert (entry.event, entry.actor, entry.reason, entry.details) == (
        "staff_member_blocked", "staff:ana", "Suplantación", {"changed": "True"})
    assert store.commits == 1 and store.tables["sessions"] == {}

    again = staff.set_blocked(ctx, ANA, blocked=False, reason="Verificado", actor="staff:ana", ip=None)
    assert (again.changed, again.sessions_ended) == (True, 0)
    assert store.tables["members"][ANA].portal_blocked is False


def test_a_member_changed_meanwhile_is_a_conflict_and_nothing_is_written(store: FakeStore) -> None:
    class LoginMeanwhile(FakeUnitOfWork):
        def commit(self) -> None:
            store.tables["members"][ANA].version += 1  # a sign-in wrote the member first
            super().commit()

    ctx = Context(get_settings(), units_of_work=lambda: LoginMeanwhile(store))
    store.tables["sessions"][SESSION.session_hash] = SESSION
    with pytest.raises(Conflict) as raised:
        staff.set_blocked(ctx, ANA, blocked=True, reason="Suplantación", actor="staff:ana", ip=None)
    assert raised.value.code == "concurrent_change"
    assert raised.value.message == "El asociado cambió mientras se procesaba; intente de nuevo."
    assert raised.value.changed == {f"member:{ANA}"}
    assert store.tables["members"][ANA].portal_blocked is False
    assert store.tables["audit"] == {} and list(store.tables["sessions"].values()) == [SESSION]


# --- exports -----------------------------------------------------------------------------------------

@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bytes]]:
    stored: dict[str, bytes] = {}

    def put(region: str, bucket: str, key: str, body: bytes, **options: object) -> None:
        stored[key] = body

    monkeypatch.setattr(export_files, "put", put)
    yield stored


def test_two_claims_of_one_payment_one_wins(ctx: Context, store: FakeStore) -> None:
    store.tables["payments"]["p1"] = payment("p1")
    first, second = ctx.unit_of_work(), ctx.unit_of_work()
    won = first.exports.claim("p1", export_id="A", now=NOW)
    lost = second.exports.claim("p1", export_id="B", now=NOW)
    assert won is not None and won.export_id == "A" and won.export_pending is None
    assert lost is None
    assert store.tables["payments"]["p1"].export_id == "A"


def test_interleaved_exports_never_share_a_payment(ctx: Context, store: FakeStore,
                                                   files: dict[str, bytes]) -> None:
    for n in range(4):
        store.tables["payments"][f"p{n}"] = payment(f"p{n}", minutes=n)
    store.tables["payments"]["rejected"] = payment("rejected", status="REJECTED", queued=False)
    other = ctx.unit_of_work()
    ids = list(other.exports.queued(page_size=100))
    assert ids == ["p0", "p1", "p2", "p3"]  # oldest approval first, only the queued
    assert other.exports.claim("p2", export_id="OTHER", now=NOW) is not None  # claimed meanwhile

    result = exports.export_approved(ctx, now=NOW, requested_by="staff:ana")
    assert result.payments == 3 and result.rows == 3 and result.total_amount == 450_000
    assert {p.export_id for p in store.tables["payments"].values() if p.payment_id != "rejected"} == {
        result.export_id, "OTHER"}
    assert files[result.key].decode().count("\r\n") == 4  # the header and three rows
    record = store.tables["exports"][result.export_id]
    assert (record.status, record.key, record.payments, record.lease_until) == (COMPLETE, result.key, 3, None)
    (audit,) = store.tables["audit"].values()
    assert audit.event == "payments_exported" and audit.details and audit.details["payments"] == "3"
    assert exports.export_approved(ctx, now=NOW, requested_by="staff:ana").payments == 0


def test_completing_an_export_twice_is_a_conflict(ctx: Context, store: FakeStore) -> None:
    export = Export(export_id="20261123-100000-abcdef", status=OPEN, created_at=NOW,
                    requested_by="t", lease_until=NOW + exports.LEASE)
    with ctx.unit_of_work() as uow:
        uow.exports.add(export)
        uow.commit()
    for attempt in range(2):
        done = replace(export)
        done.completed(key="k", rows=1, payments=1, total_amount=1, now=NOW)
        with ctx.unit_of_work() as uow:
            uow.exports.complete(done)
            if attempt:
                with pytest.raises(Conflict) as raised:
                    uow.commit()
                assert raised.value.changed == {f"export:{export.export_id}"}
            else:
                uow.commit()


def test_a_stale_export_is_leased_once(ctx: Context, store: FakeStore) -> None:
    export = Export(export_id="20261123-100000-abcdef", status=OPEN, created_at=NOW,
                    requested_by="t", lease_until=NOW - timedelta(minutes=1))
    store.tables["exports"][export.export_id] = export
    first, second = ctx.unit_of_work(), ctx.unit_of_work()
    assert first.exports.take_lease(replace(export), now=NOW, until=NOW + exports.LEASE)
    assert not second.exports.take_lease(replace(export), now=NOW, until=NOW + exports.LEASE)


# --- reminders ----------------------------------------------------------------------------------------

def due(obligation_id: str, day: str) -> Obligation:
    return Obligation(document_number=ANA, obligation_id=obligation_id, type="CREDITO",
                      product_number="004500001234", description=f"Cuota {obligation_id}",
                      due_date=day, amount_due=80_000, minimum_amount=80_000, maximum_amount=80_000,
                      cutoff=NOW)


def test_a_due_reminder_goes_once_and_a_failed_send_is_tried_again(ctx: Context, store: FakeStore) -> None:
    store.tables["obligations"][(ANA, "CR-1")] = due("CR-1", "2026-11-24")
    outbox: Outbox = ctx.mailer  # type: ignore[assignment]
    outbox.failures = 1
    failed = reminders.send_due_reminders(ctx)
    assert (failed.sent, failed.failed) == (0, 1) and store.tables["reminders"] == {}  # released

    first = reminders.send_due_reminders(ctx)
    again = reminders.send_due_reminders(ctx)
    assert (first.sent, again.sent, again.already_sent) == (1, 0, 1)
    assert [e.subject.split(" - ")[0] for e in outbox.sent] == ["Recordatorio: Cuota CR-1 vence mañana"]
    assert list(store.tables["reminders"]) == [f"due#{ANA}#CR-1#2026-11-24"]


def test_a_pending_reminder_goes_once(ctx: Context, store: FakeStore) -> None:
    store.tables["payments"]["p1"] = payment("p1", status="PENDING", queued=False)
    first = reminders.send_pending_reminders(ctx)
    again = reminders.send_pending_reminders(ctx)
    assert (first.sent, again.sent, again.already_sent) == (1, 0, 1)
    assert list(store.tables["reminders"]) == ["pending#p1"]


def test_opting_out_writes_the_member_with_its_audit_entry(ctx: Context, store: FakeStore) -> None:
    token = reminders.unsubscribe_token(ctx, ANA)
    member = reminders.set_opt_out(ctx, token, opt_out=True, ip="203.0.113.7")
    assert member.reminders_opt_out and member.version == 4
    assert store.tables["members"][ANA].reminders_opt_out_at == NOW
    assert [e.event for e in store.tables["audit"].values()] == ["reminders_opt_out"]
    store.tables["obligations"][(ANA, "CR-1")] = due("CR-1", "2026-11-24")
    assert reminders.send_due_reminders(ctx).sent == 0
