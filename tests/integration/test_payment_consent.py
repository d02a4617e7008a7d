"""The gateway's consent and checks at the edge: the payment-terms API, the acceptance stored with
the payment and passed to the gateway, the payer's checks before anything is saved, a gateway that
chooses the bank, the webhook path per gateway, and the pages (summary, payment, return).

Two fake gateways run at once: "wompi" (asks for two documents, the member picks the bank) and
"placetopay" (no documents, its page chooses the bank); ``GATEWAY`` says where new payments go.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.adapters.gateways.base import ConsentDocument, IgnoredEvent
from chalicelib.config import Settings
from tests.integration.test_payments_api import JSON, PASSWORD, Member, sign_in
from tests.page_support import FORM, Browser
from tests.payment_support import FakeGateway, assert_error, get_obligation, get_payment

DOC = "1020304050"
UA = "Mozilla/5.0 (X11; Linux x86_64) Pruebas/1.0"
DOCUMENTS = [
    ConsentDocument("end_user_policy", "Reglamento de uso de la pasarela",
                    "https://pasarela.example/reglamento.pdf", "token-reglamento-7"),
    ConsentDocument("personal_data_auth", "Autorización de tratamiento de datos personales",
                    "https://pasarela.example/datos.pdf", "token-datos-7"),
]
ALL_IDS = [d.id for d in DOCUMENTS]


@dataclass
class Gateways:
    wompi: FakeGateway
    placetopay: FakeGateway
    monkeypatch: pytest.MonkeyPatch

    def configure(self, name: str) -> None:
        """``GATEWAY=name``: new payments start there; every context sees it."""
        self.monkeypatch.setenv("GATEWAY", name)


@pytest.fixture
def gateways(aws, monkeypatch: pytest.MonkeyPatch) -> Gateways:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.gateways import registry

    wompi = FakeGateway("wompi")
    wompi.consent_documents = list(DOCUMENTS)
    placetopay = FakeGateway("placetopay", chooses_bank=True)
    by_name = {"wompi": wompi, "placetopay": placetopay}

    def gateway_for(settings: Any, name: str | None = None) -> FakeGateway:
        configured = settings if isinstance(settings, Settings) else settings.settings
        return by_name[name or configured.gateway]

    monkeypatch.setattr(registry, "gateway_for", gateway_for)
    handle = Gateways(wompi, placetopay, monkeypatch)
    handle.configure("wompi")
    return handle


@pytest.fixture
def ana(client, make_member, make_obligation, gateways: Gateways) -> Member:  # type: ignore[no-untyped-def]
    make_member(password=PASSWORD)
    make_obligation()
    return sign_in(client, DOC)


def pay(member: Member, *, accepted: list[str] | None = None, key: str = "key-1",
        **fields: Any) -> Any:
    body: dict[str, Any] = {"items": [{"obligation_id": "CR-0001", "amount": 150_000}],
                            "bank_code": "1022", "person_type": "natural", **fields}
    if accepted is not None:
        body["accepted_documents"] = accepted
    headers = {**JSON, "Cookie": member.cookie, "X-CSRF-Token": member.csrf, "Idempotency-Key": key,
               "User-Agent": UA}
    return member.client.http.post("/api/v1/payments", headers=headers, body=json.dumps(body).encode())


def nothing_saved(gateway: FakeGateway) -> None:
    from chalicelib.adapters.dynamo.models import Payment

    assert list(Payment.scan()) == []
    assert get_obligation("CR-0001").pending_payment_id is None
    assert gateway.count("create_transaction") == 0


# --- JSON API ------------------------------------------------------------------------------------

def test_payment_terms_list_the_documents_of_new_payments_gateway(ana: Member,
                                                                  gateways: Gateways) -> None:
    response = ana.get("/api/v1/payment-terms")
    assert response.status_code == 200
    assert response.json_body == {"gateway": "wompi", "documents": [
        {"id": d.id, "title": d.title, "url": d.url} for d in DOCUMENTS]}
    gateways.configure("placetopay")
    assert ana.get("/api/v1/payment-terms").json_body == {"gateway": "placetopay", "documents": []}


def test_payment_terms_need_a_session(client, gateways: Gateways) -> None:  # type: ignore[no-untyped-def]
    assert_error(client.http.get("/api/v1/payment-terms"), 401, "unauthenticated")


@pytest.mark.parametrize("accepted", [None, [], ["end_user_policy"], "end_user_policy",
                                      [{"id": "end_user_policy"}, "personal_data_auth"]])
def test_a_payment_without_every_document_accepted_is_refused_before_saving(
        ana: Member, gateways: Gateways, accepted: Any) -> None:
    error = assert_error(pay(ana, accepted=accepted), 400, "terms_not_accepted")
    assert "Para pagar debe leer y aceptar" in error["message"]
    assert "«Reglamento de uso de la pasarela»" in error["message"] or accepted == ["end_user_policy"]
    nothing_saved(gateways.wompi)


def test_the_acceptance_is_stored_with_the_payment_and_sent_to_the_gateway(
        ana: Member, gateways: Gateways, clock) -> None:  # type: ignore[no-untyped-def]
    response = pay(ana, accepted=[*reversed(ALL_IDS), "otro"])
    assert response.status_code == 201, response.body
    payment = get_payment(response.json_body["payment"]["id"])
    assert payment.consent == {
        "documents": [{"id": d.id, "title": d.title, "url": d.url, "version": d.version}
                      for d in DOCUMENTS],
        "accepted_at": "2026-11-23T10:00:00-05:00", "ip": "127.0.0.1", "user_agent": UA,
    }
    (request,) = [r for name, r in gateways.wompi.calls if name == "create_transaction"]
    assert request.accepted_documents == tuple(DOCUMENTS)
    assert (request.user_agent, request.ip, request.bank_code) == (UA, "127.0.0.1", "1022")
    assert gateways.wompi.validated and gateways.wompi.validated[0].reference == payment.reference


def test_a_member_without_email_is_told_to_update_it_at_the_cooperative(
        client, make_member, make_obligation, gateways: Gateways) -> None:  # type: ignore[no-untyped-def]
    make_member(password=PASSWORD, email=None)
    make_obligation()
    member = sign_in(client, DOC)
    error = assert_error(pay(member, accepted=ALL_IDS), 400, "payer_email_missing")
    assert "correo electrónico" in error["message"] and "Actualícelo en la cooperativa" in error["message"]
    assert "(601) 745 0000" in error["message"]
    nothing_saved(gateways.wompi)


def test_a_member_without_phone_or_with_the_wrong_document_type_is_refused_before_saving(
        ana: Member, gateways: Gateways) -> None:
    error = assert_error(pay(ana, accepted=ALL_IDS, person_type="juridica"), 400,
                         "document_type_not_allowed")
    assert "PSE no acepta el tipo de documento CC para una persona jurídica" in error["message"]
    from chalicelib.adapters.dynamo.models import Member as MemberItem

    MemberItem.get(DOC).update(actions=[MemberItem.phone.set("")])
    assert_error(pay(ana, accepted=ALL_IDS, key="key-2"), 400, "payer_phone_missing")
    nothing_saved(gateways.wompi)


def test_a_gateway_that_chooses_the_bank_needs_no_bank_code(ana: Member, gateways: Gateways) -> None:
    gateways.configure("placetopay")
    assert ana.get("/api/v1/banks").json_body == {"banks": [], "chosen_by_gateway": True}
    response = pay(ana, accepted=[], bank_code=None)
    assert response.status_code == 201, response.body
    payment = get_payment(response.json_body["payment"]["id"])
    assert (payment.gateway, payment.bank_code, payment.bank_name) == ("placetopay", "", None)
    assert payment.consent["documents"] == [] and payment.consent["user_agent"] == UA
    (request,) = [r for name, r in gateways.placetopay.calls if name == "create_transaction"]
    assert request.bank_code == "" and request.accepted_documents == ()
    assert gateways.placetopay.count("list_banks") == 0 and gateways.wompi.calls == []


def test_wompi_still_asks_for_the_bank(ana: Member) -> None:
    assert "chosen_by_gateway" not in ana.get("/api/v1/banks").json_body
    assert_error(pay(ana, accepted=ALL_IDS, bank_code=None), 400, "invalid_bank")


# --- webhooks: one path per gateway ---------------------------------------------------------------

def webhook(client, path: str, body: bytes):  # type: ignore[no-untyped-def]
    return client.http.post(path, headers={"Content-Type": "application/json"}, body=body)


def test_each_gateway_has_its_webhook_and_payments_finish_on_their_own(
        ana: Member, gateways: Gateways, clock, client, make_obligation) -> None:  # type: ignore[no-untyped-def]
    make_obligation("CR-0002", type="APORTE", amount_due=80_000, minimum_amount=80_000,
                    maximum_amount=80_000)
    on_wompi = pay(ana, accepted=ALL_IDS).json_body["payment"]
    gateways.configure("placetopay")  # the cooperative switches; the Wompi payment is in flight
    on_placetopay = pay(ana, key="key-2", bank_code=None, accepted=[],
                        items=[{"obligation_id": "CR-0002", "amount": 80_000}]).json_body["payment"]
    assert get_payment(on_placetopay["id"]).gateway == "placetopay"

    wompi_event = gateways.wompi.event(on_wompi["reference"], "APPROVED", at=clock.now)
    ptp_event = gateways.placetopay.event(on_placetopay["reference"], "APPROVED", at=clock.now)
    gateways.placetopay.verify_error = IgnoredEvent("not-for-this-path")  # PlacetoPay's check
    assert webhook(client, "/webhooks/placetopay", wompi_event).json_body == {"result": "ignored"}
    gateways.placetopay.verify_error = None
    first = webhook(client, "/webhooks/pse", wompi_event)
    second = webhook(client, "/webhooks/placetopay", ptp_event)
    assert (first.status_code, first.json_body) == (200, {"result": "processed"})
    assert (second.status_code, second.json_body) == (200, {"result": "processed"})
    assert get_payment(on_wompi["id"]).status == "APPROVED"
    assert get_payment(on_placetopay["id"]).status == "APPROVED"
    assert gateways.wompi.count("get_transaction") == 1  # each approval confirmed by its own
    assert gateways.placetopay.count("get_transaction") == 1
    # Applied exactly once: replays of either notification change nothing.
    assert webhook(client, "/webhooks/pse", wompi_event).json_body == {"result": "duplicate"}
    assert webhook(client, "/webhooks/placetopay", ptp_event).json_body == {"result": "duplicate"}
    assert get_obligation("CR-0001").amount_due == 0 and get_obligation("CR-0002").amount_due == 0


def test_an_ignored_event_type_answers_200_never_401(
        ana: Member, gateways: Gateways, clock, client) -> None:  # type: ignore[no-untyped-def]
    started = pay(ana, accepted=ALL_IDS).json_body["payment"]
    body = gateways.wompi.event(started["reference"], "APPROVED", at=clock.now)
    gateways.wompi.verify_error = IgnoredEvent("nequi_token.updated")
    answer = webhook(client, "/webhooks/pse", body)
    assert (answer.status_code, answer.json_body) == (200, {"result": "ignored"})
    assert get_payment(started["id"]).status == "PENDING"
    gateways.wompi.verify_error = None
    assert webhook(client, "/webhooks/pse", body).json_body == {"result": "processed"}


# --- staff ---------------------------------------------------------------------------------------

def test_staff_see_the_acceptance(ana: Member, gateways: Gateways, client) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_staff_api import call

    started = pay(ana, accepted=ALL_IDS).json_body["payment"]
    detail = call(client, "GET", f"/staff/v1/payments/{started['id']}").json_body
    assert detail["consent"]["documents"][1]["version"] == "token-datos-7"
    assert (detail["consent"]["ip"], detail["consent"]["user_agent"]) == ("127.0.0.1", UA)


# --- pages ---------------------------------------------------------------------------------------

@pytest.fixture
def browser_member(client, make_member, make_obligation, gateways: Gateways) -> Browser:  # type: ignore[no-untyped-def]
    make_member(DOC, password=PASSWORD)
    make_obligation("APO-1", type="APORTE", amount_due=80_000, minimum_amount=80_000,
                    maximum_amount=80_000, product_number="4001020304050",
                    description="Aportes sociales noviembre")
    browser = Browser(client)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    return browser


def summary(browser: Browser) -> str:
    response = browser.post("/pagos/resumen", {"opcion_APO-1": "due"}, csrf_from="/obligaciones")
    assert response.status_code == 303
    page = browser.get(response.headers["Location"])
    assert page.status_code == 200
    return str(page.body.decode())


def submit(browser: Browser, html: str, pairs: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    """The summary form as a browser posts it (repeated checkbox names included)."""
    hidden = re.findall(r'name="(item_\d+_\w+|idempotency_key|csrf_token)" value="([^"]*)"', html)
    response = browser.client.http.post("/pagos", headers={**FORM, **browser._cookie(), "User-Agent": UA},
                                        body=urlencode([*hidden, *pairs]))
    browser._remember(response)
    return response


def test_the_summary_shows_each_document_with_its_own_required_checkbox(
        browser_member: Browser) -> None:
    html = summary(browser_member)
    consent = re.search(r'<fieldset class="consent">(.*?)</fieldset>', html, re.S)
    assert consent, html
    block = consent.group(1)
    assert "<legend>3. Términos de la pasarela de pagos</legend>" in block
    for index, document in enumerate(DOCUMENTS, start=1):
        assert (f'<input type="checkbox" id="acepto-{index}" name="accepted_documents" '
                f'value="{document.id}" required>') in block
        assert f'<label for="acepto-{index}" class="inline-label">Acepto: {document.title}</label>' in block
        assert f'<a href="{document.url}" target="_blank" rel="noopener noreferrer">' in block
    assert block.count('type="checkbox"') == 2
    assert '<select id="bank_code"' in html  # Wompi: the member picks the bank here


def test_paying_without_ticking_every_document_keeps_the_form_and_says_why(
        browser_member: Browser, gateways: Gateways) -> None:
    html = summary(browser_member)
    refused = submit(browser_member, html, [("bank_code", "1507"), ("person_type", "natural"),
                                            ("accepted_documents", "personal_data_auth")])
    assert refused.status_code == 400
    page = refused.body.decode()
    assert "Resumen del pago" in page and "Hay un problema" in page
    assert ('<a href="#acepto-1">Para pagar debe leer y aceptar: «Reglamento de uso de la pasarela».</a>'
            in page)
    assert 'id="acepto-error"' in page and 'aria-describedby="acepto-error"' in page
    assert ('id="acepto-1" name="accepted_documents" value="end_user_policy" required aria-invalid="true">'
            in page)
    assert 'id="acepto-2" name="accepted_documents" value="personal_data_auth" required checked>' in page
    assert '<option value="1507" selected>' in page and 'name="item_0_amount" value="80000"' in page
    assert get_obligation("APO-1").pending_payment_id is None
    assert gateways.wompi.count("create_transaction") == 0

    paid = submit(browser_member, page, [("bank_code", "1507"), ("person_type", "natural"),
                                         *[("accepted_documents", i) for i in ALL_IDS]])
    assert paid.status_code == 303 and paid.headers["Location"].startswith("https://banco.example/")
    payment = get_payment(get_obligation("APO-1").pending_payment_id)
    assert [d["id"] for d in payment.consent["documents"]] == ALL_IDS
    assert payment.consent["user_agent"] == UA


def test_a_missing_email_is_explained_on_the_summary(client, make_member, make_obligation,
                                                     gateways: Gateways) -> None:  # type: ignore[no-untyped-def]
    make_member(DOC, password=PASSWORD, email=None)
    make_obligation("APO-1", type="APORTE", amount_due=80_000, minimum_amount=80_000,
                    maximum_amount=80_000, description="Aportes sociales noviembre")
    browser = Browser(client)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    refused = submit(browser, summary(browser), [("bank_code", "1507"), ("person_type", "natural"),
                                                 *[("accepted_documents", i) for i in ALL_IDS]])
    assert refused.status_code == 400
    page = refused.body.decode()
    assert "Resumen del pago" in page and "Actualícelo en la cooperativa" in page
    assert 'value="end_user_policy" required checked>' in page  # nothing ticked is lost
    assert get_obligation("APO-1").pending_payment_id is None


def test_no_bank_select_when_the_gateway_chooses_the_bank(browser_member: Browser,
                                                          gateways: Gateways) -> None:
    gateways.configure("placetopay")
    html = summary(browser_member)
    assert "<select" not in html and "A continuación seleccione su banco" not in html
    assert "Su banco lo elige en la página de la pasarela de pagos" in html
    assert 'class="consent' not in html  # this gateway asks for no documents
    paid = submit(browser_member, html, [("person_type", "natural")])
    assert paid.status_code == 303 and paid.headers["Location"].startswith("https://banco.example/")
    assert get_payment(get_obligation("APO-1").pending_payment_id).gateway == "placetopay"


def started_on_the_page(browser: Browser) -> str:
    paid = submit(browser, summary(browser), [("bank_code", "1507"), ("person_type", "natural"),
                                              *[("accepted_documents", i) for i in ALL_IDS]])
    assert paid.status_code == 303
    return str(get_obligation("APO-1").pending_payment_id)


def test_the_payment_page_offers_continuar_al_banco_while_pending(
        browser_member: Browser, gateways: Gateways) -> None:
    payment_id = started_on_the_page(browser_member)
    bank_url = get_payment(payment_id).bank_url
    html = browser_member.get(f"/pagos/{payment_id}").body.decode()
    assert f'<a class="button" href="{bank_url.replace("&", "&amp;")}">Continuar al banco</a>' in html
    gateways.wompi.settle(get_payment(payment_id).reference, "REJECTED")
    ended = browser_member.get(f"/pagos/{payment_id}/retorno").body.decode()
    assert "Rechazada" in ended and "Continuar al banco" not in ended


def test_the_return_page_refreshes_itself_until_a_final_state(
        browser_member: Browser, gateways: Gateways) -> None:
    from chalicelib.web.payment_pages import RETURN_REFRESH_LIMIT, RETURN_REFRESH_SECONDS

    payment_id = started_on_the_page(browser_member)
    pending = browser_member.get(f"/pagos/{payment_id}/retorno")
    assert pending.headers["Refresh"] == (f"{RETURN_REFRESH_SECONDS}; "
                                          f"url=/pagos/{payment_id}/retorno?vez=1")
    html = pending.body.decode()
    assert "<script" not in html.split("</head>")[1]  # the refresh needs no JavaScript
    assert f"Esta página se actualiza sola cada {RETURN_REFRESH_SECONDS} segundos" in html
    assert (f'<form method="get" action="/pagos/{payment_id}/retorno" class="no-print">\n'
            '      <button type="submit">Consultar de nuevo</button>') in html
    assert 'http-equiv="refresh"' not in html  # a header: axe's meta-refresh rule stays clean
    assert browser_member.get(f"/pagos/{payment_id}/retorno?vez=%C2%B3").status_code == 200  # "³"
    later = browser_member.get(f"/pagos/{payment_id}/retorno?vez=4")
    assert later.headers["Refresh"].endswith("?vez=5")
    assert "Refresh" not in browser_member.get(f"/pagos/{payment_id}/retorno?auto=0").headers
    last = browser_member.get(f"/pagos/{payment_id}/retorno?vez={RETURN_REFRESH_LIMIT}")
    assert "Refresh" not in last.headers and "Consultar de nuevo" in last.body.decode()

    gateways.wompi.settle(get_payment(payment_id).reference, "APPROVED")
    approved = browser_member.get(f"/pagos/{payment_id}/retorno?vez=2")
    assert "Aprobada" in approved.body.decode() and "Refresh" not in approved.headers
    assert "Consultar de nuevo" not in approved.body.decode()


def test_the_console_shows_the_acceptance(browser_member: Browser, gateways: Gateways, client,
                                          staff_pool) -> None:  # type: ignore[no-untyped-def]
    from tests.staff_support import staff_sign_in

    payment_id = started_on_the_page(browser_member)
    staff = Browser(client)
    staff_sign_in(staff, staff_pool)
    html = staff.get(f"/backoffice/pagos/{payment_id}").body.decode()
    section = html.split('<h2 id="aceptacion">')[1].split("</section>")[0]
    assert section.startswith("Aceptación de los términos de la pasarela</h2>")
    assert "Aceptados el 23 de noviembre de 2026, 10:00" in section
    assert f"desde 127.0.0.1 · navegador: {UA}." in section
    for document in DOCUMENTS:
        assert f'<a href="{document.url}" rel="noopener noreferrer">{document.title}</a>' in section
        assert f'<code class="token">{document.version}</code>' in section


def test_after_a_switch_the_poller_asks_each_payment_its_own_gateway(
        ana: Member, gateways: Gateways, clock) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.context import get_context
    from chalicelib.services import payments

    on_wompi = pay(ana, accepted=ALL_IDS).json_body["payment"]
    gateways.configure("placetopay")
    gateways.wompi.settle(on_wompi["reference"], "APPROVED")
    clock.advance(minutes=7)
    report = payments.reconcile_pending(get_context())
    assert report.applied == 1
    assert get_payment(on_wompi["id"]).status == "APPROVED"
    assert gateways.wompi.count("get_transaction") == 1
    assert gateways.placetopay.calls == []


def test_documents_the_gateway_cannot_give_stop_the_payment_with_a_spanish_503(
        ana: Member, gateways: Gateways, browser_member: Browser) -> None:
    from chalicelib.adapters.gateways.base import GatewayError

    gateways.wompi.documents_error = GatewayError("caída", code="gateway_unavailable")
    error = assert_error(ana.get("/api/v1/payment-terms"), 503, "terms_unavailable")
    assert error["message"].startswith("No pudimos obtener los términos de la pasarela")
    assert_error(pay(ana, accepted=ALL_IDS), 503, "terms_unavailable")
    html = summary(browser_member)
    assert "Hay un problema" in html and "No pudimos obtener los términos de la pasarela" in html
    assert 'type="checkbox"' not in html
    nothing_saved(gateways.wompi)


def test_a_gateway_without_credentials_answers_404_on_its_webhook(
        gateways: Gateways, client, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.gateways import registry
    from chalicelib.config import ConfigError

    def unconfigured(settings: Any, name: str | None = None) -> FakeGateway:
        if name == "placetopay":
            raise ConfigError("secret PLACETOPAY_SECRET_KEY is not configured")
        return gateways.wompi

    monkeypatch.setattr(registry, "gateway_for", unconfigured)
    answer = webhook(client, "/webhooks/placetopay", b'{"requestId": 1}')
    assert_error(answer, 404, "unknown_gateway")


def test_the_openapi_document_describes_consent_and_both_webhooks(client) -> None:  # type: ignore[no-untyped-def]
    document = client.http.get("/api/v1/openapi.json").json_body
    paths = document["paths"]
    terms = paths["/api/v1/payment-terms"]["get"]["responses"]["200"]["content"]["application/json"]
    assert terms["schema"]["required"] == ["gateway", "documents"]
    body = paths["/api/v1/payments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "bank_code" not in body["required"] and "accepted_documents" in body["properties"]
    assert "terms_not_accepted" in paths["/api/v1/payments"]["post"]["responses"]["400"]["description"]
    banks = paths["/api/v1/banks"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert banks["properties"]["chosen_by_gateway"]["type"] == "boolean"
    assert {"pseWebhook", "placetopayWebhook"} == {
        paths[p]["post"]["operationId"] for p in ("/webhooks/pse", "/webhooks/placetopay")}
