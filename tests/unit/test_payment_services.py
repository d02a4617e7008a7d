"""The payment engine's use cases on the fake unit of work (no moto, no AWS): start, approval,
rejection, replays, races, review, and the receipt sent from the committed events."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.gateways.base import REVIEW_PARTIAL_APPROVAL
from chalicelib.adapters.mailer import Email
from chalicelib.config import Settings
from chalicelib.context import Context
from chalicelib.domain.events import PaymentApproved, PaymentFlagged, PaymentRejected
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import Payment
from chalicelib.services import payments
from chalicelib.services.payments.settle import settle
from tests.conftest import FakeClock
from tests.fakes import FakeStore
from tests.payment_support import FakeGateway

ANA = "1020304050"
KEY = (ANA, "CR-0001")


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[Email] = []
        self.failures = 0  # how many sends fail before one succeeds

    def send(self, email: Email) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("SES is down")
        self.sent.append(email)


class Engine:
    """A context on a fake store, a fake gateway and a fake mailer."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.store = FakeStore()
        settings = replace(Settings.from_env({}), gateway="fake")
        self.ctx = Context(settings, units_of_work=self.store.unit_of_work)
        self.gateway = FakeGateway()
        self.mailer = FakeMailer()
        vars(self.ctx).update(gateway=self.gateway, mailer=self.mailer)
        self.store.tables["members"][ANA] = Member(
            document_number=ANA, full_name="Ana María Pérez", email="ana.perez@correo.example",
            phone="3001234567")
        self.store.tables["obligations"][KEY] = Obligation(
            document_number=ANA, obligation_id="CR-0001", type="CREDITO",
            product_number="004500001234", description="Crédito de libre inversión",
            due_date="2026-11-30", amount_due=150_000, minimum_amount=50_000,
            maximum_amount=900_000, cutoff=datetime(2026, 11, 22, 5, 0, tzinfo=UTC))

    def start(self, key: str = "key-1", amount: int = 150_000) -> payments.StartedPayment:
        return payments.start_payment(self.ctx, document_number=ANA, items=[("CR-0001", amount)],
                                      bank_code="1022", person_type="natural",
                                      idempotency_key=key, ip="190.25.1.2")

    def event(self, reference: str, status: str, **kwargs: Any) -> str:
        body = self.gateway.event(reference, status, at=self.clock.now, **kwargs)
        return payments.apply_gateway_event(self.ctx, {}, body)

    def payment(self, payment_id: str) -> Payment:
        stored: Payment = self.store.read("payments", payment_id)
        return stored

    def obligation(self) -> Obligation:
        stored: Obligation = self.store.read("obligations", KEY)
        return stored

    def audit(self) -> list[str]:
        return [entry.event for entry in sorted(self.store.tables["audit"].values(),
                                                key=lambda e: e.key)]


@pytest.fixture
def engine(clock: FakeClock) -> Engine:
    return Engine(clock)


@pytest.fixture
def pending(engine: Engine) -> payments.StartedPayment:
    started = engine.start()
    engine.store.events.clear()
    return started


def balances(obligation: Obligation) -> tuple[int, int, int]:
    return obligation.amount_due, obligation.minimum_amount, obligation.maximum_amount


def test_start_saves_locks_and_sends_the_member_to_the_bank(engine: Engine) -> None:
    started = engine.start()
    assert started.status == "PENDING" and started.redirect_url
    payment = engine.payment(started.id)
    assert [h.status for h in payment.status_history] == ["CREATED", "PENDING"]
    assert payment.version == 2 and payment.gateway == "fake" and payment.next_poll_at is not None
    obligation = engine.obligation()
    assert obligation.pending_payment_id == started.id and obligation.version == 1
    assert payment.items[0].obligation_version == 1  # the version its lock wrote
    assert engine.store.tables["members"][ANA].preferred_bank_code == "1022"
    assert sorted(engine.audit()) == ["payment_created", "payment_pending"]
    assert engine.store.events == []  # nothing ended: nothing to handle
    assert engine.start().id == started.id  # the same Idempotency-Key, the same payment
    assert engine.gateway.count("create_transaction") == 1


def test_an_approval_applies_once_and_records_its_event(engine: Engine,
                                                        pending: payments.StartedPayment) -> None:
    assert engine.event(pending.reference, "APPROVED") == "processed"
    obligation = engine.obligation()
    assert balances(obligation) == (0, 0, 750_000)
    assert obligation.pending_payment_id is None and obligation.pending_reference is None
    assert list(obligation.portal_payments or {}) == [pending.id]
    payment = engine.payment(pending.id)
    assert payment.status == "APPROVED" and payment.export_pending == "READY"
    assert [type(e) for e in engine.store.events] == [PaymentApproved]
    assert engine.event(pending.reference, "APPROVED") == "duplicate"  # the same notification
    assert balances(engine.obligation()) == (0, 0, 750_000)
    assert engine.audit().count("payment_approved") == 1


