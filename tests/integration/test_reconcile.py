"""The scheduled reconciliation (PSE's sonda): timing, horizon, expiry, adoption, index-only reads."""

from __future__ import annotations

from datetime import timedelta

from chalicelib.adapters.dynamo.models import Payment
from chalicelib.adapters.gateways.base import GatewayError, GatewayTimeout
from chalicelib.services import payments
from tests.conftest import sent_emails
from tests.payment_support import get_obligation, get_payment, start


def queries(gateway) -> int:  # type: ignore[no-untyped-def]
    return gateway.count("get_transaction") + gateway.count("find_by_reference")


def test_first_query_at_seven_minutes_then_every_twelve(ctx, member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_obligation()
    started = start(ctx)
    clock.advance(minutes=6, seconds=59)
    assert payments.reconcile_pending(ctx).examined == 0
    assert queries(gateway) == 0
    clock.advance(seconds=1)  # 7:00
    report = payments.reconcile_pending(ctx)
    assert (report.examined, report.still_pending) == (1, 1) and queries(gateway) == 1
    clock.advance(minutes=11, seconds=59)
    payments.reconcile_pending(ctx)
    assert queries(gateway) == 1
    clock.advance(seconds=1)  # 19:00
    payments.reconcile_pending(ctx)
    assert queries(gateway) == 2
    assert get_payment(started.id).next_poll_at == clock.now + timedelta(minutes=12)


def test_the_poller_applies_a_final_status(ctx, member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_obligation()
    started = start(ctx)
    gateway.settle(started.reference, "REJECTED", status_message="Transacción rechazada por el banco")
    clock.advance(minutes=7)
    report = payments.reconcile_pending(ctx)
    assert report.applied == 1
    payment = get_payment(started.id)
    assert payment.status == "REJECTED" and payment.status_message == "Transacción rechazada por el banco"
    assert payment.next_poll_at is None  # out of the index
    assert get_obligation("CR-0001").pending_payment_id is None
    assert len(sent_emails()) == 1 and "Rechazada" in sent_emails()[0].subject
    clock.advance(minutes=12)
    assert payments.reconcile_pending(ctx).examined == 0


def test_past_the_horizon_a_pending_payment_is_flagged_for_staff(ctx, member, make_obligation, gateway,  # type: ignore[no-untyped-def]
                                                                 clock):
    make_obligation()
    started = start(ctx)
    clock.advance(minutes=7)
    while clock.now < get_payment(started.id).created_at + timedelta(hours=24):
        payments.reconcile_pending(ctx)
        clock.advance(minutes=12)
    report = payments.reconcile_pending(ctx)
    assert report.flagged == 1
    payment = get_payment(started.id)
    assert (payment.status, payment.review_flag, payment.review_reason) == (
        "PENDING", "REVIEW", "horizon_exceeded")
    assert payment.next_poll_at is None
    assert [p.payment_id for p in Payment.review.query("REVIEW")] == [started.id]
    asked = queries(gateway)
    assert 115 <= asked <= 122  # 24 h of queries 12 minutes apart
    clock.advance(minutes=12)
    payments.reconcile_pending(ctx)
    assert queries(gateway) == asked


def test_a_created_payment_that_never_reached_the_gateway_expires(ctx, member, make_obligation,  # type: ignore[no-untyped-def]
                                                                   gateway, clock):
    make_obligation()
    gateway.create_error = GatewayTimeout("sin respuesta")
    started = start(ctx)
    clock.advance(minutes=7)
    payments.reconcile_pending(ctx)
    assert get_payment(started.id).status == "CREATED"
    assert get_obligation("CR-0001").pending_payment_id == started.id
    clock.advance(minutes=23)  # 30 minutes after creation
    report = payments.reconcile_pending(ctx)
    assert report.expired == 1
    payment = get_payment(started.id)
    assert payment.status == "EXPIRED" and payment.next_poll_at is None
    assert get_obligation("CR-0001").pending_payment_id is None
    assert gateway.count("find_by_reference") == 2 and gateway.count("create_transaction") == 1
    assert sent_emails() == []  # it never reached a bank: no receipt


def test_a_transaction_found_after_a_timeout_is_adopted(ctx, member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_obligation()
    gateway.create_error = GatewayTimeout("sin respuesta")
    gateway.create_error_after_recording = True
    started = start(ctx)
    gateway.settle(started.reference, "APPROVED")
    clock.advance(minutes=7)
    report = payments.reconcile_pending(ctx)
    assert report.applied == 1
    payment = get_payment(started.id)
    assert payment.status == "APPROVED"
    assert payment.gateway_id == gateway.by_reference(started.reference).gateway_id
    assert [h.status for h in payment.status_history] == ["CREATED", "APPROVED"]
    assert get_obligation("CR-0001").amount_due == 0


def test_gateway_errors_reschedule(ctx, member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_obligation()
    started = start(ctx)
    gateway.query_error = GatewayError("caída", code="gateway_unavailable")
    clock.advance(minutes=7)
    report = payments.reconcile_pending(ctx)
    assert report.errors == 1
    assert get_payment(started.id).next_poll_at == clock.now + timedelta(minutes=12)


def test_uses_the_index_not_a_scan_one_query_per_page(ctx, member, make_obligation, gateway, clock,  # type: ignore[no-untyped-def]
                                                      dynamo_calls, monkeypatch):
    for n in range(5):
        make_obligation(f"CR-{n}")
        start(ctx, key=f"k{n}", items=[(f"CR-{n}", 60_000)])
    first = next(iter(gateway.transactions.values()))
    gateway.settle(first.reference, "APPROVED")
    monkeypatch.setattr("chalicelib.services.payments.reconcile.POLL_PAGE_SIZE", 2)
    clock.advance(minutes=7)
    dynamo_calls.reset()
    report = payments.reconcile_pending(ctx)
    assert report.examined == 5 and report.applied == 1 and report.still_pending == 4
    assert "Scan" not in dynamo_calls.operations
    assert dynamo_calls.operations.count("Query") == 3  # 5 due payments, pages of 2
    writes = len(dynamo_calls) - 3
    assert writes == 5  # one write per due payment (a transition or a rescheduling)


def test_the_schedule_handler_runs_the_reconciliation(ctx, member, make_obligation, gateway, clock,  # type: ignore[no-untyped-def]
                                                     client):
    make_obligation()
    started = start(ctx)
    gateway.settle(started.reference, "APPROVED")
    clock.advance(minutes=7)
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event",
                                            detail={}, resources=[], region="us-east-1")
    result = client.lambda_.invoke("reconcile_pending", event)
    assert result.payload["applied"] == 1
    assert get_payment(started.id).status == "APPROVED"
