"""Wompi's signatures and status mapping, checked against hand-computed vectors (no network).

Every expected hex below was computed once with
``hashlib.sha256("<the concatenation shown next to it>".encode()).hexdigest()``
from the formulas of reference/pse.md §3.1, not from the adapter.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from chalicelib.adapters.gateways.base import (
    ConsentDocument,
    IgnoredEvent,
    InvalidEvent,
    InvalidRequest,
    PaymentRequest,
    missing_documents,
)
from chalicelib.adapters.gateways.wompi import (
    STATUS_MAP,
    WompiGateway,
    clean_description,
    environment_of,
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
# "1234-1610641025-49201" + "SV-REF-1" + "DECLINED" + "4490000" + "1795446000" + "test_events_local"
# (properties transaction.id, transaction.reference, transaction.status,
# transaction.amount_in_cents, in that order)
DECLINED_CHECKSUM = "888fc72921cf87da4e9410abca60a6e59457ec01d8c6fcd00d3b79bb1ed4d1e5"
# "1234-1610641025-49201" + "DECLINED" + "4490000" + "1795446000" + "test_events_local"
DECLINED_PROPS_CHECKSUM = "06a07765e491e860979347c7c13548a7df0dc327ad671e7ed3397ea43f97977e"
# "1234-1610641025-49201" + "APPROVED" + "1795446000" + "test_events_local"
NO_AMOUNT_CHECKSUM = "6794c28c7a4cbac6d732c95bb4df0f02822e1a6451da6ef334e199a9f32c45e5"


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
    props = ["transaction.id", "transaction.reference", "transaction.status",
             "transaction.amount_in_cents"]
    event = make_event(status="DECLINED", properties=props, checksum=DECLINED_CHECKSUM)
    verified = gateway().verify_event({}, body(event), now=TS)
    assert verified.status == "REJECTED"
    reordered = make_event(status="DECLINED", properties=list(reversed(props)),
                           checksum=DECLINED_CHECKSUM)
    with pytest.raises(InvalidEvent, match="checksum does not match"):
        gateway().verify_event({}, body(reordered), now=TS)


# --- verify_event: accepted -------------------------------------------------------------------

def test_valid_event_is_verified_and_mapped() -> None:
    verified = gateway().verify_event({"Content-Type": "application/json"}, body(make_event()),
                                      now=TS + 10)
    assert (verified.gateway_id, verified.reference, verified.status, verified.amount,
            verified.sent_at) == ("1234-1610641025-49201", "SV-REF-1", "APPROVED", 44900, TS)


def test_uppercase_checksum_and_matching_header_are_accepted() -> None:
    event = make_event(checksum=APPROVED_CHECKSUM.upper())
    verified = gateway().verify_event({"x-event-checksum": APPROVED_CHECKSUM.upper()},
                                      body(event), now=TS)
    assert verified.status == "APPROVED"


def test_header_alone_is_enough_when_the_body_has_no_checksum() -> None:
    event = make_event(checksum=None)
    verified = gateway().verify_event({"X-Event-Checksum": APPROVED_CHECKSUM}, body(event), now=TS)
    assert verified.gateway_id == "1234-1610641025-49201"


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
    assert gw.verify_event({}, body(make_event()), now=TS + MAX_AGE).status == "APPROVED"
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
    event = make_event(properties=[*PROPS, "transaction.shipping_address"])
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
    (body({**make_event(), "event": 7}), "'event' is missing"),
    (body({k: v for k, v in make_event().items() if k != "event"}), "'event' is missing"),
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


def _signed(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with the checksum its own properties and values give (as the events secret would)."""
    event["signature"]["checksum"] = event_checksum(event["data"], event["signature"]["properties"],
                                                    event["timestamp"], EVENTS_SECRET)
    return event


@pytest.mark.parametrize("field, value, message", [
    ("status", "WAITING", "unknown Wompi status"),
    ("id", "1234 1610641025\r\n", "not a transaction id"),
    ("amount_in_cents", "4490000", "not a whole number"),
])
def test_signed_but_unparseable_transaction_is_rejected(field: str, value: Any, message: str) -> None:
    event = make_event()
    event["data"]["transaction"][field] = value
    with pytest.raises(InvalidEvent, match=message):
        gateway().verify_event({}, body(_signed(event)), now=TS)


