"""The payment engine through the real Wompi adapter against the local PSE sandbox (loopback HTTP)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from chalicelib.services import payments
from tests.conftest import sent_emails
from tests.payment_support import get_obligation, get_payment, start

sandbox = pytest.importorskip("devtools.pse_sandbox")
server = pytest.importorskip("devtools.pse_sandbox.server")


@pytest.fixture
def wompi(ctx, clock, monkeypatch):  # type: ignore[no-untyped-def]
    from chalicelib.adapters.gateways import registry
    from chalicelib.adapters.gateways.wompi import WompiGateway

    handle = sandbox.start_sandbox(port=0, events_url=None, clock=lambda: clock.now.timestamp())
    adapter = WompiGateway(handle.api_url, server.DEFAULT_PUBLIC_KEY, server.DEFAULT_PRIVATE_KEY,
                           server.DEFAULT_EVENTS_SECRET, server.DEFAULT_INTEGRITY_SECRET,
                           timeout_seconds=5, sleep=lambda _: None, poll_interval_seconds=0)
    monkeypatch.setattr(registry, "gateway_for", lambda *_args, **_kwargs: adapter)
    try:
        yield handle
    finally:
        handle.stop()


def outcome(handle, reference: str, status: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The sandbox's control: the bank answers, the event is held back and returned to us."""
    request = urllib.request.Request(
        f"{handle.url}/_sandbox/outcome", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"reference": reference, "status": status, "notify": "none"}).encode())
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)["event"]


def test_pay_and_approve_through_wompi(ctx, wompi, make_member, make_obligation, clock, client):  # type: ignore[no-untyped-def]
    make_member()
    make_obligation()
    banks = payments.list_banks(ctx)
    assert banks[0].code != "0" and {b.code for b in banks} >= {"1", "2"}
    started = start(ctx, bank_code="1")
    assert started.status == "PENDING"
    assert started.redirect_url and started.redirect_url.startswith(wompi.url)
    payment = get_payment(started.id)
    assert payment.gateway_id and payment.gateway == "wompi"

    event = outcome(wompi, started.reference, "APPROVED")
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "X-Event-Checksum": event["signature"]["checksum"]}
    first = client.http.post("/webhooks/pse", headers=headers, body=body)
    again = client.http.post("/webhooks/pse", headers=headers, body=body)
    assert (first.status_code, first.json_body) == (200, {"result": "processed"})
    assert again.json_body == {"result": "duplicate"}
    assert get_payment(started.id).status == "APPROVED"
    assert get_obligation("CR-0001").amount_due == 0
    assert len(sent_emails()) == 1

    event["data"]["transaction"]["amount_in_cents"] += 100  # tampered: the checksum no longer holds
    forged = client.http.post("/webhooks/pse", headers={"Content-Type": "application/json"},
                              body=json.dumps(event).encode())
    assert forged.status_code == 401


def test_declined_is_found_by_the_poller_through_wompi(ctx, wompi, make_member, make_obligation, clock):  # type: ignore[no-untyped-def]
    make_member()
    make_obligation()
    started = start(ctx, bank_code="2")
    outcome(wompi, started.reference, "DECLINED")  # no notification: only the query tells
    clock.advance(minutes=7)
    report = payments.reconcile_pending(ctx)
    assert report.applied == 1
    payment = get_payment(started.id)
    assert payment.status == "REJECTED" and payment.cus
    assert get_obligation("CR-0001").pending_payment_id is None
    assert payments.refresh_payment(ctx, started.id).status_label == "Rechazada"


def test_placeholder_bank_never_reaches_wompi(ctx, wompi, make_member, make_obligation):  # type: ignore[no-untyped-def]
    from chalicelib.domain.payments import InvalidBank

    make_member()
    make_obligation()
    with pytest.raises(InvalidBank):
        start(ctx, bank_code="0")
    assert get_obligation("CR-0001").pending_payment_id is None