def test_a_rejection_releases_the_lock_and_keeps_the_balance(engine: Engine,
                                                             pending: payments.StartedPayment) -> None:
    assert engine.event(pending.reference, "REJECTED") == "processed"
    obligation = engine.obligation()
    assert balances(obligation) == (150_000, 50_000, 900_000) and obligation.pending_payment_id is None
    assert engine.payment(pending.id).status == "REJECTED"
    (event,) = engine.store.events
    assert isinstance(event, PaymentRejected) and event.status == "REJECTED"
    assert engine.event(pending.reference, "APPROVED") != "processed"  # a final status stays


def test_a_lost_payment_race_rereads_and_applies_once(engine: Engine,
                                                      pending: payments.StartedPayment) -> None:
    stale = engine.payment(pending.id)
    transaction = engine.gateway.settle(pending.reference, "APPROVED")
    payments.refresh_payment(engine.ctx, pending.id)  # the return page applied it meanwhile
    outcome, payment = settle(engine.ctx, stale, target="APPROVED", transaction=transaction,
                              actor="gateway")
    assert (outcome, payment.status) == ("unchanged", "APPROVED")
    assert balances(engine.obligation()) == (0, 0, 750_000)
    assert engine.audit().count("payment_approved") == 1


def test_an_obligation_changed_meanwhile_is_read_again(engine: Engine,
                                                       pending: payments.StartedPayment) -> None:
    changed = engine.obligation()
    changed.maximum_amount, changed.version = 800_000, changed.version + 1  # another writer
    engine.store.tables["obligations"][KEY] = changed
    assert engine.event(pending.reference, "APPROVED") == "processed"
    obligation = engine.obligation()
    assert balances(obligation) == (0, 0, 650_000)  # applied over what it is now
    assert obligation.pending_payment_id is None and obligation.version == changed.version + 1


def test_an_amount_mismatch_is_flagged_and_staff_reject_it(engine: Engine,
                                                           pending: payments.StartedPayment) -> None:
    engine.gateway.settle(pending.reference, "PENDING", amount=1_000)
    payments.refresh_payment(engine.ctx, pending.id)
    payment = engine.payment(pending.id)
    assert (payment.review_flag, payment.review_reason) == ("REVIEW", "amount_mismatch")
    assert payment.next_poll_at is None and engine.obligation().pending_payment_id == pending.id
    assert [type(e) for e in engine.store.events] == [PaymentFlagged]
    resolution = payments.resolve_review(engine.ctx, pending.id, action="reject", reason="no pagó",
                                         actor="staff:eva", ip="10.0.0.1")
    assert (resolution.outcome, resolution.payment.status) == ("rejected", "REJECTED")
    payment = engine.payment(pending.id)
    assert payment.review_flag is None and payment.review_resolved_by == "staff:eva"
    assert engine.obligation().pending_payment_id is None
    assert {"payment_review", "payment_rejected"} <= set(engine.audit())


def test_the_products_opening_date_reaches_the_gateway(engine: Engine) -> None:
    """PSE's anti-fraud ``reference_two``: the opening date the core system gave the product."""
    engine.store.tables["obligations"][KEY].opened_on = "2019-03-14"
    engine.start()
    assert engine.gateway.validated[-1].product_opening_date == date(2019, 3, 14)
    payment = next(iter(engine.store.tables["payments"].values()))
    assert payment.items[0].opened_on == "2019-03-14"


def test_a_partial_approval_is_flagged_for_review_never_applied(
        engine: Engine, pending: payments.StartedPayment) -> None:
    """PlacetoPay's APPROVED_PARTIAL: the adapter says PENDING with a review reason."""
    engine.gateway.settle(pending.reference, "PENDING", review_reason=REVIEW_PARTIAL_APPROVAL)
    engine.clock.advance(minutes=7)
    payments.reconcile_pending(engine.ctx)
    payment = engine.payment(pending.id)
    assert (payment.status, payment.review_flag, payment.review_reason) == (
        "PENDING", "REVIEW", "partial_approval")
    assert balances(engine.obligation()) == (150_000, 50_000, 900_000)
    assert [type(e) for e in engine.store.events] == [PaymentFlagged]