def test_the_reference_is_only_a_hint_and_may_be_missing() -> None:
    event = make_event()
    del event["data"]["transaction"]["reference"]
    assert gateway().verify_event({}, body(_signed(event)), now=TS).reference == ""


# --- what the signature must cover, and nothing else is read ----------------------------------

@pytest.mark.parametrize("missing", PROPS)
def test_the_signature_must_cover_id_status_and_amount(missing: str) -> None:
    event = _signed(make_event(properties=[p for p in PROPS if p != missing]))
    with pytest.raises(InvalidEvent, match=f"does not cover {re.escape(missing)}"):
        gateway().verify_event({}, body(event), now=TS)


def test_hand_computed_vector_without_the_amount_is_refused() -> None:
    event = make_event(properties=["transaction.id", "transaction.status"], checksum=NO_AMOUNT_CHECKSUM)
    with pytest.raises(InvalidEvent, match=r"does not cover transaction\.amount_in_cents"):
        gateway().verify_event({}, body(event), now=TS)


def test_a_rebuilt_body_with_the_same_checksum_cannot_change_the_status() -> None:
    """A genuine DECLINED event rebuilt so that the signed concatenation is unchanged while the
    real ``status`` says APPROVED: the checksum matches, the signature no longer covers the status."""
    genuine = make_event(status="DECLINED", checksum=DECLINED_PROPS_CHECKSUM)
    assert gateway().verify_event({}, body(genuine), now=TS).status == "REJECTED"
    rebuilt = make_event(status="APPROVED", checksum=DECLINED_PROPS_CHECKSUM, properties=[
        "transaction.id", "transaction.note", "transaction.amount_in_cents"])
    rebuilt["data"]["transaction"]["note"] = "DECLINED"
    assert event_checksum(rebuilt["data"], rebuilt["signature"]["properties"], TS,
                          EVENTS_SECRET) == DECLINED_PROPS_CHECKSUM
    with pytest.raises(InvalidEvent, match=r"does not cover transaction\.status"):
        gateway().verify_event({}, body(rebuilt), now=TS)


def test_nothing_unsigned_leaves_the_adapter() -> None:
    event = make_event()
    event["data"]["transaction"]["payment_method"] = {"extra": {
        "async_payment_url": "https://banco-falso.example/pse", "traceability_code": "999",
        "bank_name": "BANCO FALSO"}}
    event["data"]["transaction"]["status_message"] = "Aprobada por el atacante"
    verified = gateway().verify_event({}, body(event), now=TS)  # unsigned: the checksum holds
    assert {f.name for f in dataclasses.fields(verified)} == {"gateway_id", "status", "amount", "sent_at",
                                                  "reference"}


def test_deep_or_large_bodies_are_invalid_events_not_crashes() -> None:
    deep = b'{"event": "transaction.updated", "data": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with pytest.raises(InvalidEvent, match="nested deeper"):
        gateway().verify_event({}, deep, now=TS)
    with pytest.raises(InvalidEvent, match="bytes"):
        gateway().verify_event({}, body({**make_event(), "pad": "x" * 70_000}), now=TS)


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
    assert "ip" not in payload  # undocumented: Wompi would take the server's address instead
    assert method["reference_one"] == "190.24.10.5"
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
    assert gw.verify_event({}, body(make_event()), now=TS + 60).status == "APPROVED"
    with pytest.raises(InvalidEvent, match="stale"):
        gw.verify_event({}, body(make_event()), now=TS + 61)


# --- known answers from published material ----------------------------------------------------

def test_integrity_signature_reproduces_wompis_widget_documentation_example() -> None:
    """The example of Wompi's "Widget & Checkout Web" documentation (step 3, integrity
    signature), as quoted in several public integrations' tests."""
    assert integrity_signature("sk8-438k4-xmxm392-sn2m", 2490000, "COP",
                               "prod_integrity_Z5mMke9x0k8gpErbDqwrJXMqsI6SFli6") == (
        "37c8407747e595535433ef8f6a811d853cd943046624a0ec04662b17bbf33bf5")


