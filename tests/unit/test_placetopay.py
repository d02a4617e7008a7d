"""PlacetoPay WebCheckout: the auth object, the session payload, the notification's two signature
forms and the states, against vectors computed here from the documented formulas (no network).

PlacetoPay documents its formulas (reference/pse.md §3.2) but publishes no worked values, so each
expected value below is computed in the test, from raw nonce bytes and with hashlib/base64 only
(never with the adapter's helpers), and the literals next to them were computed once the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.gateways.base import (
    REVIEW_PARTIAL_APPROVAL,
    InvalidEvent,
    InvalidRequest,
    PaymentRequest,
)
from chalicelib.adapters.gateways.placetopay import STATUS_MAP, PlacetoPayGateway, map_status

LOGIN, SECRET = "placetopay_login", "024h1IlD"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in Colombia
NONCE = bytes(range(16))
SEED = "2026-11-23T10:00:00-05:00"
REQUEST_ID = "1234567"
DATE = "2026-11-23T10:05:00-05:00"


def documented_tran_key(nonce: bytes, seed: str, secret: str) -> str:
    """Base64(SHA-256(nonce + seed + secretKey)), the raw digest, the raw nonce."""
    return base64.b64encode(hashlib.sha256(nonce + seed.encode() + secret.encode()).digest()).decode()


def documented_signature(request_id: str, status: str, when: str, secret: str, algorithm: str) -> str:
    raw = f"{request_id}{status}{when}{secret}".encode()
    if algorithm == "sha1":
        return hashlib.sha1(raw).hexdigest()  # noqa: S324  # PlacetoPay's legacy form
    return "sha256:" + hashlib.sha256(raw).hexdigest()


class FakeHttp:
    """Records every request; answers each path with a queued (status, payload)."""

    def __init__(self, answers: dict[str, tuple[int, Any]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, *, body: bytes | None = None, **_: Any) -> Any:
        path = url.split("://", 1)[1].split("/", 1)[1]
        self.calls.append((method, "/" + path, json.loads(body or b"null")))
        status, payload = self.answers["/" + path]
        return type("Reply", (), {"status": status, "data": json.dumps(payload).encode()})()


def gateway(http: FakeHttp | None = None, **overrides: Any) -> PlacetoPayGateway:
    options: dict[str, Any] = dict(notification_url="https://sv.example/webhooks/placetopay",
                                   http=http or FakeHttp(), clock=lambda: NOW,
                                   nonce=lambda size: NONCE[:size])
    options.update(overrides)
    return PlacetoPayGateway("https://checkout-test.placetopay.com", LOGIN, SECRET, **options)


def payment(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = dict(
        reference="SV-20261123-000123", amount=150000, bank_code="", person_type="natural",
        payer_document_type="CC", payer_document_number="1020304050",
        payer_name="Ana María Pérez", payer_email="ana.perez@correo.example",
        payer_phone="3001234567", description='Cuota "crédito" | 4507',
        return_url="https://sv.example/pagos/p-1/retorno", ip="190.24.10.5",
        user_agent="Mozilla/5.0 (X11; Linux x86_64)", product_opening_date=date(2019, 3, 7))
    fields.update(overrides)
    return PaymentRequest(**fields)


def session(status: str, *, total: Any = 150000, payments: list[dict[str, Any]] | None = None
            ) -> dict[str, Any]:
    return {"requestId": int(REQUEST_ID),
            "status": {"status": status, "reason": "00", "message": "La petición ha sido aprobada",
                       "date": DATE},
            "request": {"payment": {"reference": "SV-20261123-000123",
                                    "amount": {"currency": "COP", "total": total}}},
            "payment": payments if payments is not None else []}


def notification(status: str = "APPROVED", algorithm: str = "sha256", *,
                 state: dict[str, Any] | None = None, **changes: Any) -> bytes:
    body: dict[str, Any] = {
        "status": state or {"status": status, "reason": "00", "message": "Aprobada", "date": DATE},
        "requestId": int(REQUEST_ID), "reference": "SV-20261123-000123",
        "signature": documented_signature(REQUEST_ID, status, DATE, SECRET, algorithm)}
    body.update(changes)
    return json.dumps(body).encode()


# --- auth -----------------------------------------------------------------------------------------

def test_tran_key_follows_the_documented_formula() -> None:
    auth = gateway().auth()
    assert auth == {"login": LOGIN, "tranKey": documented_tran_key(NONCE, SEED, SECRET),
                    "nonce": base64.b64encode(NONCE).decode(), "seed": SEED}
    assert auth["tranKey"] == "isihIqEx5uh92Y0Xbpf8MKoaDKebyACHPiRylaoqUlc="
    assert auth["nonce"] == "AAECAwQFBgcICQoLDA0ODw=="
    # Not the Base64 of the hex digest, nor over the Base64 nonce: the two common mistakes.
    hexed = base64.b64encode(hashlib.sha256(NONCE + SEED.encode() + SECRET.encode())
                             .hexdigest().encode()).decode()
    assert auth["tranKey"] != hexed
    assert auth["tranKey"] != documented_tran_key(auth["nonce"].encode(), SEED, SECRET)


def test_the_seed_is_now_within_five_minutes_and_the_nonce_fresh() -> None:
    import os

    gw = gateway(nonce=os.urandom)
    first, second = gw.auth(), gw.auth()
    assert abs(datetime.fromisoformat(first["seed"]) - NOW) <= timedelta(minutes=5)
    assert first["nonce"] != second["nonce"]
    assert len(base64.b64decode(first["nonce"])) >= 16


# --- the session ----------------------------------------------------------------------------------

def test_session_payload() -> None:
    payload = gateway().build_session_payload(payment())
    assert payload["auth"]["login"] == LOGIN
    assert payload["payment"] == {"reference": "SV-20261123-000123",
                                  "description": "Cuota crédito 4507",
                                  "amount": {"currency": "COP", "total": 150000}}
    assert payload["payer"] == {"document": "1020304050", "documentType": "CC",
                                "name": "Ana María", "surname": "Pérez",
                                "email": "ana.perez@correo.example", "mobile": "3001234567"}
    assert (payload["ipAddress"], payload["userAgent"]) == ("190.24.10.5",
                                                            "Mozilla/5.0 (X11; Linux x86_64)")
    assert payload["returnUrl"] == "https://sv.example/pagos/p-1/retorno"
    assert payload["notificationUrl"] == "https://sv.example/webhooks/placetopay"
    assert datetime.fromisoformat(payload["expiration"]) == NOW + timedelta(minutes=30)
    assert "bank" not in json.dumps(payload).lower()  # the checkout page asks for it
    passport = gateway().build_session_payload(payment(payer_document_type="PP"))
    assert passport["payer"]["documentType"] == "PPN"


def test_create_posts_the_session_and_sends_the_payer_to_the_checkout() -> None:
    http = FakeHttp({"/api/session": (200, {
        "status": {"status": "OK", "reason": "PC", "message": "La petición se ha procesado",
                   "date": DATE},
        "requestId": int(REQUEST_ID),
        "processUrl": "https://checkout-test.placetopay.com/session/1234567/abc"})})
    created = gateway(http).create_transaction(payment())
    assert (created.gateway_id, created.status, created.amount, created.reference) == (
        REQUEST_ID, "PENDING", 150000, "SV-20261123-000123")
    assert created.bank_url == "https://checkout-test.placetopay.com/session/1234567/abc"
    assert [(m, p) for m, p, _ in http.calls] == [("POST", "/api/session")]


def test_a_refused_login_is_a_gateway_auth_error() -> None:
    from chalicelib.adapters.gateways.base import GatewayError

    http = FakeHttp({"/api/session": (401, {"status": {
        "status": "FAILED", "reason": 401, "message": "Autenticación fallida 102", "date": DATE}})})
    with pytest.raises(GatewayError) as refused:
        gateway(http).create_transaction(payment())
    assert refused.value.code == "gateway_auth"


def test_the_bank_choice_belongs_to_the_gateway() -> None:
    gw = gateway()
    assert gw.chooses_bank is True and gw.list_banks() == [] and gw.documents() == []
    gw.validate_request(payment(bank_code=""))


@pytest.mark.parametrize("changes, code", [
    ({"payer_email": ""}, "payer_email_missing"),
    ({"payer_phone": " "}, "payer_phone_missing"),
    ({"payer_document_type": "NIT"}, "document_type_not_allowed"),
    ({"person_type": "juridica"}, "document_type_not_allowed"),
])
def test_invalid_requests_never_reach_placetopay(changes: dict[str, Any], code: str) -> None:
    http = FakeHttp()
    with pytest.raises(InvalidRequest) as refused:
        gateway(http).create_transaction(payment(**changes))
    assert refused.value.code == code and refused.value.message
    assert http.calls == []


# --- states ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("state, ours, review", [
    ("PENDING", "PENDING", None),
    ("APPROVED", "APPROVED", None),
    ("REJECTED", "REJECTED", None),
    ("APPROVED_PARTIAL", "PENDING", REVIEW_PARTIAL_APPROVAL),
    ("PARTIAL_EXPIRED", "REJECTED", None),
])
def test_states_map_onto_the_engines(state: str, ours: str, review: str | None) -> None:
    http = FakeHttp({f"/api/session/{REQUEST_ID}": (200, session(state))})
    queried = gateway(http).get_transaction(REQUEST_ID)
    assert (queried.status, queried.review_reason) == (ours, review)
    assert http.calls[0][2]["auth"]["tranKey"] == documented_tran_key(NONCE, SEED, SECRET)


def test_a_partial_approval_is_never_approved() -> None:
    assert all(ours != "APPROVED" for state, (ours, _) in STATUS_MAP.items() if state != "APPROVED")
    assert set(STATUS_MAP) == {"PENDING", "APPROVED", "REJECTED", "APPROVED_PARTIAL",
                               "PARTIAL_EXPIRED"}
    with pytest.raises(ValueError):
        map_status("FAILED")


def test_the_approved_attempt_gives_the_cus_and_the_bank() -> None:
    attempts = [
        {"status": {"status": "REJECTED"}, "authorization": "111", "issuerName": "DAVIVIENDA"},
        {"status": {"status": "APPROVED"}, "authorization": "3581245091",
         "issuerName": "BANCOLOMBIA", "paymentMethod": "pse"},
    ]
    http = FakeHttp({f"/api/session/{REQUEST_ID}": (200, session("APPROVED", total=150000.0,
                                                                 payments=attempts))})
    queried = gateway(http).get_transaction(REQUEST_ID)
    assert (queried.cus, queried.bank_name, queried.amount) == ("3581245091", "BANCOLOMBIA", 150000)


@pytest.mark.parametrize("total", [150000.5, "mucho", None, True])
def test_a_session_with_a_strange_amount_is_malformed(total: Any) -> None:
    from chalicelib.adapters.gateways.base import GatewayError

    http = FakeHttp({f"/api/session/{REQUEST_ID}": (200, session("APPROVED", total=total))})
    with pytest.raises(GatewayError) as error:
        gateway(http).get_transaction(REQUEST_ID)
    assert error.value.code == "gateway_malformed"


# --- the notification -----------------------------------------------------------------------------

def test_the_documented_signature_vectors() -> None:
    assert documented_signature(REQUEST_ID, "APPROVED", DATE, SECRET, "sha1") == (
        "e7d635a6e157f45d031f7812ce76cef0633b2bf2")
    assert documented_signature(REQUEST_ID, "APPROVED", DATE, SECRET, "sha256") == (
        "sha256:d06495c32df347140c895c03244850287a5d92d96947da79c951dd818295b7d3")


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_both_signature_forms_are_verified_and_the_session_confirms(algorithm: str) -> None:
    http = FakeHttp({f"/api/session/{REQUEST_ID}": (200, session("APPROVED"))})
    sent_at = int(datetime.fromisoformat(DATE).timestamp())
    event = gateway(http).verify_event({}, notification(algorithm=algorithm), now=sent_at + 5)
    assert (event.gateway_id, event.status, event.amount, event.sent_at, event.reference) == (
        REQUEST_ID, "APPROVED", 150000, sent_at, "SV-20261123-000123")
    assert [p for _, p, _ in http.calls] == [f"/api/session/{REQUEST_ID}"]


def test_an_uppercase_signature_is_accepted() -> None:
    http = FakeHttp({f"/api/session/{REQUEST_ID}": (200, session("APPROVED"))})
    signature = documented_signature(REQUEST_ID, "APPROVED", DATE, SECRET, "sha1").upper()
    sent_at = int(datetime.fromisoformat(DATE).timestamp())
    assert gateway(http).verify_event({}, notification(signature=signature),
                                      now=sent_at).status == "APPROVED"


@pytest.mark.parametrize("body, message", [
    (notification(state={"status": "APPROVED", "date": "2026-11-23T10:06:00-05:00"}),
     "signature does not match"),
    (notification(signature=documented_signature(REQUEST_ID, "REJECTED", DATE, SECRET, "sha256")),
     "signature does not match"),
    (notification(signature=documented_signature(REQUEST_ID, "APPROVED", DATE, "other", "sha1")),
     "signature does not match"),
    (notification(signature="sha256:" + documented_signature(REQUEST_ID, "APPROVED", DATE, SECRET,
                                                             "sha1")), "signature does not match"),
    (notification(requestId="12a"), "requestId"),
    (notification(signature=""), "'signature'"),
    (notification(state={"status": "APPROVED"}), "status.date"),
    (b"not json", "not valid UTF-8 JSON"),
])
def test_bad_notifications_are_invalid_and_no_query_is_made(body: bytes, message: str) -> None:
    http = FakeHttp()
    with pytest.raises(InvalidEvent, match=message):
        gateway(http).verify_event({}, body, now=int(datetime.fromisoformat(DATE).timestamp()))
    assert http.calls == []


def test_a_forged_status_in_the_body_cannot_pass_with_a_genuine_signature() -> None:
    genuine = documented_signature(REQUEST_ID, "REJECTED", DATE, SECRET, "sha256")
    forged = json.loads(notification("REJECTED"))
    forged["status"]["status"] = "APPROVED"
    forged["signature"] = genuine
    with pytest.raises(InvalidEvent, match="signature does not match"):
        gateway().verify_event({}, json.dumps(forged).encode(), now=0)


def test_stale_and_future_notifications_are_refused() -> None:
    sent_at = int(datetime.fromisoformat(DATE).timestamp())
    http = FakeHttp({f"/api/session/{REQUEST_ID}": (200, session("APPROVED"))})
    gw = gateway(http, max_event_age_seconds=60)
    assert gw.verify_event({}, notification(), now=sent_at + 60).status == "APPROVED"
    with pytest.raises(InvalidEvent, match="stale"):
        gw.verify_event({}, notification(), now=sent_at + 61)
    with pytest.raises(InvalidEvent, match="future"):
        gw.verify_event({}, notification(), now=sent_at - 301)


def test_a_partial_approval_notified_is_only_pending() -> None:
    http = FakeHttp({f"/api/session/{REQUEST_ID}": (200, session("APPROVED_PARTIAL"))})
    sent_at = int(datetime.fromisoformat(DATE).timestamp())
    event = gateway(http).verify_event({}, notification("APPROVED_PARTIAL"), now=sent_at)
    assert event.status == "PENDING"


def test_an_unconfirmable_notification_is_invalid() -> None:
    http = FakeHttp({f"/api/session/{REQUEST_ID}": (404, {"status": {"status": "FAILED"}})})
    with pytest.raises(InvalidEvent, match="could not be confirmed: not_found"):
        gateway(http).verify_event({}, notification(),
                                   now=int(datetime.fromisoformat(DATE).timestamp()))


# --- the registry ---------------------------------------------------------------------------------

def test_the_registry_takes_a_payments_gateway_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.gateways import registry
    from chalicelib.config import ConfigError, Settings
    from chalicelib.context import Context

    monkeypatch.setenv("PLACETOPAY_SECRET_KEY", SECRET)
    monkeypatch.setenv("GATEWAY_PRIVATE_KEY", "prv_test_unit")
    monkeypatch.setenv("GATEWAY_EVENTS_SECRET", "test_events_unit")
    monkeypatch.setenv("GATEWAY_INTEGRITY_SECRET", "test_integrity_unit")
    settings = Settings.from_env({"GATEWAY": "wompi", "PLACETOPAY_LOGIN": LOGIN,
                                  "PUBLIC_BASE_URL": "https://sv.example"})
    assert registry.gateway_for(settings).name == "wompi"
    assert registry.gateway_for(settings, "placetopay").name == "placetopay"
    assert registry.gateway_for(settings, "PlacetoPay") is registry.gateway_for(settings, "placetopay")
    assert registry.gateway_for(Context(settings)).name == "wompi"  # Context.gateway's call
    switched = Settings.from_env({"GATEWAY": "placetopay", "PLACETOPAY_LOGIN": LOGIN})
    assert registry.gateway_for(switched).name == "placetopay"
    assert registry.gateway_for(switched, "wompi").name == "wompi"  # in-flight payments finish
    with pytest.raises(ConfigError, match="payu"):
        registry.gateway_for(settings, "payu")
    assert "024h1IlD" not in repr(registry.gateway_for(settings, "placetopay"))
    built = registry.gateway_for(settings, "placetopay").build_session_payload(payment())
    assert built["notificationUrl"] == "https://sv.example/webhooks/placetopay"
