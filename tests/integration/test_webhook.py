"""Gateway notifications: verified, stored once, applied exactly once in any order or concurrency."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import pytest

from chalicelib.adapters.dynamo.models import AuditEvent, GatewayEvent, Payment
from chalicelib.adapters.gateways.base import GatewayError, GatewayTimeout, GatewayTransaction, InvalidEvent
from chalicelib.services import payments
from tests.conftest import concurrently, sent_emails
from tests.payment_support import checksum, get_obligation, get_payment, start

THREADS = 24


def audit_events(name: str) -> list[AuditEvent]:
    return [e for e in AuditEvent.query("1020304050") if e.event == name]


def assert_applied_once(payment_id: str) -> None:
    obligation = get_obligation("CR-0001")
    assert (obligation.amount_due, obligation.minimum_amount, obligation.maximum_amount) == (0, 0, 750_000)
    assert list(obligation.portal_payments.as_dict()) == [payment_id]
    assert obligation.portal_payments.as_dict()[payment_id]["amount"] == 150_000
    assert obligation.pending_payment_id is None and obligation.pending_reference is None
    assert len(audit_events("payment_approved")) == 1
    payment = get_payment(payment_id)
    assert payment.status == "APPROVED" and payment.approved_at is not None
    assert [h.status for h in payment.status_history] == ["CREATED", "PENDING", "APPROVED"]


def test_an_approval_is_processed_in_two_round_trips(ctx, pending, gateway, clock, dynamo_calls):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "APPROVED", at=clock.now)
    dynamo_calls.reset()
    assert payments.apply_gateway_event(ctx, {}, body) == "processed"
    assert dynamo_calls.operations == ["Query", "TransactWriteItems"]
    assert_applied_once(pending.id)
    stored = GatewayEvent.get(f"fake#{get_payment(pending.id).gateway_id}#APPROVED")
    assert stored.body == body.decode() and stored.outcome == "applied"
    assert stored.payment_id == pending.id


def test_concurrent_duplicate_approvals_apply_once(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "APPROVED", at=clock.now)
    results = concurrently(lambda _: payments.apply_gateway_event(ctx, {}, body), THREADS)
    assert sorted(results) == ["duplicate"] * (THREADS - 1) + ["processed"]
    assert_applied_once(pending.id)
    assert len(sent_emails()) == 1


def test_concurrent_distinct_approvals_apply_once(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    """Different deliveries (retries signed at other times) plus polls and return pages, all at once."""
    bodies = [gateway.event(pending.reference, "APPROVED", at=clock.now + timedelta(seconds=i))
              for i in range(THREADS)]
    gateway.settle(pending.reference, "APPROVED")

    def work(index: int) -> str:
        if index % 6 == 5:
            return payments.refresh_payment(ctx, pending.id).status
        return payments.apply_gateway_event(ctx, {}, bodies[index])

    results = concurrently(work, THREADS)
    webhook_results = [r for i, r in enumerate(results) if i % 6 != 5]
    assert set(webhook_results) <= {"processed", "duplicate", "ignored"}, results
    assert webhook_results.count("processed") <= 1  # or a return page applied it first
    assert {r for i, r in enumerate(results) if i % 6 == 5} == {"APPROVED"}
    assert_applied_once(pending.id)
    assert len(sent_emails()) == 1
    assert GatewayEvent.count() == 1  # one (gateway, transaction, status), however many deliveries


def test_a_late_stale_event_changes_nothing(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    approved = gateway.event(pending.reference, "APPROVED", at=clock.now + timedelta(seconds=30))
    stale_pending = gateway.event(pending.reference, "PENDING", at=clock.now)
    declined = gateway.event(pending.reference, "REJECTED", at=clock.now + timedelta(seconds=10))
    failed = gateway.event(pending.reference, "FAILED", at=clock.now + timedelta(seconds=20))
    assert payments.apply_gateway_event(ctx, {}, approved) == "processed"
    for body in (stale_pending, declined, failed):
        assert payments.apply_gateway_event(ctx, {}, body) == "ignored"
    assert_applied_once(pending.id)
    assert {e.outcome for e in GatewayEvent.scan()} == {"applied", "stale"}


def test_rejection_then_late_approval_is_not_applied(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    payments.apply_gateway_event(ctx, {}, gateway.event(pending.reference, "REJECTED", at=clock.now))
    assert get_obligation("CR-0001").pending_payment_id is None
    gateway.settle(pending.reference, "APPROVED")  # the bank confirms the debit after all
    late = gateway.event(pending.reference, "APPROVED", at=clock.now + timedelta(seconds=5))
    assert payments.apply_gateway_event(ctx, {}, late) == "ignored"
    payment = get_payment(pending.id)
    assert (payment.status, payment.review_reason) == ("REJECTED", "approved_after_final")
    assert get_obligation("CR-0001").amount_due == 150_000


def test_forged_signature_is_refused_and_changes_nothing(ctx, pending, gateway, clock, client):  # type: ignore[no-untyped-def]
    forged = gateway.event(pending.reference, "APPROVED", at=clock.now, tamper=True)
    with pytest.raises(InvalidEvent):
        payments.apply_gateway_event(ctx, {}, forged)
    response = client.http.post("/webhooks/pse", headers={"Content-Type": "application/json"},
                                body=forged)
    assert response.status_code == 401
    assert response.json_body["error"]["code"] == "invalid_signature"
    assert get_payment(pending.id).status == "PENDING"
    assert GatewayEvent.count() == 0


def test_replayed_event_is_a_duplicate(ctx, pending, gateway, clock, client):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "APPROVED", at=clock.now)
    headers = {"Content-Type": "application/json"}
    first = client.http.post("/webhooks/pse", headers=headers, body=body)
    again = client.http.post("/webhooks/pse", headers=headers, body=body)
    assert (first.status_code, first.json_body) == (200, {"result": "processed"})
    assert (again.status_code, again.json_body) == (200, {"result": "duplicate"})
    assert_applied_once(pending.id)


def test_stale_event_is_refused(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "APPROVED", at=clock.now)
    clock.advance(seconds=ctx.settings.webhook_max_age_seconds + 1)
    with pytest.raises(InvalidEvent, match="stale"):
        payments.apply_gateway_event(ctx, {}, body)
    future = gateway.event(pending.reference, "APPROVED", at=clock.now + timedelta(minutes=10))
    with pytest.raises(InvalidEvent):
        payments.apply_gateway_event(ctx, {}, future)
    assert get_payment(pending.id).status == "PENDING"


def test_amount_mismatch_is_flagged_and_not_applied(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "APPROVED", at=clock.now, amount=1_500)
    assert payments.apply_gateway_event(ctx, {}, body) == "ignored"
    payment = get_payment(pending.id)
    assert (payment.status, payment.review_flag, payment.review_reason) == (
        "PENDING", "REVIEW", "amount_mismatch")
    assert payment.next_poll_at is None  # staff reconcile it; the poller lets it go
    assert [p.payment_id for p in Payment.review.query("REVIEW")] == [pending.id]
    (flag,) = audit_events("payment_review")
    assert flag.reason == "amount_mismatch" and flag.details["reported_amount"] == "1500"
    obligation = get_obligation("CR-0001")
    assert obligation.amount_due == 150_000 and obligation.pending_payment_id == pending.id
    assert sent_emails() == []


def test_unknown_reference_is_stored_and_ignored(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    gateway.transactions["gw-x"] = GatewayTransaction(gateway_id="gw-x", reference="SVAAAAAAAAAAAA",
                                                      status="APPROVED", amount=5_000)
    body = gateway.event("SVAAAAAAAAAAAA", "APPROVED", at=clock.now)
    assert payments.apply_gateway_event(ctx, {}, body) == "ignored"
    assert payments.apply_gateway_event(ctx, {}, body) == "duplicate"
    assert GatewayEvent.get("fake#gw-x#APPROVED").outcome == "unknown_reference"


def test_expired_payment_approved_late_is_applied(ctx, make_member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_member()
    make_obligation()
    gateway.create_error = GatewayTimeout("sin respuesta")  # and the gateway never shows it...
    lost = start(ctx, key="lost")
    clock.advance(minutes=31)
    payments.reconcile_pending(ctx)
    assert get_payment(lost.id).status == "EXPIRED"
    assert get_obligation("CR-0001").pending_payment_id is None
    gateway.create_error = None
    retry = start(ctx, key="retry", items=[("CR-0001", 50_000)])  # the member pays again

    # ...until the bank confirms the first debit after all
    gateway.transactions["gw-late"] = GatewayTransaction(
        gateway_id="gw-late", reference=lost.reference, status="APPROVED", amount=150_000, cus="777")
    body = gateway.event(lost.reference, "APPROVED", at=clock.now)
    assert payments.apply_gateway_event(ctx, {}, body) == "processed"
    payment = get_payment(lost.id)
    assert (payment.status, payment.cus, payment.gateway_id) == ("APPROVED", "777", "gw-late")
    assert [h.status for h in payment.status_history] == ["CREATED", "EXPIRED", "APPROVED"]
    obligation = get_obligation("CR-0001")
    assert (obligation.amount_due, obligation.maximum_amount) == (0, 750_000)
    assert obligation.pending_payment_id == retry.id  # the new payment keeps its lock
    assert payments.apply_gateway_event(ctx, {}, body) == "duplicate"


def test_receipt_email_is_sent_once_with_the_receipt_fields(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "APPROVED", at=clock.now)
    payments.apply_gateway_event(ctx, {}, body)
    payments.apply_gateway_event(ctx, {}, gateway.event(pending.reference, "APPROVED",
                                                        at=clock.now + timedelta(seconds=1)))
    payments.reconcile_pending(ctx)
    (message,) = sent_emails()
    payment = get_payment(pending.id)
    assert message.destinations["ToAddresses"] == ["ana.perez@correo.example"]
    assert pending.reference in message.subject and "Aprobada" in message.subject
    for text in (pending.reference, payment.cus, "$ 150.000", "BANCO UNION COLOMBIANO", "900.123.456-7",
                 "•••• 4050", "190.25.1.2", "Crédito", "•••• 1234", "Crédito 1234"):
        assert text in message.body, text
    assert payment.receipt_emailed is True


def test_a_failed_email_never_blocks_and_the_poller_retries_it(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    ses = boto3.client("ses", region_name="us-east-1")
    ses.delete_identity(Identity="coopejemplo.example")  # SES now refuses the sender
    body = gateway.event(pending.reference, "APPROVED", at=clock.now)
    assert payments.apply_gateway_event(ctx, {}, body) == "processed"
    assert_applied_once(pending.id)
    payment = get_payment(pending.id)
    assert payment.receipt_emailed is False and payment.receipt_attempts == 1
    assert payment.next_poll_at == clock.now + timedelta(minutes=12)
    assert sent_emails() == []

    ses.verify_domain_identity(Domain="coopejemplo.example")
    payments.reconcile_pending(ctx)
    assert sent_emails() == []  # not due yet
    clock.advance(minutes=12)
    report = payments.reconcile_pending(ctx)
    assert report.emails_sent == 1 and len(sent_emails()) == 1
    payment = get_payment(pending.id)
    assert payment.receipt_emailed is True and payment.next_poll_at is None
    clock.advance(minutes=12)
    assert payments.reconcile_pending(ctx).examined == 0


# --- what is believed: the signed values, and for an approval the gateway's own answer -------------

def test_an_approval_is_confirmed_by_the_status_query_first(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "APPROVED", at=clock.now)
    gateway.calls.clear()
    assert payments.apply_gateway_event(ctx, {}, body) == "processed"
    assert gateway.calls == [("get_transaction", get_payment(pending.id).gateway_id)]
    gateway.calls.clear()
    assert payments.apply_gateway_event(ctx, {}, body) == "duplicate"
    assert gateway.calls == []  # already approved: nothing left to confirm


def test_a_decline_of_the_stored_transaction_needs_no_query(ctx, pending, gateway, clock):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "REJECTED", at=clock.now)
    gateway.calls.clear()
    assert payments.apply_gateway_event(ctx, {}, body) == "processed"
    assert gateway.calls == [] and get_payment(pending.id).status == "REJECTED"


def test_an_unreachable_gateway_leaves_an_open_payment_to_the_poller(ctx, pending, gateway, clock, client):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "APPROVED", at=clock.now)
    gateway.query_error = GatewayError("sin conexión", code="gateway_unavailable")
    response = client.http.post("/webhooks/pse", headers={"Content-Type": "application/json"}, body=body)
    assert (response.status_code, response.json_body) == (200, {"result": "deferred"})
    assert get_payment(pending.id).status == "PENDING" and GatewayEvent.count() == 0
    assert get_obligation("CR-0001").amount_due == 150_000
    gateway.query_error = None
    clock.advance(minutes=8)
    assert payments.reconcile_pending(ctx).applied == 1  # the poller asks and applies
    assert_applied_once(pending.id)


def test_an_unconfirmed_late_approval_is_redelivered_not_dropped(ctx, pending, gateway, clock, client):  # type: ignore[no-untyped-def]
    """Nobody polls an ended payment: the gateway must deliver it again (503), nothing is stored."""
    payments.apply_gateway_event(ctx, {}, gateway.event(pending.reference, "REJECTED", at=clock.now))
    late = gateway.event(pending.reference, "APPROVED", at=clock.now)  # the gateway still says REJECTED
    response = client.http.post("/webhooks/pse", headers={"Content-Type": "application/json"}, body=late)
    assert response.status_code == 503 and response.json_body["error"]["code"] == "gateway_unavailable"
    payment = get_payment(pending.id)
    assert (payment.status, payment.review_flag) == ("REJECTED", None)
    assert {e.event_id.rsplit("#", 1)[1] for e in GatewayEvent.scan()} == {"REJECTED"}


def test_an_unsigned_reference_only_finds_the_payment(ctx, member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    """A genuine decline of payment A rewritten to name payment B: B's stored transaction id is
    not the signed one, so the gateway's answer says whose it is; B is neither declined nor flagged."""
    make_obligation()
    make_obligation("AP-0001", type="APORTES", amount_due=150_000, minimum_amount=150_000,
                    maximum_amount=150_000)
    first = start(ctx)
    second = start(ctx, items=[("AP-0001", 150_000)], key="key-2")
    body = json.loads(gateway.event(first.reference, "REJECTED", at=clock.now))
    body["transaction"]["reference"] = second.reference
    signed = json.dumps({**body, "checksum": checksum(body["transaction"], body["timestamp"])}).encode()
    assert payments.apply_gateway_event(ctx, {}, signed) == "processed"
    assert get_payment(first.id).status == "REJECTED"
    other = get_payment(second.id)
    assert (other.status, other.review_flag) == ("PENDING", None)


