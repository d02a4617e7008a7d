"""Wompi's signatures and status mapping, checked against hand-computed vectors (no network).

Every expected hex below was computed once with
``hashlib.sha256("<the concatenation shown next to it>".encode()).hexdigest()``
from the formulas of reference/pse.md §3.1, not from the adapter.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from chalicelib.adapters.gateways.base import InvalidEvent, PaymentRequest
from chalicelib.adapters.gateways.wompi import (
    STATUS_MAP,
    WompiGateway,
    clean_description,
    event_checksum,
    integrity_signature,
    map_status,
)

EVENTS_SECRET = "test_events_local"
TS = 1795446000  # 2026-11-23T15:00:00Z
MAX_AGE = 25 * 3600
PROPS = ["transaction.id", "transaction.status", "transaction.amount_in_cents"]

# "1234-1610641025-49201" + "APPROVED" + "4490000" + "1795446000" + "test_events_local"
APPROVED_CHECKSUM = "636af16ac43c12625450420a94ee2ee1663207d27ddcb181af756dcfe63eb32d"
# the same values with the secret "test_events_other"
OTHER_SECRET_CHECKSUM = "ce8268190414aa04129562ef2a7e1c15482f4bba5f4cf43e73d19b71140a4d68"
# "1234-1610641025-49201" + "SV-REF-1" + "DECLINED" + "1795446000" + "test_events_local"
# (properties transaction.id, transaction.reference, transaction.status, in that order)
DECLINED_CHECKSUM = "1b1f557bbaf022c52d4cf34229e61a9f1ed4e952ca29dd03f4ae94e7750db3ec"


def gateway(**overrides: Any) -> WompiGateway:
    def no_http(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no HTTP in these tests")

    return WompiGateway("http://wompi.invalid/v1", "pub_test_x", "prv_test_x", EVENTS_SECRET,
                        "test_integrity_local", http=type("NoHttp", (), {"request": no_http})(),
                        max_event_age_seconds=MAX_AGE, **overrides)


def make_event(*, status: str = "APPROVED", amount: int = 4490000, timestamp: int = TS,
               checksum: str | None = APPROVED_CHECKSUM,
               properties: list[str] | None = None, reference: str = "SV-REF-1") -> dict[str, Any]:
    signature: dict[str, Any] = {"properties": list(PROPS if properties is None else properties)}
    if checksum is not None:
        signature["checksum"] = checksum
    return {
        "event": "transaction.updated",
        "data": {"transaction": {
            "id": "1234-1610641025-49201", "amount_in_cents": amount, "reference": reference,
            "customer_email": "ana.perez@correo.example", "currency": "COP",
            "payment_method_type": "PSE", "redirect_url": "https://sv.example/pagos/retorno",
            "status": status, "shipping_address": None, "payment_link_id": None,
            "payment_source_id": None,
        }},
        "environment": "test",
        "signature": signature,
        "timestamp": timestamp,
        "sent_at": "2026-11-23T15:00:00.000Z",
    }


def body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


# --- the checksum formula ---------------------------------------------------------------------

def test_event_checksum_matches_hand_computed_vector() -> None:
    event = make_event()
    assert event_checksum(event["data"], PROPS, TS, EVENTS_SECRET) == APPROVED_CHECKSUM
    assert event_checksum(event["data"], PROPS, TS, "test_events_other") == OTHER_SECRET_CHECKSUM


def test_checksum_follows_the_properties_of_the_payload_in_order() -> None:
    props = ["transaction.id", "transaction.reference", "transaction.status"]
    event = make_event(status="DECLINED", properties=props, checksum=DECLINED_CHECKSUM)
    verified = gateway().verify_event({}, body(event), now=TS)
    assert verified.event_id == DECLINED_CHECKSUM
    assert verified.transaction.status == "REJECTED"
    reordered = make_event(status="DECLINED", properties=list(reversed(props)),
                           checksum=DECLINED_CHECKSUM)
    with pytest.raises(InvalidEvent, match="checksum does not match"):
        gateway().verify_event({}, body(reordered), now=TS)


# --- verify_event: accepted -------------------------------------------------------------------

def test_valid_event_is_verified_and_mapped() -> None:
    verified = gateway().verify_event({"Content-Type": "application/json"}, body(make_event()),
                                      now=TS + 10)
    assert verified.event_id == APPROVED_CHECKSUM
    assert verified.sent_at == TS
    tx = verified.transaction
    assert (tx.gateway_id, tx.reference, tx.status, tx.amount) == (
        "1234-1610641025-49201", "SV-REF-1", "APPROVED", 44900)
    assert tx.cus is None and tx.bank_url is None  # Wompi's events carry no payment_method


def test_uppercase_checksum_and_matching_header_are_accepted() -> None:
    event = make_event(checksum=APPROVED_CHECKSUM.upper())
    verified = gateway().verify_event({"x-event-checksum": APPROVED_CHECKSUM.upper()},
                                      body(event), now=TS)
    assert verified.event_id == APPROVED_CHECKSUM  # normalised: duplicates share the id


def test_header_alone_is_enough_when_the_body_has_no_checksum() -> None:
    event = make_event(checksum=None)
    verified = gateway().verify_event({"X-Event-Checksum": APPROVED_CHECKSUM}, body(event), now=TS)
    assert verified.event_id == APPROVED_CHECKSUM


# --- verify_event: refused --------------------------------------------------------------------

@pytest.mark.parametrize("tamper", [
    {"amount": 4490100},
    {"status": "DECLINED"},
    {"timestamp": TS + 1},
])
def test_tampered_event_is_rejected(tamper: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent, match="checksum does not match"):
        gateway().verify_event({}, body(make_event(**tamper)), now=TS)


def test_event_signed_with_another_secret_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match="checksum does not match"):
        gateway().verify_event({}, body(make_event(checksum=OTHER_SECRET_CHECKSUM)), now=TS)


def test_header_that_disagrees_with_the_body_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match="X-Event-Checksum"):
        gateway().verify_event({"X-Event-Checksum": OTHER_SECRET_CHECKSUM}, body(make_event()),
                               now=TS)


def test_stale_event_is_rejected_at_the_configured_age() -> None:
    gw = gateway()
    assert gw.verify_event({}, body(make_event()), now=TS + MAX_AGE).event_id == APPROVED_CHECKSUM
    with pytest.raises(InvalidEvent, match="stale"):
        gw.verify_event({}, body(make_event()), now=TS + MAX_AGE + 1)


def test_event_from_the_future_is_rejected_beyond_five_minutes() -> None:
    gw = gateway()
    assert gw.verify_event({}, body(make_event()), now=TS - 300).sent_at == TS
    with pytest.raises(InvalidEvent, match="future"):
        gw.verify_event({}, body(make_event()), now=TS - 301)


def test_missing_signed_property_is_rejected() -> None:
    props = [*PROPS, "transaction.payment_method.extra.traceability_code"]
    with pytest.raises(InvalidEvent, match=r"'transaction\.payment_method\.extra\.traceability_code' "
                                           "is missing"):
        gateway().verify_event({}, body(make_event(properties=props)), now=TS)


def test_signed_property_of_the_wrong_type_is_rejected() -> None:
    event = make_event(properties=["transaction.shipping_address"])
    with pytest.raises(InvalidEvent, match="NoneType"):
        gateway().verify_event({}, body(event), now=TS)


def _without(path: str) -> bytes:
    event = make_event()
    node: Any = event
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    del node[last]
    return body(event)


@pytest.mark.parametrize("raw, message", [
    (b"not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe", "not valid UTF-8 JSON"),
    (b"[1, 2]", "not a JSON object"),
    (body({**make_event(), "event": "nequi_token.updated"}), "unsupported event type"),
    (_without("data"), "'data' is missing"),
    (_without("signature"), "'signature' is missing"),
    (_without("signature.properties"), "signature.properties"),
    (body({**make_event(), "signature": {"properties": [], "checksum": APPROVED_CHECKSUM}}),
     "signature.properties"),
    (body({**make_event(), "signature": {"properties": [1], "checksum": APPROVED_CHECKSUM}}),
     "signature.properties"),
    (_without("signature.checksum"), "signature.checksum"),
    (_without("timestamp"), "'timestamp'"),
    (body({**make_event(), "timestamp": str(TS)}), "'timestamp'"),
    (body({**make_event(), "timestamp": True}), "'timestamp'"),
])
def test_malformed_events_are_rejected_with_a_precise_reason(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message):
        gateway().verify_event({}, raw, now=TS)


def test_signed_but_unparseable_transaction_is_rejected() -> None:
    # A correctly signed event whose transaction lacks the reference, or has an unknown status.
    event = make_event(properties=["transaction.id"])
    del event["data"]["transaction"]["reference"]
    raw_checksum = "1234-1610641025-49201" + str(TS) + EVENTS_SECRET
    event["signature"]["checksum"] = hashlib.sha256(raw_checksum.encode()).hexdigest()
    with pytest.raises(InvalidEvent, match="reference"):
        gateway().verify_event({}, body(event), now=TS)
    event["data"]["transaction"]["reference"] = "SV-REF-1"
    event["data"]["transaction"]["status"] = "WAITING"
    with pytest.raises(InvalidEvent, match="unknown Wompi status"):
        gateway().verify_event({}, body(event), now=TS)


# --- integrity signature of POST /transactions ------------------------------------------------

def test_integrity_signature_vectors() -> None:
    # "SV-2026-000123" + "15000000" + "COP" + "test_integrity_local"
    assert integrity_signature("SV-2026-000123", 15000000, "COP", "test_integrity_local") == (
        "037acb2de6c6a106c7f30a37afe0784eb31f223074cf2ef694f530eee1740e28")
    # ... + "2026-11-23T20:00:00.000Z" before the secret
    assert integrity_signature("SV-2026-000123", 15000000, "COP", "test_integrity_local",
                               "2026-11-23T20:00:00.000Z") == (
        "8395f9bd53b82e3576e332eeb27e985af05097545127d96a51ca8994d0f6257b")


def payment(**overrides: Any) -> PaymentRequest:
    fields: dict[str, Any] = dict(
        reference="SV-2026-000123", amount=150000, bank_code="1007", person_type="natural",
        payer_document_type="cc", payer_document_number="1020304050",
        payer_name="Ana María Pérez", payer_email="ana.perez@correo.example",
        payer_phone="3001234567", description='Cuota "crédito" | 123 y aportes sociales 2026',
        return_url="https://sv.example/pagos/retorno?ref=SV-2026-000123", ip="190.24.10.5")
    fields.update(overrides)
    return PaymentRequest(**fields)


def test_transaction_payload_is_wompis_pse_body() -> None:
    payload = gateway().build_transaction_payload(payment(), "acc-token", "pda-token")
    assert payload["amount_in_cents"] == 15000000
    assert payload["currency"] == "COP"
    assert payload["signature"] == "037acb2de6c6a106c7f30a37afe0784eb31f223074cf2ef694f530eee1740e28"
    assert payload["acceptance_token"] == "acc-token"
    assert payload["accept_personal_auth"] == "pda-token"
    assert payload["payment_method_type"] == "PSE"
    method = payload["payment_method"]
    assert method["type"] == "PSE" and method["user_type"] == 0
    assert method["user_legal_id_type"] == "CC" and method["user_legal_id"] == "1020304050"
    assert method["financial_institution_code"] == "1007"
    assert method["payment_description"] == "Cuota crédito 123 y aportes so"
    assert len(method["payment_description"]) <= 30
    assert payload["customer_data"] == {"full_name": "Ana María Pérez",
                                        "phone_number": "3001234567"}
    assert payload["redirect_url"].endswith("?ref=SV-2026-000123")
    assert payload["ip"] == "190.24.10.5"
    juridica = gateway().build_transaction_payload(
        payment(person_type="juridica", payer_document_type="NIT"), "a", "b")
    assert juridica["payment_method"]["user_type"] == 1


def test_description_is_cleaned_for_ach() -> None:
    assert clean_description('a|b"c\nd\te', "x") == "abc d e"
    assert clean_description('|""|', "Pago SV-1") == "Pago SV-1"
    assert len(clean_description("á" * 40, "x")) == 30


# --- statuses ---------------------------------------------------------------------------------

@pytest.mark.parametrize("wompi, ours", [
    ("PENDING", "PENDING"), ("APPROVED", "APPROVED"), ("DECLINED", "REJECTED"),
    ("VOIDED", "REJECTED"), ("ERROR", "FAILED"),
])
def test_status_mapping(wompi: str, ours: str) -> None:
    assert map_status(wompi) == ours


def test_status_mapping_is_complete_and_strict() -> None:
    assert set(STATUS_MAP) == {"PENDING", "APPROVED", "DECLINED", "VOIDED", "ERROR"}
    for unknown in ("approved", "EXPIRED", "", None):
        with pytest.raises(ValueError):
            map_status(unknown)  # type: ignore[arg-type]


def test_repr_never_shows_secrets() -> None:
    text = repr(gateway())
    assert "prv_" not in text and EVENTS_SECRET not in text and "integrity" not in text


def test_from_settings_reads_config_and_secrets_and_reuses_the_instance(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.gateways import wompi
    from chalicelib.config import Settings

    monkeypatch.setenv("GATEWAY_PRIVATE_KEY", "prv_test_unit")
    monkeypatch.setenv("GATEWAY_EVENTS_SECRET", EVENTS_SECRET)
    monkeypatch.setenv("GATEWAY_INTEGRITY_SECRET", "test_integrity_unit")
    env = {"GATEWAY_BASE_URL": "http://127.0.0.1:8050/v1/", "GATEWAY_PUBLIC_KEY": "pub_test_unit",
           "WEBHOOK_MAX_AGE_SECONDS": "60"}
    gw = wompi.from_settings(Settings.from_env(env))
    assert gw is wompi.from_settings(Settings.from_env(env))
    assert gw is not wompi.from_settings(Settings.from_env({**env, "WEBHOOK_MAX_AGE_SECONDS": "61"}))
    assert gw.name == "wompi" and "prv_" not in repr(gw)
    assert gw.verify_event({}, body(make_event()), now=TS + 60).event_id == APPROVED_CHECKSUM
    with pytest.raises(InvalidEvent, match="stale"):
        gw.verify_event({}, body(make_event()), now=TS + 61)
