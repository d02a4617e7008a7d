"""The real Wompi adapter against the real PSE sandbox over loopback HTTP, and recorded payloads.

The sandbox computes its signatures on its own (hashlib), so these tests check the adapter against
a second implementation of Wompi's protocol. Events are captured by a tiny HTTP receiver and
verified with the adapter's ``verify_event``. No real sleeps beyond sub-second fault delays.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.gateways.base import (
    GatewayError,
    GatewayTimeout,
    InvalidEvent,
    PaymentRequest,
)
from chalicelib.adapters.gateways.wompi import MSG_BANKS, MSG_CREATE, WompiGateway
from devtools.pse_sandbox import BANKS, SandboxHandle, start_sandbox

PUBLIC, PRIVATE = "pub_test_local", "prv_test_local"
EVENTS_SECRET, INTEGRITY = "test_events_local", "test_integrity_local"
START = 1795446000.0  # 2026-11-23T15:00:00Z
FIXTURES = Path(__file__).parent / "fixtures"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Receiver:
    """The app's webhook stand-in: records every POST and answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(({k: v for k, v in self.headers.items()}, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/pse"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class RecordingHttp:
    """urllib3's PoolManager, recording (method, path, Authorization) of each request."""

    def __init__(self) -> None:
        import urllib3

        self._pool = urllib3.PoolManager()
        self.calls: list[tuple[str, str, str | None]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        path = urllib.parse.urlsplit(url).path
        self.calls.append((method, path, (kwargs.get("headers") or {}).get("Authorization")))
        return self._pool.request(method, url, **kwargs)


@pytest.fixture
def sandbox_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def sandbox(receiver: Receiver, sandbox_clock: FakeClock) -> Iterator[SandboxHandle]:
    handle = start_sandbox(port=0, events_url=receiver.url, clock=sandbox_clock,
                           fault_delay_seconds=0.6)
    yield handle
    handle.stop()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def http() -> RecordingHttp:
    return RecordingHttp()


@pytest.fixture
def gateway(sandbox: SandboxHandle, sleeps: list[float], http: RecordingHttp) -> WompiGateway:
    return WompiGateway(sandbox.api_url, PUBLIC, PRIVATE, EVENTS_SECRET, INTEGRITY,
                        timeout_seconds=3, http=http, sleep=sleeps.append,
                        poll_interval_seconds=0.05)


def payment(reference: str = "SV-20261123-000123", **overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = dict(
        reference=reference, amount=150000, bank_code="1", person_type="natural",
        payer_document_type="CC", payer_document_number="1020304050",
        payer_name="Ana María Pérez", payer_email="ana.perez@correo.example",
        payer_phone="3001234567", description="Cuota crédito 4507 y aportes",
        return_url=f"http://localhost:8000/pagos/retorno?ref={reference}", ip="127.0.0.1")
    fields.update(overrides)
    return PaymentRequest(**fields)


def call(method: str, url: str, payload: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with NO_PROXY.open(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def outcome(sandbox: SandboxHandle, reference: str, status: str, notify: str) -> dict[str, Any]:
    code, answer = call("POST", f"{sandbox.url}/_sandbox/outcome",
                        {"reference": reference, "status": status, "notify": notify})
    assert code == 200, answer
    return answer


# --- Wompi API through the adapter ------------------------------------------------------------

def test_bank_list_without_the_filler(gateway: WompiGateway, http: RecordingHttp) -> None:
    banks = gateway.list_banks()
    assert [(b.code, b.name) for b in banks] == list(BANKS)
    assert all(bank.code != "0" for bank in banks)
    assert http.calls == [("GET", "/v1/pse/financial_institutions", f"Bearer {PUBLIC}")]


def test_create_polls_until_the_bank_url_appears(gateway: WompiGateway, sandbox: SandboxHandle,
                                                 sleeps: list[float],
                                                 http: RecordingHttp) -> None:
    tx = gateway.create_transaction(payment())
    assert tx.status == "PENDING"
    assert tx.bank_url == f"{sandbox.url}/banco/{tx.gateway_id}"
    assert tx.cus and tx.cus.isdigit()
    assert tx.bank_name == "Banco que aprueba"
    assert (tx.reference, tx.amount) == ("SV-20261123-000123", 150000)
    assert sleeps == [0.05, 0.05]  # POST and first GET without URL, the second GET has it
    assert [(m, p) for m, p, _ in http.calls] == [
        ("GET", f"/v1/merchants/{PUBLIC}"),
        ("POST", "/v1/transactions"),
        ("GET", "/v1/pse/financial_institutions"),  # the bank's name, once per instance
        ("GET", f"/v1/transactions/{tx.gateway_id}"),
        ("GET", f"/v1/transactions/{tx.gateway_id}"),
    ]
    assert http.calls[0][2] is None and http.calls[1][2] == f"Bearer {PRIVATE}"


def test_acceptance_tokens_are_cached(gateway: WompiGateway, http: RecordingHttp) -> None:
    gateway.create_transaction(payment("SV-A"))
    gateway.create_transaction(payment("SV-B"))
    assert [p for _, p, _ in http.calls].count(f"/v1/merchants/{PUBLIC}") == 1


def test_polling_is_bounded(sandbox: SandboxHandle, http: RecordingHttp) -> None:
    sandbox.app.reads_without_url = 100
    waits: list[float] = []
    gw = WompiGateway(sandbox.api_url, PUBLIC, PRIVATE, EVENTS_SECRET, INTEGRITY, http=http,
                      sleep=waits.append, poll_attempts=3, poll_interval_seconds=0.01)
    tx = gw.create_transaction(payment())
    assert tx.status == "PENDING" and tx.bank_url is None and tx.gateway_id
    assert waits == [0.01, 0.01, 0.01]


def test_status_query_and_find_by_reference(gateway: WompiGateway, http: RecordingHttp) -> None:
    created = gateway.create_transaction(payment())
    queried = gateway.get_transaction(created.gateway_id)
    assert (queried.gateway_id, queried.status, queried.cus) == (
        created.gateway_id, "PENDING", created.cus)
    found = gateway.find_by_reference("SV-20261123-000123")
    assert found is not None and found.gateway_id == created.gateway_id
    assert ("GET", "/v1/transactions", f"Bearer {PRIVATE}") in http.calls
    assert gateway.find_by_reference("SV-NUNCA-USADA") is None
    with pytest.raises(GatewayError) as error:
        gateway.get_transaction("11111-1111111111-11111")
    assert error.value.code == "not_found"


# --- outcomes and signed events ---------------------------------------------------------------

@pytest.mark.parametrize("wompi_status, ours", [
    ("APPROVED", "APPROVED"), ("DECLINED", "REJECTED"), ("ERROR", "FAILED"),
    ("PENDING", "PENDING"),
])
def test_outcome_notify_once_sends_a_verifiable_event(
        gateway: WompiGateway, sandbox: SandboxHandle, receiver: Receiver,
        sandbox_clock: FakeClock, wompi_status: str, ours: str) -> None:
    created = gateway.create_transaction(payment())
    answer = outcome(sandbox, created.reference, wompi_status, "once")
    assert len(receiver.received) == 1
    headers, raw = receiver.received[0]
    event = gateway.verify_event(headers, raw, now=int(sandbox_clock.now) + 5)
    assert headers["X-Event-Checksum"] == answer["event"]["signature"]["checksum"]
    assert answer["event"]["signature"]["properties"] == [
        "transaction.id", "transaction.status", "transaction.amount_in_cents"]  # all it must cover
    assert event.sent_at == int(START)
    assert (event.gateway_id, event.reference, event.status, event.amount) == (
        created.gateway_id, created.reference, ours, 150000)
    queried = gateway.get_transaction(created.gateway_id)
    assert queried.status == ours and queried.cus == created.cus
    assert (queried.bank_url is not None) == (ours == "PENDING")


def test_outcome_notify_twice_sends_the_same_event_twice(
        gateway: WompiGateway, sandbox: SandboxHandle, receiver: Receiver) -> None:
    created = gateway.create_transaction(payment())
    outcome(sandbox, created.reference, "APPROVED", "twice")
    assert len(receiver.received) == 2
    first, second = (gateway.verify_event(h, b, now=int(START)) for h, b in receiver.received)
    assert first == second  # the caller deduplicates on (gateway, id, status)
    assert first.status == "APPROVED"


def test_outcome_notify_none_is_only_seen_by_the_status_query(
        gateway: WompiGateway, sandbox: SandboxHandle, receiver: Receiver) -> None:
    created = gateway.create_transaction(payment())
    answer = outcome(sandbox, created.reference, "DECLINED", "none")
    assert receiver.received == []
    assert answer["sent"] == 0
    held = gateway.verify_event({}, json.dumps(answer["event"]).encode(), now=int(START))
    assert held.status == "REJECTED"
    assert gateway.get_transaction(created.gateway_id).status == "REJECTED"
    assert gateway.find_by_reference(created.reference).status == "REJECTED"  # type: ignore[union-attr]


def test_sandbox_events_go_stale(gateway: WompiGateway, sandbox: SandboxHandle,
                                 receiver: Receiver) -> None:
    created = gateway.create_transaction(payment())
    outcome(sandbox, created.reference, "APPROVED", "once")
    headers, raw = receiver.received[0]
    with pytest.raises(InvalidEvent, match="stale"):
        gateway.verify_event(headers, raw, now=int(START) + 26 * 3600)


def test_outcome_control_refuses_unknown_reference_and_bad_body(sandbox: SandboxHandle) -> None:
    url = f"{sandbox.url}/_sandbox/outcome"
    code, answer = call("POST", url, {"reference": "SV-NO-EXISTE", "status": "APPROVED"})
    assert code == 404 and answer["error"]["type"] == "NOT_FOUND_ERROR"
    code, answer = call("POST", url, {"reference": "SV-1", "status": "OK", "notify": "always"})
    assert code == 400 and set(answer["error"]["messages"]) == {"status", "notify"}
    code, _ = call("POST", url, None)
    assert code == 400


def test_event_delivery_failure_is_recorded_not_fatal(receiver: Receiver) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    receiver.stop()  # the app is "down"
    with start_sandbox(port=0, events_url=f"http://127.0.0.1:{port}/webhooks/pse",
                       event_timeout_seconds=1) as handle:
        gw = WompiGateway(handle.api_url, PUBLIC, PRIVATE, EVENTS_SECRET, INTEGRITY,
                          sleep=lambda _: None)
        created = gw.create_transaction(payment())
        answer = outcome(handle, created.reference, "APPROVED", "once")
        assert answer["deliveries"][0]["error"]
        assert gw.get_transaction(created.gateway_id).status == "APPROVED"
        code, log = call("GET", f"{handle.url}/_sandbox/events")
        assert code == 200 and log["deliveries"][0]["http_status"] is None


# --- the bank page ----------------------------------------------------------------------------

def test_bank_page_decision_sends_the_event_and_redirects(
        gateway: WompiGateway, sandbox: SandboxHandle, receiver: Receiver) -> None:
    created = gateway.create_transaction(payment(amount=1234567))
    assert created.bank_url
    with NO_PROXY.open(created.bank_url, timeout=5) as page:
        html = page.read().decode("utf-8")
        assert page.headers["Content-Type"].startswith("text/html")
    for text in ("$ 1.234.567", created.reference, "Banco que aprueba", "Cooperativa de Ahorro",
                 ">Aprobar<", ">Rechazar<", ">Fallida<", ">Dejar pendiente<", created.cus or "-"):
        assert text in html
    assert "<script" not in html.lower()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    form = urllib.parse.urlencode({"decision": "APPROVED"}).encode()
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(urllib.request.Request(created.bank_url, data=form, method="POST"), timeout=5)
    assert redirect.value.code == 303
    assert redirect.value.headers["Location"] == (
        f"http://localhost:8000/pagos/retorno?ref={created.reference}&id={created.gateway_id}")
    assert len(receiver.received) == 1
    headers, raw = receiver.received[0]
    assert gateway.verify_event(headers, raw, now=int(START)).status == "APPROVED"
    with NO_PROXY.open(created.bank_url, timeout=5) as page:
        assert "ya fue procesada" in page.read().decode("utf-8")


# --- faults and refusals ----------------------------------------------------------------------

def test_create_timeout_is_a_gateway_timeout_and_the_transaction_can_be_found(
        sandbox: SandboxHandle, http: RecordingHttp) -> None:
    code, _ = call("POST", f"{sandbox.url}/_sandbox/faults",
                   {"create": "timeout", "delay_seconds": 0.6})
    assert code == 200
    gw = WompiGateway(sandbox.api_url, PUBLIC, PRIVATE, EVENTS_SECRET, INTEGRITY,
                      timeout_seconds=0.2, http=http, sleep=lambda _: None)
    with pytest.raises(GatewayTimeout) as error:
        gw.create_transaction(payment())
    assert error.value.code == "gateway_timeout" and error.value.message
    found = gw.find_by_reference("SV-20261123-000123")  # the poller's way out: never a new ref
    assert found is not None and found.status == "PENDING"
    call("POST", f"{sandbox.url}/_sandbox/faults", {"create": "ok"})


def test_gateway_500_on_create_leaves_the_outcome_unknown(gateway: WompiGateway,
                                                          sandbox: SandboxHandle) -> None:
    # A 500 may come after Wompi created the transaction: failing it would invite a second
    # payment, so it is "unknown" like a timeout and the poller looks it up by reference.
    call("POST", f"{sandbox.url}/_sandbox/faults", {"create": "error"})
    with pytest.raises(GatewayTimeout) as error:
        gateway.create_transaction(payment())
    assert error.value.code == "gateway_outcome_unknown"
    assert gateway.find_by_reference("SV-20261123-000123") is None
    call("POST", f"{sandbox.url}/_sandbox/faults", {"create": "ok"})


def test_a_failed_query_is_a_plain_error(gateway: WompiGateway, sandbox: SandboxHandle) -> None:
    with pytest.raises(GatewayError) as error:
        gateway.get_transaction("no-existe")
    assert not isinstance(error.value, GatewayTimeout)
    assert error.value.code == "not_found"


def _raw_create(sandbox: SandboxHandle, **changes: Any) -> tuple[int, Any]:
    _, merchant = call("GET", f"{sandbox.api_url}/merchants/{PUBLIC}")
    reference, cents = "SV-RAW-1", 15000000
    body: dict[str, Any] = {
        "acceptance_token": merchant["data"]["presigned_acceptance"]["acceptance_token"],
        "accept_personal_auth":
            merchant["data"]["presigned_personal_data_auth"]["acceptance_token"],
        "amount_in_cents": cents, "currency": "COP",
        "signature": hashlib.sha256(f"{reference}{cents}COP{INTEGRITY}".encode()).hexdigest(),
        "customer_email": "ana.perez@correo.example", "reference": reference,
        "redirect_url": "http://localhost:8000/pagos/retorno", "ip": "127.0.0.1",
        "payment_method_type": "PSE",
        "payment_method": {"type": "PSE", "user_type": 0, "user_legal_id_type": "CC",
                           "user_legal_id": "1020304050", "financial_institution_code": "1",
                           "payment_description": "Pago SV-RAW-1"},
        "customer_data": {"full_name": "Ana María Pérez", "phone_number": "3001234567"},
    }
    for key, value in changes.items():
        if key in body["payment_method"]:
            body["payment_method"][key] = value
        else:
            body[key] = value
    return call("POST", f"{sandbox.api_url}/transactions", body,
                {"Authorization": f"Bearer {PRIVATE}"})


def test_sandbox_answers_422_for_the_filler_bank_code(sandbox: SandboxHandle) -> None:
    code, answer = _raw_create(sandbox, financial_institution_code="0")
    assert code == 422
    assert answer["error"]["type"] == "INPUT_VALIDATION_ERROR"
    assert "payment_method.financial_institution_code" in answer["error"]["messages"]
    assert _raw_create(sandbox)[0] == 201  # the same body with a real bank is accepted


@pytest.mark.parametrize("changes, field", [
    ({"signature": "0" * 64}, "signature"),
    ({"amount_in_cents": 15000050}, "amount_in_cents"),
    ({"acceptance_token": "forged"}, "acceptance_token"),
    ({"payment_description": 'a "b" | c'}, "payment_method.payment_description"),
])
def test_sandbox_validates_like_wompi(sandbox: SandboxHandle, changes: dict[str, Any],
                                      field: str) -> None:
    code, answer = _raw_create(sandbox, **changes)
    assert code == 422 and field in answer["error"]["messages"]


def test_adapter_refusals(gateway: WompiGateway, sandbox: SandboxHandle) -> None:
    with pytest.raises(GatewayError) as filler:
        gateway.create_transaction(payment(bank_code="0"))  # never even sent
    assert filler.value.code == "invalid_bank"
    with pytest.raises(GatewayError) as unknown_bank:
        gateway.create_transaction(payment(bank_code="9999"))  # the sandbox's 422
    assert unknown_bank.value.code == "invalid_request"
    assert unknown_bank.value.message == MSG_CREATE
    wrong_key = WompiGateway(sandbox.api_url, PUBLIC, "prv_test_wrong", EVENTS_SECRET, INTEGRITY)
    with pytest.raises(GatewayError) as auth:
        wrong_key.create_transaction(payment())
    assert auth.value.code == "gateway_auth"
    wrong_public = WompiGateway(sandbox.api_url, "pub_test_wrong", PRIVATE, EVENTS_SECRET,
                                INTEGRITY)
    with pytest.raises(GatewayError) as banks:
        wrong_public.list_banks()
    assert banks.value.message == MSG_BANKS


def test_unreachable_gateway_is_an_error_not_a_timeout(receiver: Receiver) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    receiver.stop()
    gw = WompiGateway(f"http://127.0.0.1:{port}/v1", PUBLIC, PRIVATE, EVENTS_SECRET, INTEGRITY,
                      timeout_seconds=1)
    with pytest.raises(GatewayError) as error:
        gw.list_banks()
    assert not isinstance(error.value, GatewayTimeout)
    assert error.value.code == "gateway_unavailable"


def test_health(sandbox: SandboxHandle) -> None:
    code, answer = call("GET", f"{sandbox.url}/_sandbox/health")
    assert code == 200 and answer["status"] == "ok"


# --- recorded Wompi payloads ------------------------------------------------------------------

def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text("utf-8"))


class ReplayHttp:
    """Answers each (method, path) with a recorded payload; anything else is a test failure."""

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        path = urllib.parse.urlsplit(url).path
        answer = self.routes[(method, path)]
        status, payload = answer if isinstance(answer, tuple) else (200, answer)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        return type("Reply", (), {"status": status, "data": data})()


BASE = "https://sandbox.wompi.co/v1"
TX_ID = "11854-1795445985-38527"


def replay_gateway(routes: dict[tuple[str, str], Any]) -> WompiGateway:
    return WompiGateway(BASE, PUBLIC, PRIVATE, EVENTS_SECRET, INTEGRITY, http=ReplayHttp(routes),
                        sleep=lambda _: None)


def test_recorded_create_then_pending_with_async_payment_url() -> None:
    gw = replay_gateway({
        ("GET", f"/v1/merchants/{PUBLIC}"): fixture("wompi_merchant.json"),
        ("POST", "/v1/transactions"): (201, fixture("wompi_transaction_created.json")),
        ("GET", f"/v1/transactions/{TX_ID}"): fixture("wompi_transaction_pending.json"),
        ("GET", "/v1/pse/financial_institutions"): fixture("wompi_financial_institutions.json"),
    })
    tx = gw.create_transaction(payment(amount=150000))
    assert tx.status == "PENDING" and tx.gateway_id == TX_ID
    assert tx.bank_url and tx.bank_url.startswith("https://registro.pse.com.co/PSENF/")
    assert (tx.cus, tx.bank_name, tx.amount) == ("3581245091", "BANCOLOMBIA", 150000)


def test_recorded_approved_and_declined() -> None:
    approved = fixture("wompi_transaction_approved.json")
    declined = fixture("wompi_transaction_declined.json")
    gw = replay_gateway({
        ("GET", f"/v1/transactions/{TX_ID}"): approved,
        ("GET", f"/v1/transactions/{declined['data']['id']}"): declined,
        ("GET", "/v1/pse/financial_institutions"): fixture("wompi_financial_institutions.json"),
    })
    ok = gw.get_transaction(TX_ID)
    assert (ok.status, ok.amount, ok.cus, ok.bank_url) == ("APPROVED", 150000, "3581245091", None)
    no = gw.get_transaction(declined["data"]["id"])
    assert (no.status, no.amount, no.cus, no.bank_name) == (
        "REJECTED", 44900, "3581251177", "DAVIVIENDA")
    assert no.status_message == "La transacción fue rechazada por la entidad financiera"
    assert no.raw["payment_method"]["extra"]["transaction_state"] == "NOT_AUTHORIZED"


def test_recorded_search_returns_the_newest() -> None:
    gw = replay_gateway({
        ("GET", "/v1/transactions"): fixture("wompi_transactions_by_reference.json"),
        ("GET", "/v1/pse/financial_institutions"): fixture("wompi_financial_institutions.json"),
    })
    found = gw.find_by_reference("SV-20261123-000123")
    assert found is not None and found.gateway_id == TX_ID and found.status == "PENDING"


def test_recorded_event_with_uppercase_checksum() -> None:
    raw = (FIXTURES / "wompi_event_approved.json").read_bytes()
    event = replay_gateway({}).verify_event({"X-Event-Checksum": fixture(
        "wompi_event_approved.json")["signature"]["checksum"]}, raw, now=1795446125)
    assert (event.gateway_id, event.status, event.amount) == (TX_ID, "APPROVED", 150000)


@pytest.mark.parametrize("routes", [
    {("GET", "/v1/pse/financial_institutions"): {"data": {"not": "a list"}}},
    {("GET", "/v1/pse/financial_institutions"): (200, b"<html>mantenimiento</html>")},
    {("GET", "/v1/pse/financial_institutions"): (503, {"error": {"type": "UNAVAILABLE"}})},
])
def test_malformed_or_failed_bank_list_is_a_gateway_error(routes: dict[Any, Any]) -> None:
    with pytest.raises(GatewayError) as error:
        replay_gateway(routes).list_banks()
    assert error.value.message == MSG_BANKS


def test_malformed_transaction_is_a_gateway_error() -> None:
    broken = fixture("wompi_transaction_pending.json")
    broken["data"]["status"] = "SOMETHING_NEW"
    gw = replay_gateway({("GET", f"/v1/transactions/{TX_ID}"): broken})
    with pytest.raises(GatewayError) as error:
        gw.get_transaction(TX_ID)
    assert error.value.code == "gateway_malformed"


# --- Wompi's sandbox conventions, consent ------------------------------------------------------

def test_the_sandbox_banks_are_wompis_test_banks(gateway: WompiGateway,
                                                 sandbox: SandboxHandle) -> None:
    assert [b.code for b in gateway.list_banks()] == ["1", "2"]
    for code, first in (("1", "Aprobar"), ("2", "Rechazar")):
        created = gateway.create_transaction(payment(f"SV-BANK-{code}", bank_code=code))
        assert created.bank_url
        with NO_PROXY.open(created.bank_url, timeout=5) as page:
            html = page.read().decode("utf-8")
        buttons = [html.index(f">{label}<") for label in ("Aprobar", "Rechazar", "Fallida",
                                                          "Dejar pendiente")]
        assert min(buttons) == html.index(f">{first}<")  # the bank's own outcome comes first


def test_sandbox_events_carry_payment_method_extra_like_wompis(
        gateway: WompiGateway, sandbox: SandboxHandle, receiver: Receiver) -> None:
    created = gateway.create_transaction(payment())
    outcome(sandbox, created.reference, "PENDING", "once")
    _, raw = receiver.received[0]
    transaction = json.loads(raw)["data"]["transaction"]
    extra = transaction["payment_method"]["extra"]
    assert extra["async_payment_url"] == created.bank_url
    assert extra["traceability_code"] == created.cus
    assert transaction["payment_method"]["financial_institution_code"] == "1"
    assert gateway.verify_event({}, raw, now=int(START)).status == "PENDING"  # still verifies


def test_documents_are_the_merchants_two_permalinks_with_their_tokens(
        gateway: WompiGateway, sandbox: SandboxHandle) -> None:
    documents = gateway.documents()
    assert [d.id for d in documents] == ["end_user_policy", "personal_data_auth"]
    assert [d.url for d in documents] == [f"{sandbox.url}/terminos.pdf",
                                          f"{sandbox.url}/datos-personales.pdf"]
    assert [d.version for d in documents] == [sandbox.app.acceptance_token,
                                              sandbox.app.personal_data_token]
    assert all(d.title for d in documents)
    created = gateway.create_transaction(payment(accepted_documents=tuple(documents)))
    assert created.status == "PENDING"


def test_the_accepted_tokens_are_the_ones_sent(gateway: WompiGateway) -> None:
    import dataclasses

    terms, personal = gateway.documents()
    forged = dataclasses.replace(terms, version="not-the-token-shown")
    with pytest.raises(GatewayError) as refused:  # the sandbox's 422, as Wompi's
        gateway.create_transaction(payment(accepted_documents=(forged, personal)))
    assert refused.value.code == "invalid_request"


def test_the_financial_services_references_reach_the_gateway(gateway: WompiGateway,
                                                             sandbox: SandboxHandle) -> None:
    from datetime import date

    created = gateway.create_transaction(payment(ip="190.24.10.5",
                                                 product_opening_date=date(2019, 3, 7)))
    method = created.raw["payment_method"]
    assert (method["reference_one"], method["reference_two"], method["reference_three"]) == (
        "190.24.10.5", "20190307", "1020304050")


def test_documents_that_cannot_be_read_say_so(sandbox: SandboxHandle) -> None:
    from chalicelib.adapters.gateways.wompi import MSG_DOCUMENTS

    wrong_public = WompiGateway(sandbox.api_url, "pub_test_wrong", PRIVATE, EVENTS_SECRET,
                                INTEGRITY)
    with pytest.raises(GatewayError) as unreadable:
        wrong_public.documents()
    assert unreadable.value.message == MSG_DOCUMENTS
    with pytest.raises(GatewayError) as create:  # a caller that predates consent
        wrong_public.create_transaction(payment())
    assert (create.value.message, create.value.code) == (MSG_CREATE, "not_found")