def test_a_created_payment_without_gateway_id_is_bound_by_the_gateways_answer(  # type: ignore[no-untyped-def]
        ctx, member, make_obligation, gateway, clock):
    make_obligation()
    gateway.create_error, gateway.create_error_after_recording = GatewayTimeout("tarde"), True
    lost = start(ctx)
    assert get_payment(lost.id).gateway_id is None
    body = gateway.event(lost.reference, "APPROVED", at=clock.now)
    assert payments.apply_gateway_event(ctx, {}, body) == "processed"
    payment = get_payment(lost.id)
    assert payment.status == "APPROVED"
    assert payment.gateway_id == gateway.by_reference(lost.reference).gateway_id


# --- the HTTP endpoint: never a 500 for hostile input -----------------------------------------------

@pytest.mark.parametrize("body,status", [
    (b"", 400), (b"not json", 400), (b"[1, 2]", 400), (b"\xff\xfe\x00", 400), (b"null", 400),
    (b'{"transaction": {}}', 401), (b'{"timestamp": "x", "checksum": 5, "transaction": []}', 401),
    (b'{"event": "transaction.updated", "data": {"transaction": {"id": 1}}}', 401),
    (json.dumps({"x": "y" * 70_000}).encode(), 400),
    (b"[" * 5000 + b"]" * 5000, 400), (b'{"a": ' * 5000 + b"1" + b"}" * 5000, 400),
])
def test_hostile_bodies_get_4xx(ctx, gateway, client, body, status):  # type: ignore[no-untyped-def]
    response = client.http.post("/webhooks/pse", headers={"Content-Type": "application/json"}, body=body)
    assert response.status_code == status, response.body
    assert response.json_body["error"]["code"] in ("invalid_event", "invalid_signature")


def test_other_content_types_are_refused_not_crashed(ctx, gateway, client):  # type: ignore[no-untyped-def]
    response = client.http.post("/webhooks/pse", headers={"Content-Type": "text/xml"}, body=b"<x/>")
    assert response.status_code == 415


def test_webhook_needs_no_session_nor_csrf(ctx, pending, gateway, clock, client):  # type: ignore[no-untyped-def]
    body = gateway.event(pending.reference, "REJECTED", at=clock.now)
    response = client.http.post("/webhooks/pse", headers={"Content-Type": "application/json; charset=utf-8"},
                                body=body)
    assert (response.status_code, response.json_body) == (200, {"result": "processed"})
    assert get_payment(pending.id).status == "REJECTED"
