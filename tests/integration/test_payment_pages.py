"""The payment pages without JavaScript: obligations → amounts → bank and summary → PSE → receipt."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_session_api import DOC, PASSWORD
from tests.page_support import Browser
from tests.payment_support import get_obligation, get_payment


@pytest.fixture
def member(client, make_member, make_obligation, gateway) -> Browser:  # type: ignore[no-untyped-def]
    make_member(DOC, password=PASSWORD)
    make_obligation("APO-1", type="APORTE", amount_due=80_000, minimum_amount=80_000, maximum_amount=80_000,
                    product_number="4001020304050", description="Aportes sociales noviembre")
    make_obligation("CRE-1", amount_due=850_000, minimum_amount=850_000, maximum_amount=12_400_000,
                    due_date="2026-11-15", product_number="880012345678", description="Crédito cuota 7/36")
    browser = Browser(client)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    return browser


def test_obligations_page_lists_what_is_owed(member: Browser) -> None:
    html = member.get("/obligaciones").body.decode()
    for text in ("Mis obligaciones", "Aportes", "Crédito", "$ 80.000", "$ 850.000", "$ 12.400.000",
                 "•••• 5678", "8 días en mora", "Pagar esta obligación"):
        assert text in html
    assert "880012345678" not in html  # long product numbers are masked


def test_pay_two_obligations_through_the_summary(member: Browser, gateway) -> None:  # type: ignore[no-untyped-def]
    summary = member.post("/pagos/resumen", {"obligacion": "APO-1", "opcion_APO-1": "due"},
                          csrf_from="/obligaciones")
    html = summary.body.decode()
    assert summary.status_code == 200
    assert "Pagar con PSE" in html and "A continuación seleccione su banco" in html
    assert re.search(r'<option value="" disabled selected>A continuación seleccione su banco</option>', html)
    assert "Persona natural" in html and "Persona jurídica" in html
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', html))
    paid = member.post("/pagos", {**fields, "bank_code": "1022", "person_type": "natural"})
    assert paid.status_code == 303
    assert paid.headers["Location"].startswith("https://banco.example/pse")
    reference = re.search(r"ref=([A-Z0-9]+)", paid.headers["Location"]).group(1)
    assert get_obligation("APO-1").pending_payment_id

    again = member.post("/pagos/resumen", {"obligacion": "APO-1"}, csrf_from="/obligaciones")
    assert "PENDIENTE" in again.body.decode()  # the pending rule, before the member picks a bank

    gateway.settle(reference, "APPROVED")
    payment_id = get_obligation("APO-1").pending_payment_id
    receipt = member.get(f"/pagos/{payment_id}/retorno").body.decode()
    for text in ("Comprobante de pago", "Aprobada", reference, "$ 80.000", "NIT 900.123.456-7",
                 "Aportes sociales noviembre", "Imprimir comprobante", "Finalizar"):
        assert text in receipt
    assert "Reintentar" not in receipt
    assert get_obligation("APO-1").amount_due == 0
    assert get_payment(payment_id).status == "APPROVED"
    history = member.get("/pagos").body.decode()
    assert reference in history and "Aprobada" in history


def test_other_amount_is_validated_in_spanish(member: Browser) -> None:
    response = member.post("/pagos/resumen", {"obligacion": "CRE-1", "opcion_CRE-1": "other",
                                              "otro_CRE-1": "12,5"}, csrf_from="/obligaciones")
    assert response.status_code == 400
    assert "Escriba el valor en pesos" in response.body.decode()
    too_much = member.post("/pagos/resumen", {"obligacion": "CRE-1", "opcion_CRE-1": "other",
                                              "otro_CRE-1": "99.000.000"}, csrf_from="/obligaciones")
    assert too_much.status_code == 400
    summary = member.post("/pagos/resumen", {"obligacion": "CRE-1", "opcion_CRE-1": "other",
                                             "otro_CRE-1": "$ 1.000.000"}, csrf_from="/obligaciones")
    assert summary.status_code == 200 and "$ 1.000.000" in summary.body.decode()


def test_nothing_chosen_and_bank_placeholder_refused(member: Browser) -> None:
    nothing = member.post("/pagos/resumen", {}, csrf_from="/obligaciones")
    assert "Marque al menos una obligación" in nothing.body.decode()
    summary = member.post("/pagos/resumen", {"obligacion": "APO-1"}, csrf_from="/obligaciones").body.decode()
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', summary))
    for bank in ("0", "", "9999"):
        refused = member.post("/pagos", {**fields, "bank_code": bank, "person_type": "natural"})
        assert refused.status_code == 400, bank
        assert "banco" in refused.body.decode().lower()


def test_rejected_payment_offers_retry(member: Browser, gateway) -> None:  # type: ignore[no-untyped-def]
    summary = member.post("/pagos/resumen", {"obligacion": "APO-1"}, csrf_from="/obligaciones").body.decode()
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', summary))
    paid = member.post("/pagos", {**fields, "bank_code": "1022", "person_type": "juridica"})
    reference = re.search(r"ref=([A-Z0-9]+)", paid.headers["Location"]).group(1)
    payment_id = get_obligation("APO-1").pending_payment_id
    gateway.settle(reference, "REJECTED")
    receipt = member.get(f"/pagos/{payment_id}/retorno").body.decode()
    assert "Rechazada" in receipt and "Reintentar el pago" in receipt
    assert get_obligation("APO-1").pending_payment_id is None


def test_return_page_works_without_a_session(member: Browser, client, gateway) -> None:  # type: ignore[no-untyped-def]
    summary = member.post("/pagos/resumen", {"obligacion": "APO-1"}, csrf_from="/obligaciones").body.decode()
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', summary))
    paid = member.post("/pagos", {**fields, "bank_code": "1022", "person_type": "natural"})
    reference = re.search(r"ref=([A-Z0-9]+)", paid.headers["Location"]).group(1)
    payment_id = get_obligation("APO-1").pending_payment_id
    anonymous = Browser(client)
    pending = anonymous.get(f"/pagos/{payment_id}/retorno?status=APPROVED&id=forjado").body.decode()
    assert "Pendiente" in pending and "verifique con su entidad financiera" in pending  # query ignored
    assert DOC not in pending  # the document is masked without a session
    gateway.settle(reference, "APPROVED")
    assert "Aprobada" in anonymous.get(f"/pagos/{payment_id}/retorno").body.decode()
    assert anonymous.get("/pagos/no-existe/retorno").status_code == 404


def test_payment_pages_need_a_session(client) -> None:  # type: ignore[no-untyped-def]
    browser = Browser(client)
    for path in ("/obligaciones", "/pagos"):
        assert browser.get(path).headers["Location"] == "/ingresar"
