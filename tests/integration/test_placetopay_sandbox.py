"""The real PlacetoPay adapter against the PSE sandbox's PlacetoPay side, over loopback HTTP.

The sandbox checks the ``auth`` object and signs its notifications on its own (hashlib, base64),
so these tests hold the adapter against a second implementation of PlacetoPay's formulas.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.gateways.base import (
    REVIEW_PARTIAL_APPROVAL,
    GatewayError,
    GatewayTimeout,
    InvalidEvent,
)
from chalicelib.adapters.gateways.placetopay import PlacetoPayGateway
from devtools.pse_sandbox import SandboxHandle, start_sandbox
from devtools.pse_sandbox.placetopay import DEFAULT_LOGIN, DEFAULT_SECRET_KEY
from tests.integration.test_wompi_sandbox import (
    NO_PROXY,
    START,
    FakeClock,
    Receiver,
    call,
)
from tests.unit.test_placetopay import payment


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def sandbox_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(params=["sha1", "sha256"])
def sandbox(request: pytest.FixtureRequest, sandbox_clock: FakeClock) -> Iterator[SandboxHandle]:
    handle = start_sandbox(port=0, events_url=None, clock=sandbox_clock, fault_delay_seconds=0.6,
                           placetopay_signature=request.param)
    yield handle
    handle.stop()


def adapter(sandbox: SandboxHandle, receiver: Receiver, *, secret: str = DEFAULT_SECRET_KEY,
            login: str = DEFAULT_LOGIN, skew: timedelta = timedelta(0),
            **options: Any) -> PlacetoPayGateway:
    moment = datetime.fromtimestamp(START, tz=UTC) + skew
    options.setdefault("timeout_seconds", 3)
    return PlacetoPayGateway(sandbox.url, login, secret, notification_url=receiver.url,
                             clock=lambda: moment, **options)


@pytest.fixture
def gateway(sandbox: SandboxHandle, receiver: Receiver) -> PlacetoPayGateway:
    return adapter(sandbox, receiver)


def outcome(sandbox: SandboxHandle, reference: str, status: str, notify: str) -> dict[str, Any]:
    code, answer = call("POST", f"{sandbox.url}/_sandbox/outcome",
                        {"reference": reference, "status": status, "notify": notify})
    assert code == 200, answer
    return answer


def test_a_session_sends_the_payer_to_the_checkout_where_the_bank_is_chosen(
        gateway: PlacetoPayGateway, sandbox: SandboxHandle) -> None:
    created = gateway.create_transaction(payment(amount=1234567))
    assert created.status == "PENDING" and created.gateway_id.isdigit()
    assert created.bank_url == f"{sandbox.url}/placetopay/session/{created.gateway_id}"
    with NO_PROXY.open(created.bank_url, timeout=5) as page:
        html = page.read().decode("utf-8")
    for text in ("$ 1.234.567", created.reference, "A continuación seleccione su banco",
                 "BANCOLOMBIA", ">Aprobar<", ">Rechazar<", ">Fallida<", ">Dejar pendiente<"):
        assert text in html
    assert "<script" not in html.lower()
    stored = sandbox.app.placetopay.sessions[int(created.gateway_id)].body
    assert (stored["ipAddress"], stored["userAgent"]) == ("190.24.10.5",
                                                          "Mozilla/5.0 (X11; Linux x86_64)")


def test_the_checkout_decision_notifies_once_and_returns(
        gateway: PlacetoPayGateway, sandbox: SandboxHandle, receiver: Receiver) -> None:
    created = gateway.create_transaction(payment())
    assert created.bank_url

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    without_bank = urllib.parse.urlencode({"decision": "APPROVED"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        opener.open(urllib.request.Request(created.bank_url, data=without_bank), timeout=5)
    assert refused.value.code == 400
    form = urllib.parse.urlencode({"decision": "APPROVED", "bank": "1051"}).encode()
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(urllib.request.Request(created.bank_url, data=form), timeout=5)
    assert redirect.value.code == 303
    assert redirect.value.headers["Location"] == "https://sv.example/pagos/p-1/retorno"
    assert len(receiver.received) == 1  # once, never retried
    headers, raw = receiver.received[0]
    event = gateway.verify_event(headers, raw, now=int(START) + 5)
    assert (event.gateway_id, event.status, event.amount, event.reference) == (
        created.gateway_id, "APPROVED", 150000, created.reference)
    queried = gateway.get_transaction(created.gateway_id)
    assert (queried.status, queried.bank_name, queried.cus) == (
        "APPROVED", "DAVIVIENDA", sandbox.app.placetopay.sessions[int(created.gateway_id)].cus)


@pytest.mark.parametrize("control, ours", [
    ("APPROVED", "APPROVED"), ("DECLINED", "REJECTED"), ("ERROR", "REJECTED"),
    ("PENDING", "PENDING"),
])
def test_the_outcome_control_speaks_placetopay(
        gateway: PlacetoPayGateway, sandbox: SandboxHandle, receiver: Receiver, control: str,
        ours: str) -> None:
    created = gateway.create_transaction(payment())
    answer = outcome(sandbox, created.reference, control, "once")
    assert answer["sent"] == 1 and len(receiver.received) == 1
    headers, raw = receiver.received[0]
    assert gateway.verify_event(headers, raw, now=int(START)).status == ours
    assert gateway.get_transaction(created.gateway_id).status == ours


def test_a_lost_notification_is_only_seen_by_the_status_query(
        gateway: PlacetoPayGateway, sandbox: SandboxHandle, receiver: Receiver) -> None:
    created = gateway.create_transaction(payment())
    held = outcome(sandbox, created.reference, "APPROVED", "none")
    assert receiver.received == [] and held["sent"] == 0
    assert gateway.get_transaction(created.gateway_id).status == "APPROVED"


def test_notify_twice_sends_the_same_notification_twice(
        gateway: PlacetoPayGateway, sandbox: SandboxHandle, receiver: Receiver) -> None:
    created = gateway.create_transaction(payment())
    outcome(sandbox, created.reference, "DECLINED", "twice")
    first, second = (gateway.verify_event(h, b, now=int(START)) for h, b in receiver.received)
    assert first == second and first.status == "REJECTED"


def test_a_partial_approval_is_for_review(gateway: PlacetoPayGateway, sandbox: SandboxHandle,
                                          receiver: Receiver) -> None:
    created = gateway.create_transaction(payment())
    outcome(sandbox, created.reference, "APPROVED_PARTIAL", "once")
    queried = gateway.get_transaction(created.gateway_id)
    assert (queried.status, queried.review_reason) == ("PENDING", REVIEW_PARTIAL_APPROVAL)
    headers, raw = receiver.received[0]
    assert gateway.verify_event(headers, raw, now=int(START)).status == "PENDING"


def test_a_forged_notification_is_refused(gateway: PlacetoPayGateway, sandbox: SandboxHandle,
                                          receiver: Receiver) -> None:
    import json

    created = gateway.create_transaction(payment())
    outcome(sandbox, created.reference, "DECLINED", "once")
    _, raw = receiver.received[0]
    forged = json.loads(raw)
    forged["status"]["status"] = "APPROVED"
    with pytest.raises(InvalidEvent, match="signature does not match"):
        gateway.verify_event({}, json.dumps(forged).encode(), now=int(START))


@pytest.mark.parametrize("changes", [
    {"secret": "otra-llave"},
    {"login": "otro_sitio"},
    {"skew": timedelta(minutes=6)},  # the seed is out of PlacetoPay's 5 minutes
    {"skew": -timedelta(minutes=6)},
])
def test_the_sandbox_refuses_a_wrong_auth_like_placetopay(
        sandbox: SandboxHandle, receiver: Receiver, changes: dict[str, Any]) -> None:
    with pytest.raises(GatewayError) as refused:
        adapter(sandbox, receiver, **changes).create_transaction(payment())
    assert refused.value.code == "gateway_auth"
    assert adapter(sandbox, receiver, skew=timedelta(minutes=4)).create_transaction(
        payment(reference="SV-SKEW-1")).status == "PENDING"


def test_a_late_creation_is_a_timeout(sandbox: SandboxHandle, receiver: Receiver) -> None:
    call("POST", f"{sandbox.url}/_sandbox/faults", {"create": "timeout", "delay_seconds": 0.6})
    slow = adapter(sandbox, receiver, timeout_seconds=0.2)
    with pytest.raises(GatewayTimeout):
        slow.create_transaction(payment())
    assert slow.find_by_reference("SV-20261123-000123") is None  # WebCheckout cannot search
    call("POST", f"{sandbox.url}/_sandbox/faults", {"create": "ok"})


def test_an_unknown_session_is_not_found(gateway: PlacetoPayGateway) -> None:
    with pytest.raises(GatewayError) as error:
        gateway.get_transaction("999")
    assert error.value.code == "not_found"