#: The delivery published in the unit tests of the WooCommerce plugin vlipco/woocommerce-wompi-plugin
#: (tests/unit-tests/responses/response.txt; its events secret is in tests/bootstrap.php).
PUBLISHED_SECRET = "test_events_XXXXXXXXXXXX"
PUBLISHED_DELIVERY: dict[str, Any] = {
    "event": "transaction.updated",
    "data": {"transaction": {
        "id": "11128-1578502783-84081", "created_at": "2020-01-08T16:59:43.138Z",
        "amount_in_cents": 5000, "reference": "12345", "customer_email": "admin@example.org",
        "currency": "COP", "payment_method_type": "CARD",
        "payment_method": {"type": "CARD", "extra": {
            "bin": "424242", "name": "VISA-4242", "brand": "VISA", "exp_year": "20",
            "exp_month": "10", "last_four": "4242", "external_identifier": "0vzOwDPzYo"},
            "token": "", "installments": 1},
        "status": "APPROVED", "status_message": None, "shipping_address": None, "redirect_url": "",
        "payment_source_id": None, "payment_link_id": None,
        "customer_data": {"full_name": "Name Surname", "phone_number": "+573007945529"},
        "bill_id": None,
    }},
    "timestamp": 1530291411,
    "signature": {"properties": ["transaction.id", "transaction.status",
                                 "transaction.amount_in_cents"],
                  "checksum": "8fb1e2fa0c36f9bbe1088a4b28fb19dfc04ccdb7b8ced48438ac2bee39e503f6"},
    "sent_at": "2020-01-08T16:59:43Z",
}


def test_event_checksum_reproduces_a_published_delivery() -> None:
    delivery = PUBLISHED_DELIVERY
    assert event_checksum(delivery["data"], delivery["signature"]["properties"],
                          delivery["timestamp"], PUBLISHED_SECRET) == delivery["signature"]["checksum"]
    gw = WompiGateway("http://wompi.invalid/v1", "pub_test_XXXXXXXXXXXX", "prv_test_XXXXXXXXXXXX",
                      PUBLISHED_SECRET, "test_integrity_x", max_event_age_seconds=MAX_AGE)
    # The published body predates the "environment" field real deliveries carry (it is unsigned).
    verified = gw.verify_event({}, body({**delivery, "environment": "test"}),
                               now=delivery["timestamp"])
    assert (verified.gateway_id, verified.status, verified.amount, verified.reference) == (
        "11128-1578502783-84081", "APPROVED", 50, "12345")


# --- events the engine does not act on, and the environment -----------------------------------

def test_a_genuine_event_of_another_type_is_ignored_not_invalid() -> None:
    event = _signed({**make_event(), "event": "nequi_token.updated",
                     "signature": {"properties": ["transaction.id"]}})
    with pytest.raises(IgnoredEvent) as ignored:
        gateway().verify_event({}, body(event), now=TS)
    assert not isinstance(ignored.value, InvalidEvent)
    assert ignored.value.event_type == "nequi_token.updated"
    forged = {**event, "signature": {"properties": ["transaction.id"], "checksum": "0" * 64}}
    with pytest.raises(InvalidEvent, match="checksum does not match"):
        gateway().verify_event({}, body(forged), now=TS)


def test_the_event_environment_must_be_the_stages() -> None:
    with pytest.raises(InvalidEvent, match="environment 'prod' is not this stage's 'test'"):
        gateway().verify_event({}, body({**make_event(), "environment": "prod"}), now=TS)
    missing = {k: v for k, v in make_event().items() if k != "environment"}
    with pytest.raises(InvalidEvent, match="environment"):
        gateway().verify_event({}, body(missing), now=TS)
    production = gateway(environment="prod")
    assert production.verify_event({}, body({**make_event(), "environment": "prod"}),
                                   now=TS).status == "APPROVED"
    with pytest.raises(InvalidEvent, match="environment 'test'"):
        production.verify_event({}, body(make_event()), now=TS)
    assert (environment_of("pub_prod_abc"), environment_of("pub_test_abc")) == ("prod", "test")
    with pytest.raises(ValueError):
        gateway(environment="staging")