def test_staff_keep_pending_puts_it_back_in_the_poller(engine: Engine,
                                                       pending: payments.StartedPayment) -> None:
    engine.gateway.settle(pending.reference, "PENDING", amount=1_000)
    payments.refresh_payment(engine.ctx, pending.id)
    payments.resolve_review(engine.ctx, pending.id, action="keep_pending", reason="esperar",
                            actor="staff:eva", ip=None)
    payment = engine.payment(pending.id)
    assert payment.review_flag is None and payment.next_poll_at == engine.clock.now
    assert payment.poll_horizon_at == engine.clock.now + timedelta(hours=24)


def test_the_poller_applies_what_the_gateway_says(engine: Engine,
                                                  pending: payments.StartedPayment) -> None:
    engine.gateway.settle(pending.reference, "APPROVED")
    engine.clock.advance(minutes=7)
    report = payments.reconcile_pending(engine.ctx)
    assert (report.examined, report.applied) == (1, 1)
    assert engine.payment(pending.id).status == "APPROVED"
    assert [type(e) for e in engine.store.events] == [PaymentApproved]


def test_a_gateway_event_sends_nothing_the_committed_events_send_the_receipt_once(
        engine: Engine, pending: payments.StartedPayment, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str] = []
    from chalicelib import templating
    from chalicelib.services import receipt_pdf

    real_render, real_pdf = templating.render, receipt_pdf.render
    monkeypatch.setattr(templating, "render",
                        lambda *a, **kw: rendered.append(a[0]) or real_render(*a, **kw))
    monkeypatch.setattr(receipt_pdf, "render",
                        lambda *a, **kw: rendered.append("pdf") or real_pdf(*a, **kw))
    engine.mailer.failures = 1  # the first send fails

    assert engine.event(pending.reference, "APPROVED") == "processed"
    assert engine.event(pending.reference, "APPROVED") == "duplicate"
    assert rendered == [] and engine.mailer.sent == []  # no template, no PDF, no SES

    committed = list(engine.store.events)
    assert [type(e) for e in committed] == [PaymentApproved]
    payments.handle_payment_events(engine.ctx, committed)  # fails: un-claimed, counted
    payment = engine.payment(pending.id)
    assert (payment.receipt_emailed, payment.receipt_attempts) == (False, 1)
    assert payment.next_poll_at == engine.clock.now + timedelta(minutes=12)
    payments.handle_payment_events(engine.ctx, committed + committed)  # redelivered, twice
    assert [m.to for m in engine.mailer.sent] == ["ana.perez@correo.example"]
    assert "pdf" in rendered and pending.reference in engine.mailer.sent[0].subject
    payment = engine.payment(pending.id)
    assert payment.receipt_emailed is True and payment.next_poll_at is None
    engine.clock.advance(minutes=12)
    assert payments.reconcile_pending(engine.ctx).examined == 0
    assert len(engine.mailer.sent) == 1


def test_the_poller_sends_a_receipt_the_handler_never_sent(engine: Engine,
                                                           pending: payments.StartedPayment) -> None:
    engine.event(pending.reference, "REJECTED")  # reached the bank: its receipt is owed
    engine.clock.advance(minutes=12)
    report = payments.reconcile_pending(engine.ctx)
    assert report.emails_sent == 1 and len(engine.mailer.sent) == 1
    assert payments.send_receipt(engine.ctx, pending.id) is False  # sent already: never twice
    assert len(engine.mailer.sent) == 1


def test_a_payment_of_another_gateway_is_asked_there(engine: Engine, pending: payments.StartedPayment,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage switched gateways after the payment started: it is still reconciled where it began."""
    from chalicelib.adapters.gateways import registry

    previous = FakeGateway()
    previous.transactions = dict(engine.gateway.transactions)
    previous.settle(pending.reference, "APPROVED")
    monkeypatch.setitem(registry.FACTORIES, "anterior", lambda _settings: previous)
    moved = copy.deepcopy(engine.payment(pending.id))
    moved.gateway = "anterior"
    engine.store.tables["payments"][pending.id] = moved
    assert payments.refresh_payment(engine.ctx, pending.id).status == "APPROVED"
    assert previous.count("get_transaction") == 1 and engine.gateway.count("get_transaction") == 0
    moved = engine.payment(pending.id)
    moved.gateway = "desconocida"
    engine.store.tables["payments"][pending.id] = moved
    engine.clock.advance(minutes=30)
    with pytest.raises(Exception, match="desconocida"):
        payments.staff_requery(engine.ctx, pending.id, actor="staff:eva", ip=None)
