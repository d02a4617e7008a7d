"""A payment through the JSON API, the real PlacetoPay adapter and the sandbox over loopback HTTP:
no bank list (the checkout page chooses the bank), no documents to accept, the payer's IP and user
agent in the session, and the one notification landing on ``/webhooks/placetopay``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters.gateways.placetopay import PlacetoPayGateway
from devtools.pse_sandbox import SandboxHandle, start_sandbox
from devtools.pse_sandbox.placetopay import DEFAULT_LOGIN, DEFAULT_SECRET_KEY
from tests.integration.test_payments_api import JSON, PASSWORD, sign_in
from tests.integration.test_wompi_sandbox import Receiver, call
from tests.payment_support import get_obligation, get_payment

UA = "Mozilla/5.0 (X11; Linux x86_64) Pruebas/1.0"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def placetopay(aws, clock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
               ) -> Iterator[SandboxHandle]:
    """``GATEWAY=placetopay`` with the real adapter against the sandbox (both on the test's clock)."""
    from chalicelib.adapters.gateways import registry

    handle = start_sandbox(port=0, events_url=None, clock=lambda: clock.now.timestamp(),
                           placetopay_signature="sha256")
    adapter = PlacetoPayGateway(handle.url, DEFAULT_LOGIN, DEFAULT_SECRET_KEY,
                                notification_url=receiver.url, timeout_seconds=5,
                                clock=lambda: clock.now)
    monkeypatch.setenv("GATEWAY", "placetopay")
    monkeypatch.setattr(registry, "gateway_for", lambda *_args, **_kwargs: adapter)
    try:
        yield handle
    finally:
        handle.stop()


def test_a_placetopay_payment_from_the_api_to_its_webhook(
        client, make_member, make_obligation, placetopay: SandboxHandle, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    make_member(password=PASSWORD)
    make_obligation()
    member = sign_in(client, "1020304050")
    assert member.get("/api/v1/banks").json_body == {"banks": [], "chosen_by_gateway": True}
    assert member.get("/api/v1/payment-terms").json_body == {"gateway": "placetopay", "documents": []}

    headers = {**JSON, "Cookie": member.cookie, "X-CSRF-Token": member.csrf,
               "Idempotency-Key": "ptp-1", "User-Agent": UA}
    body = {"items": [{"obligation_id": "CR-0001", "amount": 150_000}], "person_type": "natural",
            "accepted_documents": []}
    created = client.http.post("/api/v1/payments", headers=headers, body=json.dumps(body).encode())
    assert created.status_code == 201, created.body
    started = created.json_body["payment"]
    payment = get_payment(started["id"])
    assert payment.gateway == "placetopay" and payment.bank_code == ""
    assert started["redirect_url"] == f"{placetopay.url}/placetopay/session/{payment.gateway_id}"
    session = placetopay.app.placetopay.sessions[int(payment.gateway_id)].body
    assert (session["ipAddress"], session["userAgent"]) == ("127.0.0.1", UA)
    assert session["payment"]["reference"] == payment.reference

    code, answer = call("POST", f"{placetopay.url}/_sandbox/outcome",
                        {"reference": payment.reference, "status": "APPROVED", "notify": "once"})
    assert code == 200, answer
    (notification,) = receiver.received  # PlacetoPay sends it once, never again
    sent_headers: dict[str, Any] = {"Content-Type": "application/json"}
    first = client.http.post("/webhooks/placetopay", headers=sent_headers, body=notification[1])
    again = client.http.post("/webhooks/placetopay", headers=sent_headers, body=notification[1])
    assert (first.status_code, first.json_body) == (200, {"result": "processed"})
    assert again.json_body == {"result": "duplicate"}
    assert get_payment(started["id"]).status == "APPROVED"
    assert get_obligation("CR-0001").amount_due == 0


def test_a_lost_placetopay_notification_ends_approved_through_the_poller(
        client, ctx, clock, make_member, make_obligation, placetopay: SandboxHandle,
        receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.context import get_context
    from chalicelib.services import payments

    make_member(password=PASSWORD)
    make_obligation()
    member = sign_in(client, "1020304050")
    headers = {**JSON, "Cookie": member.cookie, "X-CSRF-Token": member.csrf,
               "Idempotency-Key": "ptp-2", "User-Agent": UA}
    body = {"items": [{"obligation_id": "CR-0001", "amount": 150_000}], "person_type": "natural"}
    started = client.http.post("/api/v1/payments", headers=headers,
                               body=json.dumps(body).encode()).json_body["payment"]
    reference = get_payment(started["id"]).reference
    code, answer = call("POST", f"{placetopay.url}/_sandbox/outcome",
                        {"reference": reference, "status": "APPROVED", "notify": "none"})
    assert code == 200, answer
    assert receiver.received == []  # the one notification was lost
    clock.advance(minutes=7)
    assert payments.reconcile_pending(get_context()).applied == 1
    assert get_payment(started["id"]).status == "APPROVED"
    assert get_obligation("CR-0001").amount_due == 0