# --- PSE's references for financial-services merchants ----------------------------------------

def test_the_pse_references_of_a_financial_services_merchant() -> None:
    from datetime import date

    payload = gateway().build_transaction_payload(
        payment(ip="190.24.10.5", product_opening_date=date(2019, 3, 7),
                beneficiary_document="79111222"), "a", "b")
    method = payload["payment_method"]
    assert (method["reference_one"], method["reference_two"], method["reference_three"]) == (
        "190.24.10.5", "20190307", "79111222")
    assert "ip" not in payload
    own = gateway().build_transaction_payload(payment(), "a", "b")["payment_method"]
    assert own["reference_three"] == "1020304050"  # the payer is the beneficiary by default
    assert "reference_two" not in own  # no opening date known: nothing invented


# --- request validation (before the payment is saved) -----------------------------------------

@pytest.mark.parametrize("changes, code, words", [
    ({"payer_email": ""}, "payer_email_missing", "correo electrónico"),
    ({"payer_email": "  "}, "payer_email_missing", "escriba uno"),
    ({"payer_phone": ""}, "payer_phone_missing", "celular"),
    ({"payer_document_type": "NIT"}, "document_type_not_allowed", "persona natural"),
    ({"person_type": "juridica", "payer_document_type": "CC"}, "document_type_not_allowed",
     "persona jurídica"),
    ({"bank_code": "0"}, "invalid_bank", "Seleccione su banco"),
    ({"bank_code": ""}, "invalid_bank", "Seleccione su banco"),
    ({"accepted_documents": ()}, "terms_not_accepted", "debe aceptar"),
])
def test_invalid_requests_are_refused_in_spanish_before_any_http(
        changes: dict[str, Any], code: str, words: str) -> None:
    gw = gateway()  # its HTTP client fails the test if called
    with pytest.raises(InvalidRequest) as refused:
        gw.validate_request(payment(**changes))
    assert refused.value.code == code and words in refused.value.message
    with pytest.raises(InvalidRequest):
        gw.create_transaction(payment(**changes))


def test_valid_requests_pass_validation() -> None:
    docs = tuple(ConsentDocument(id=i, title="t", url="https://x.example/t.pdf", version="v")
                 for i in ("end_user_policy", "personal_data_auth"))
    gateway().validate_request(payment(accepted_documents=docs))
    gateway().validate_request(payment(person_type="juridica", payer_document_type="nit"))
    for kind in ("CC", "CE", "TI", "PP"):
        gateway().validate_request(payment(payer_document_type=kind))
    assert missing_documents(docs, ["end_user_policy"]) == [docs[1]]


def test_the_stage_configures_the_environment_its_events_must_carry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.adapters.gateways import wompi
    from chalicelib.config import ConfigError, Settings

    monkeypatch.setenv("GATEWAY_PRIVATE_KEY", "prv_test_unit")
    monkeypatch.setenv("GATEWAY_EVENTS_SECRET", EVENTS_SECRET)
    monkeypatch.setenv("GATEWAY_INTEGRITY_SECRET", "test_integrity_unit")
    env = {"GATEWAY_PUBLIC_KEY": "pub_test_unit", "WEBHOOK_MAX_AGE_SECONDS": "60"}
    production = wompi.from_settings(Settings.from_env({**env, "WOMPI_ENVIRONMENT": "prod"}))
    with pytest.raises(InvalidEvent, match="environment 'test' is not this stage's 'prod'"):
        production.verify_event({}, body(make_event()), now=TS)
    by_key = wompi.from_settings(Settings.from_env(env))  # unset: the key's own environment
    assert by_key.verify_event({}, body(make_event()), now=TS).status == "APPROVED"
    with pytest.raises(ConfigError, match="WOMPI_ENVIRONMENT"):
        Settings.from_env({"WOMPI_ENVIRONMENT": "staging"})
