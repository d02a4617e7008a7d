"""The payments JSON API of SPEC §6 through chalice's test client, signed in through the API."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.payment_support import assert_error, get_obligation, get_payment

PASSWORD = "caballo bateria grapa correcta"
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}-05:00$")
JSON = {"Content-Type": "application/json"}


@dataclass
class Member:
    client: Any
    cookie: str
    csrf: str

    def get(self, path: str) -> Any:
        return self.client.http.get(path, headers={"Cookie": self.cookie})

    def post(self, path: str, body: Any, *, key: str | None = "key-1", csrf: bool = True,
             raw: bytes | None = None) -> Any:
        headers = {**JSON, "Cookie": self.cookie}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        if key is not None:
            headers["Idempotency-Key"] = key
        payload = raw if raw is not None else json.dumps(body).encode()
        return self.client.http.post(path, headers=headers, body=payload)

    def pay(self, items: list[dict[str, Any]] | None = None, *, key: str = "key-1",
            bank_code: Any = "1022", person_type: Any = "natural") -> Any:
        body = {"items": items if items is not None else [{"obligation_id": "CR-0001", "amount": 150_000}],
                "bank_code": bank_code, "person_type": person_type}
        return self.post("/api/v1/payments", body, key=key)


def sign_in(client, document_number: str) -> Member:  # type: ignore[no-untyped-def]
    ticket = client.http.post("/api/v1/session/identify", headers=JSON,
                              body=json.dumps({"document_number": document_number})).json_body["login_ticket"]
    response = client.http.post("/api/v1/session", headers=JSON,
                                body=json.dumps({"login_ticket": ticket, "password": PASSWORD}))
    assert response.status_code == 201, response.body
    cookies = response.headers["Set-Cookie"]
    cookie = next(c for c in (cookies if isinstance(cookies, list) else [cookies])
                  if c.startswith("sv_session="))
    return Member(client, cookie.split(";")[0], response.json_body["csrf_token"])


@pytest.fixture
def ana(client, make_member, make_obligation, gateway) -> Member:  # type: ignore[no-untyped-def]
    make_member(password=PASSWORD)
    make_obligation()
    return sign_in(client, "1020304050")


# --- reading -------------------------------------------------------------------------------------

def test_obligations_shape(ana: Member) -> None:
    response = ana.get("/api/v1/obligations")
    assert response.status_code == 200
    (obligation,) = response.json_body["obligations"]
    assert obligation == {
        "id": "CR-0001", "type": "CREDITO", "type_label": "Crédito", "product_number": "•••• 1234",
        "description": "Crédito de libre inversión", "due_date": "2026-11-30", "overdue_days": 0,
        "amount_due": 150_000, "minimum_amount": 50_000, "maximum_amount": 900_000,
        "pending_payment_id": None, "pending_reference": None, "instalment_parts": None,
    }


def test_instalment_parts_and_their_allocation(ana: Member, gateway) -> None:  # type: ignore[no-untyped-def]
    obligation = get_obligation("CR-0001")
    obligation.instalment_parts = {"capital": 100_000, "interest": 40_000, "late_interest": 10_000}
    obligation.save()
    (listed,) = ana.get("/api/v1/obligations").json_body["obligations"]
    assert listed["instalment_parts"] == [
        {"part": "late_interest", "label": "Intereses de mora", "amount": 10_000},
        {"part": "interest", "label": "Intereses corrientes", "amount": 40_000},
        {"part": "capital", "label": "Capital", "amount": 100_000},
    ]
    created = ana.pay([{"obligation_id": "CR-0001", "amount": 170_000}]).json_body["payment"]
    (item,) = ana.get(f"/api/v1/payments/{created['id']}").json_body["items"]
    assert [(line["part"], line["amount"]) for line in item["allocation"]] == [
        ("late_interest", 10_000), ("interest", 40_000), ("capital", 100_000), ("extra_capital", 20_000)]


def test_banks_shape_without_the_placeholder(ana: Member) -> None:
    response = ana.get("/api/v1/banks")
    assert response.status_code == 200
    assert response.json_body == {"banks": [{"code": "1022", "name": "BANCO UNION COLOMBIANO"},
                                            {"code": "1507", "name": "NEQUI"},
                                            {"code": "1", "name": "BANCO QUE APRUEBA"}]}


def test_banks_unavailable_is_503_with_achs_text(ana: Member, gateway) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.gateways.base import GatewayError

    gateway.banks_error = GatewayError("caída")
    error = assert_error(ana.get("/api/v1/banks"), 503, "banks_unavailable")
    assert error["message"] == ("No se pudo obtener la lista de Entidades Financieras, por favor "
                                "intente más tarde")


@pytest.mark.parametrize("path", ["/api/v1/obligations", "/api/v1/banks", "/api/v1/payments",
                                  "/api/v1/payments/AAAAAAAAAAAAAAAAAAAAAA"])
def test_reading_needs_a_session(client, gateway, path: str) -> None:  # type: ignore[no-untyped-def]
    assert_error(client.http.get(path), 401, "unauthenticated")


# --- paying --------------------------------------------------------------------------------------

def test_create_payment_shape_and_replay(ana: Member, gateway) -> None:  # type: ignore[no-untyped-def]
    response = ana.pay()
    assert response.status_code == 201, response.body
    payment = response.json_body["payment"]
    assert set(payment) == {"id", "reference", "status", "amount", "redirect_url"}
    assert payment["status"] == "PENDING" and payment["amount"] == 150_000
    assert payment["redirect_url"].startswith("https://banco.example/")
    again = ana.pay()
    assert (again.status_code, again.json_body) == (201, response.json_body)
    assert gateway.count("create_transaction") == 1
    conflict = ana.pay([{"obligation_id": "CR-0001", "amount": 60_000}])
    assert_error(conflict, 409, "idempotency_conflict")
    request = gateway.calls[-1][1]
    assert request.ip == "127.0.0.1"


def test_pending_rule_is_409_with_achs_text_and_cus(ana: Member) -> None:
    first = ana.pay(key="a").json_body["payment"]
    error = assert_error(ana.pay(key="b"), 409, "payment_pending")
    cus = get_payment(first["id"]).cus
    assert error["message"].startswith(f"En este momento su #{first['reference']} presenta")
    assert error["message"].endswith(f"preguntar por el estado de la transacción: {cus}")
    assert (error["cus"], error["reference"]) == (cus, first["reference"])
    listed = ana.get("/api/v1/obligations").json_body["obligations"][0]
    assert (listed["pending_payment_id"], listed["pending_reference"]) == (first["id"], first["reference"])


def test_payment_needs_csrf_and_an_idempotency_key(ana: Member) -> None:
    body = {"items": [{"obligation_id": "CR-0001", "amount": 150_000}], "bank_code": "1022",
            "person_type": "natural"}
    assert_error(ana.post("/api/v1/payments", body, csrf=False), 403, "csrf_failed")
    for key in (None, "", "x" * 129, "tiene espacios", "ñ"):
        assert_error(ana.post("/api/v1/payments", body, key=key), 400, "invalid_idempotency_key")
    assert get_obligation("CR-0001").pending_payment_id is None


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'"items"', b"\xff\xfe"])
def test_unreadable_bodies_are_400(ana: Member, raw: bytes) -> None:
    assert_error(ana.post("/api/v1/payments", None, raw=raw), 400, "invalid_request")


@pytest.mark.parametrize("items", [None, [], "CR-0001", [1, 2], [{"amount": 150_000}],
                                   [{"obligation_id": 5, "amount": 150_000}],
                                   [{"obligation_id": "CR-0001", "amount": 1}] * 51])
def test_malformed_items_are_400(ana: Member, items: Any) -> None:
    response = ana.post("/api/v1/payments", {"items": items, "bank_code": "1022", "person_type": "natural"})
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("amount", ["150000", "150.000", -150_000, 0, 1500.5, 150000.0, 10**20, True,
                                    None, {"v": 1}])
def test_bad_amounts_are_invalid_amount(ana: Member, amount: Any) -> None:
    error = assert_error(ana.pay([{"obligation_id": "CR-0001", "amount": amount}]), 400, "invalid_amount")
    assert re.search(r"[áéíóúñ]|valor|pesos|total", error["message"])


def test_huge_json_number_is_invalid_amount_not_500(ana: Member) -> None:
    raw = (b'{"items": [{"obligation_id": "CR-0001", "amount": 1e400}], "bank_code": "1022", '
           b'"person_type": "natural"}')
    assert_error(ana.post("/api/v1/payments", None, raw=raw), 400, "invalid_amount")


def test_unknown_and_foreign_obligations_are_404(ana: Member, make_obligation) -> None:  # type: ignore[no-untyped-def]
    make_obligation("THEIRS", document_number="999999")
    for oid in ("NOPE", "THEIRS", "x" * 64):
        assert_error(ana.pay([{"obligation_id": oid, "amount": 150_000}]), 404, "obligation_not_found")
    assert get_obligation("THEIRS", "999999").pending_payment_id is None


@pytest.mark.parametrize("bank_code", ["0", "9999", "", None, 1022])
def test_bad_banks_are_invalid_bank(ana: Member, bank_code: Any) -> None:
    assert_error(ana.pay(bank_code=bank_code), 400, "invalid_bank")


@pytest.mark.parametrize("person_type", ["empresa", "", None, 0])
def test_bad_person_types_are_400(ana: Member, person_type: Any) -> None:
    error = assert_error(ana.pay(person_type=person_type), 400, "invalid_request")
    assert error["field"] == "person_type"


def test_gateway_refusal_is_502_in_spanish(ana: Member, gateway) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.gateways.base import GatewayError

    gateway.create_error = GatewayError("No se pudo crear la transacción, por favor intente más tarde "
                                        "o comuníquese con la empresa")
    error = assert_error(ana.pay(), 502, "gateway_error")
    assert error["message"].startswith("No se pudo crear la transacción")


def test_timeout_answers_created_without_redirect(ana: Member, gateway) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.gateways.base import GatewayTimeout

    gateway.create_error = GatewayTimeout("lento")
    response = ana.pay()
    assert response.status_code == 201
    assert (response.json_body["payment"]["status"], response.json_body["payment"]["redirect_url"]) == (
        "CREATED", None)


# --- receipts ---------------------------------------------------------------------------------------

RECEIPT_FIELDS = {"id", "reference", "status", "amount", "cus", "bank_name", "created_at", "updated_at",
                  "description", "ip", "items"}


def test_payment_and_history_shapes(ana: Member, gateway, clock) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.services import payments

    created = ana.pay().json_body["payment"]
    gateway.settle(created["reference"], "APPROVED")
    from chalicelib.context import get_context

    payments.refresh_payment(get_context(), created["id"])
    receipt = ana.get(f"/api/v1/payments/{created['id']}")
    assert receipt.status_code == 200
    body = receipt.json_body
    assert set(body) >= RECEIPT_FIELDS
    assert (body["status"], body["status_label"], body["amount"]) == ("APPROVED", "Aprobada", 150_000)
    assert body["cus"] and body["bank_name"] == "BANCO UNION COLOMBIANO"
    assert body["ip"] == "127.0.0.1" and body["payer_document"] == "1020304050"
    for name in ("created_at", "updated_at", "approved_at"):
        assert ISO_WITH_OFFSET.match(body[name]), body[name]
    assert body["items"] == [{"obligation_id": "CR-0001", "type_label": "Crédito",
                              "product_number": "•••• 1234", "description": "Crédito de libre inversión",
                              "amount": 150_000, "allocation": []}]
    assert [t["status_label"] for t in body["timeline"]] == ["Iniciada", "Pendiente", "Aprobada"]
    history = ana.get("/api/v1/payments")
    assert history.status_code == 200
    assert [p["id"] for p in history.json_body["payments"]] == [created["id"]]
    assert history.json_body["payments"][0] == body


def test_another_members_payment_is_404(ana: Member, client, make_member) -> None:  # type: ignore[no-untyped-def]
    created = ana.pay().json_body["payment"]
    make_member("5556667778", password=PASSWORD, email="otro@correo.example")
    other = sign_in(client, "5556667778")
    assert_error(other.get(f"/api/v1/payments/{created['id']}"), 404, "payment_not_found")
    assert other.get("/api/v1/payments").json_body == {"payments": []}
    for bad in ("x", "A" * 100, "%00", "..%2F..%2Fetc"):
        assert_error(ana.get(f"/api/v1/payments/{bad}"), 404, "payment_not_found")


def test_openapi_describes_the_payment_calls(client) -> None:  # type: ignore[no-untyped-def]
    document = client.http.get("/api/v1/openapi.json").json_body
    for path in ("/api/v1/obligations", "/api/v1/banks", "/api/v1/payments", "/api/v1/payments/{payment_id}",
                 "/webhooks/pse"):
        assert path in document["paths"], path
    assert set(document["paths"]["/api/v1/payments"]) == {"get", "post"}
