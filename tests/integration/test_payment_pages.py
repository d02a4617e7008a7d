"""The payment pages without JavaScript: obligations → amounts → bank and summary → PSE → receipt."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from chalicelib.context import Context
from chalicelib.domain import allocation
from chalicelib.domain.allocation import AllocationLine
from chalicelib.services import obligations, payments
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


def choose(member: Browser, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    """Post the obligations form; on success follow its redirect to the summary (post/redirect/get)."""
    response = member.post("/pagos/resumen", fields, csrf_from="/obligaciones")
    if response.status_code == 303:
        assert response.headers["Location"].startswith("/pagos/resumen?")
        return member.get(response.headers["Location"])
    return response


def test_obligations_page_lists_what_is_owed(member: Browser) -> None:
    html = member.get("/obligaciones").body.decode()
    for text in ("Mis obligaciones", "Aportes", "Crédito", "$ 80.000", "$ 850.000", "$ 12.400.000",
                 "•••• 5678", "8 días en mora", "¿Cuánto desea pagar?"):
        assert text in html
    assert "880012345678" not in html  # long product numbers are masked


def test_pay_two_obligations_through_the_summary(member: Browser, gateway) -> None:  # type: ignore[no-untyped-def]
    summary = choose(member, {"opcion_APO-1": "due"})
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

    again = choose(member, {"opcion_APO-1": "due"})
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
    response = choose(member, {"opcion_CRE-1": "other",
                                              "otro_CRE-1": "12,5"})
    assert response.status_code == 400
    assert "Escriba el valor en pesos" in response.body.decode()
    too_much = choose(member, {"opcion_CRE-1": "other",
                                              "otro_CRE-1": "99.000.000"})
    assert too_much.status_code == 400
    summary = choose(member, {"opcion_CRE-1": "other",
                                             "otro_CRE-1": "$ 1.000.000"})
    assert summary.status_code == 200 and "$ 1.000.000" in summary.body.decode()


def test_nothing_chosen_and_bank_placeholder_refused(member: Browser) -> None:
    nothing = choose(member, {})
    assert "Elija cuánto pagar en al menos una obligación" in nothing.body.decode()
    summary = choose(member, {"opcion_APO-1": "due"}).body.decode()
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', summary))
    for bank in ("0", "", "9999"):
        refused = member.post("/pagos", {**fields, "bank_code": bank, "person_type": "natural"})
        assert refused.status_code == 400, bank
        assert "banco" in refused.body.decode().lower()


def test_rejected_payment_offers_retry(member: Browser, gateway) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import Member

    company = Member.get(DOC)  # PSE takes a NIT, and only a NIT, from a persona jurídica
    company.update(actions=[Member.document_type.set("NIT")])
    summary = choose(member, {"opcion_APO-1": "due"}).body.decode()
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', summary))
    paid = member.post("/pagos", {**fields, "bank_code": "1022", "person_type": "juridica"})
    reference = re.search(r"ref=([A-Z0-9]+)", paid.headers["Location"]).group(1)
    payment_id = get_obligation("APO-1").pending_payment_id
    gateway.settle(reference, "REJECTED")
    receipt = member.get(f"/pagos/{payment_id}/retorno").body.decode()
    assert "Rechazada" in receipt
    retry = re.search(r'<a class="button" href="([^"]+)">Intentar de nuevo</a>', receipt).group(1)
    assert retry == "/pagos/resumen?otro_APO-1=80000"  # the main action, with the same items
    assert get_obligation("APO-1").pending_payment_id is None
    again = member.get(retry).body.decode()
    assert "Resumen del pago" in again and 'name="item_0_amount" value="80000"' in again
    assert '<option value="1022" selected>' in again  # the last bank, remembered for the member
    assert 'value="juridica" checked' in again


def test_consultar_estado_asks_the_gateway_and_is_throttled(member: Browser, gateway) -> None:  # type: ignore[no-untyped-def]
    summary = choose(member, {"opcion_APO-1": "due"}).body.decode()
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', summary))
    member.post("/pagos", {**fields, "bank_code": "1022", "person_type": "natural"})
    payment_id = get_obligation("APO-1").pending_payment_id
    pending = member.get(f"/pagos/{payment_id}").body.decode()
    for text in ("Qué pasa ahora", "No pague de nuevo", "Le avisaremos por correo",
                 "podrá pagar de nuevo a partir de las", 'href="tel:6017450000"', "Consultar estado"):
        assert text in pending, text
    for _ in range(3):
        asked = member.post(f"/pagos/{payment_id}/consultar", {}, csrf_from=f"/pagos/{payment_id}")
        assert asked.headers["Location"] == f"/pagos/{payment_id}?consulta=pending"
    assert "el pago sigue pendiente" in member.get(f"/pagos/{payment_id}?consulta=pending").body.decode()
    throttled = member.post(f"/pagos/{payment_id}/consultar", {}, csrf_from=f"/pagos/{payment_id}")
    assert throttled.headers["Location"] == f"/pagos/{payment_id}?consulta=wait"
    gateway.settle(get_payment(payment_id).reference, "APPROVED")
    assert "Aprobada" in member.get(f"/pagos/{payment_id}/retorno").body.decode()


def test_return_page_works_without_a_session(member: Browser, client, gateway) -> None:  # type: ignore[no-untyped-def]
    summary = choose(member, {"opcion_APO-1": "due"}).body.decode()
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


# --- how a loan payment is applied -----------------------------------------------------

CREDIT_PARTS = {"late_interest": 6_800, "insurance": 14_200, "interest": 186_000, "capital": 643_000}


def give_parts(obligation_id: str = "CRE-1", parts: dict[str, int] | None = None) -> None:
    obligation = get_obligation(obligation_id)
    obligation.instalment_parts = CREDIT_PARTS if parts is None else parts
    obligation.save()


def allocation_rows(html: str, caption: str) -> list[tuple[str, str]]:
    """The (concept, amount) rows of the allocation table whose caption contains ``caption``."""
    table = re.search(r'<table class="allocation">\s*<caption>[^<]*' + re.escape(caption)
                      + r"[^<]*</caption>(.*?)</table>", html, re.S)
    assert table, f"no allocation table for {caption!r}"
    return re.findall(r'<tr><th scope="row">([^<]+)</th><td class="amount">([^<]+)</td></tr>',
                      table.group(1))


def test_the_obligations_page_details_the_instalment(member: Browser) -> None:
    give_parts()
    html = member.get("/obligaciones").body.decode()
    assert "<summary>Detalle de la cuota</summary>" in html
    assert allocation_rows(html, "Crédito cuota 7/36") == [
        ("Intereses de mora", "$ 6.800"), ("Seguros", "$ 14.200"),
        ("Intereses corrientes", "$ 186.000"), ("Capital", "$ 643.000"), ("Total", "$ 850.000")]
    assert html.count("Detalle de la cuota</summary>") == 1  # only obligations with parts


SPLIT_1_000_000 = [("Intereses de mora", "$ 6.800"), ("Seguros", "$ 14.200"),
                   ("Intereses corrientes", "$ 186.000"), ("Capital", "$ 643.000"),
                   ("Abono extraordinario a capital", "$ 150.000"), ("Total", "$ 1.000.000")]


def summary_for_credit(member: Browser, amount: str) -> str:
    response = choose(member, {"opcion_CRE-1": "other",
                                              "otro_CRE-1": amount})
    assert response.status_code == 200
    return response.body.decode()


def test_the_summary_shows_how_a_credit_payment_will_be_applied(member: Browser) -> None:
    assert "Así se aplicará su pago" not in summary_for_credit(member, "1.000.000")  # no parts yet
    give_parts()
    html = summary_for_credit(member, "1.000.000")
    assert '<h2 id="aplicacion">Así se aplicará su pago</h2>' in html
    assert "según el orden de aplicación de la cooperativa" in html
    assert allocation_rows(html, "Crédito · Crédito cuota 7/36") == SPLIT_1_000_000


def other_order(ctx):  # type: ignore[no-untyped-def]
    """The context of a cooperative that applies payments to capital first."""
    return Context(replace(ctx.settings, allocation_order=allocation.parse_order(
        "capital,interest,insurance,fees,late_interest")))


def test_a_partial_payment_and_another_order(member: Browser, ctx) -> None:  # type: ignore[no-untyped-def]
    give_parts()
    item = get_obligation("CRE-1")
    item.minimum_amount = 100_000
    item.save()
    html = choose(member, {"opcion_CRE-1": "minimum"}).body.decode()
    assert allocation_rows(html, "Crédito cuota 7/36") == [
        ("Intereses de mora", "$ 6.800"), ("Seguros", "$ 14.200"), ("Intereses corrientes", "$ 79.000"),
        ("Total", "$ 100.000")]
    (preview,) = payments.preview_payment(other_order(ctx), document_number=DOC,
                                          items=[("CRE-1", 100_000)]).lines
    assert preview.allocation == (AllocationLine("capital", 100_000),)
    (credit,) = [o for o in obligations.list_obligations(other_order(ctx), DOC) if o.id == "CRE-1"]
    assert [line.label for line in credit.breakdown] == [
        "Capital", "Intereses corrientes", "Seguros", "Intereses de mora"]


def pay_from(member: Browser, summary: str) -> str:
    """Pay the summary's items; the new payment's id."""
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', summary))
    assert member.post("/pagos", {**fields, "bank_code": "1022", "person_type": "natural"}).status_code == 303
    return get_obligation("CRE-1").pending_payment_id


def test_the_receipt_keeps_the_allocation_of_the_moment_of_payment(member: Browser, gateway,  # type: ignore[no-untyped-def]
                                                                    ctx) -> None:
    give_parts()
    payment_id = pay_from(member, summary_for_credit(member, "1.000.000"))
    pending = member.get(f"/pagos/{payment_id}").body.decode()
    assert "Así se aplicará su pago a cada crédito cuando el banco lo apruebe" in pending
    assert allocation_rows(pending, "Crédito cuota 7/36") == SPLIT_1_000_000

    gateway.settle(get_payment(payment_id).reference, "APPROVED")
    approved = member.get(f"/pagos/{payment_id}/retorno").body.decode()
    assert "Así se aplicó su pago a cada crédito, según el orden de aplicación de la cooperativa" in approved
    assert allocation_rows(approved, "Crédito cuota 7/36") == SPLIT_1_000_000
    # The balance went down by the instalment: nothing of it is left to detail.
    assert "Detalle de la cuota</summary>" not in member.get("/obligaciones").body.decode()

    # A new import's parts and another order never change a past receipt.
    give_parts(parts={"capital": 5})
    assert allocation_rows(member.get(f"/pagos/{payment_id}").body.decode(),
                           "Crédito cuota 7/36") == SPLIT_1_000_000
    receipt = payments.receipt(other_order(ctx), payment_id, document_number=DOC)
    assert receipt.items[0].allocation[0].label == "Intereses de mora"


def test_a_refused_payment_shows_no_allocation(member: Browser, gateway) -> None:  # type: ignore[no-untyped-def]
    give_parts()
    payment_id = pay_from(member, summary_for_credit(member, "850.000"))
    gateway.settle(get_payment(payment_id).reference, "REJECTED")
    receipt = member.get(f"/pagos/{payment_id}/retorno").body.decode()
    assert "Rechazada" in receipt and "Aplicación del pago" not in receipt


def test_payments_since_the_cutoff_are_taken_off_the_parts(member: Browser) -> None:
    """A portal payment lowered the balance after the core's cut-off: the parts it covered, in
    order, are no longer owed."""
    give_parts()
    item = get_obligation("CRE-1")
    item.amount_due, item.minimum_amount = 750_000, 100_000
    item.save()
    html = member.get("/obligaciones").body.decode()
    assert allocation_rows(html, "Crédito cuota 7/36") == [
        ("Intereses corrientes", "$ 107.000"), ("Capital", "$ 643.000"), ("Total", "$ 750.000")]
    summary = summary_for_credit(member, "200.000")
    assert allocation_rows(summary, "Crédito cuota 7/36") == [
        ("Intereses corrientes", "$ 107.000"), ("Capital", "$ 93.000"), ("Total", "$ 200.000")]


# --- choosing what to pay: one control per obligation that cannot disagree with itself ---------

def test_a_typed_amount_is_the_amount_paid_whatever_radio_is_left(member: Browser) -> None:
    html = choose(member, {"opcion_CRE-1": "due", "otro_CRE-1": "900.000"}).body.decode()
    assert "$ 900.000" in html and "$ 850.000" not in html
    assert 'name="item_0_amount" value="900000"' in html


def test_nothing_is_chosen_until_the_member_chooses(member: Browser) -> None:
    html = member.get("/obligaciones").body.decode()
    assert " checked" not in html.split('data-selection', 1)[1]
    assert "Total elegido: <strong data-total aria-live=\"polite\">$ 0</strong>" in html


def test_amount_errors_are_summarised_and_marked_at_the_field(member: Browser) -> None:
    html = choose(member, {"opcion_APO-1": "due", "otro_CRE-1": "99.000.000"}).body.decode()
    summary = re.search(r'<div class="error-summary".*?</div>', html, re.S).group(0)
    assert 'href="#otro-1"' in summary and "debe estar entre" in summary  # the credit is first
    assert re.search(r'id="otro-1-error"><span class="visually-hidden">Error: </span>El valor', html)
    assert re.search(r'id="otro-1"[^>]*value="99.000.000"[^>]*aria-invalid="true"', html, re.S)
    assert 'id="pagar-2-due" name="opcion_APO-1" value="due" data-amount="80000" checked' in html


@pytest.mark.parametrize("amount", ["²", "١٠٠٠٠٠", "1_000", "-5", ""])
def test_the_summary_form_refuses_odd_amounts_without_a_500(member: Browser, amount: str) -> None:
    summary = choose(member, {"opcion_APO-1": "due"}).body.decode()
    fields = dict(re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', summary))
    refused = member.post("/pagos", {**fields, "item_0_amount": amount, "bank_code": "1022",
                                     "person_type": "natural"})
    assert refused.status_code == 400
    assert "Escriba el valor" in refused.body.decode() or "mayor que cero" in refused.body.decode()
    assert get_obligation("APO-1").pending_payment_id is None


def test_back_from_the_summary_keeps_the_selection(member: Browser) -> None:
    summary = choose(member, {"opcion_APO-1": "due", "otro_CRE-1": "$ 1.000.000"}).body.decode()
    back = re.search(r'href="(/obligaciones\?[^"]+)">Volver', summary).group(1).replace("&amp;", "&")
    html = member.get(back).body.decode()
    assert 'value="due" data-amount="80000" checked' in html
    assert re.search(r'id="otro-1"[^>]*value="1000000"', html, re.S)
    assert "Total elegido: <strong data-total aria-live=\"polite\">$ 1.080.000</strong>" in html


def test_the_summary_without_a_selection_goes_to_the_obligations(member: Browser) -> None:
    assert member.get("/pagos/resumen").headers["Location"] == "/obligaciones"
    gone = member.get("/pagos/resumen?opcion_NO-EXISTE=due").body.decode()
    assert "ya no está disponible" in gone
