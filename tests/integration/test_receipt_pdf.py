"""The PDF receipt (SPEC §2.5): its fields, the download route, the email attachment."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from chalicelib.services import payments
from tests.conftest import sent_emails
from tests.integration.test_payment_pages import give_parts
from tests.integration.test_session_api import DOC, PASSWORD
from tests.page_support import Browser
from tests.payment_support import get_payment, start

PDF_ACCEPT = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def approved(ctx, make_member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    """Ana's payment of two obligations, approved by the bank through a signed notification."""
    make_member(DOC, password=PASSWORD)
    make_obligation("APO-1", type="APORTE", amount_due=80_000, minimum_amount=80_000, maximum_amount=80_000,
                    product_number="4001020304050", description="Aportes sociales noviembre")
    make_obligation("CRE-1", amount_due=850_000, minimum_amount=850_000, maximum_amount=12_400_000,
                    product_number="880012345678", description="Crédito de libre inversión cuota 7/36")
    started = start(ctx, items=[("APO-1", 80_000), ("CRE-1", 1_000_000)])
    clock.advance(minutes=3)
    payments.apply_gateway_event(ctx, {}, gateway.event(started.reference, "APPROVED", at=clock.now))
    return started


def member_browser(client) -> Browser:  # type: ignore[no-untyped-def]
    browser = Browser(client)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    return browser


def get_pdf(browser: Browser, path: str):  # type: ignore[no-untyped-def]
    return browser.client.http.get(path, headers={**browser._cookie(), **PDF_ACCEPT})


def test_the_pdf_has_every_field_of_the_receipt(ctx, approved) -> None:  # type: ignore[no-untyped-def]
    name, data = payments.receipt_pdf(ctx, approved.id, document_number=DOC)
    assert name == f"comprobante-{approved.reference}.pdf"
    text = pdf_text(data)
    payment = get_payment(approved.id)
    for expected in ("Cooperativa de Ahorro y Crédito Ejemplo", "NIT 900.123.456-7",
                     "Comprobante de pago PSE",
                     "Estado", "Aprobada", "Fecha y hora", "23 de noviembre de 2026, 10:03 a. m.",
                     "Referencia", approved.reference, "CUS", payment.cus, "Banco", "BANCO UNION COLOMBIANO",
                     "Valor", "$ 1.080.000", "Descripción", payment.description,
                     "Documento del pagador", f"CC {DOC}", "Dirección IP de origen", "190.25.1.2",
                     "Obligaciones pagadas", "Aportes sociales noviembre", "$ 80.000",
                     "Crédito de libre inversión cuota 7/36", "$ 1.000.000", "•••• 5678",
                     "Seguimiento del pago", "Iniciado", "Enviado a su banco", "Aprobado"):
        assert expected in text, expected
    reader = PdfReader(io.BytesIO(data))
    assert reader.metadata.title == f"Comprobante de pago {approved.reference}"


def test_a_pending_receipt_says_so(ctx, make_member, make_obligation, gateway) -> None:  # type: ignore[no-untyped-def]
    make_member(DOC, password=PASSWORD)
    make_obligation()
    started = start(ctx)
    text = pdf_text(payments.receipt_pdf(ctx, started.id, document_number=DOC)[1])
    for expected in ("Pendiente", "verifique con su entidad financiera si el débito fue realizado",
                     "Obligaciones incluidas", "por confirmar", "este comprobante no prueba el débito"):
        assert expected in text, expected


def test_download_route_for_the_member_only(client, approved, make_member) -> None:  # type: ignore[no-untyped-def]
    path = f"/pagos/{approved.id}/comprobante.pdf"
    anonymous = Browser(client)
    assert get_pdf(anonymous, path).headers["Location"] == "/ingresar"  # a session is required

    ana = member_browser(client)
    response = get_pdf(ana, path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="comprobante-{approved.reference}.pdf"'
    assert response.headers["Cache-Control"] == "no-store"
    assert approved.reference in pdf_text(response.body)

    # The receipt page and the history link to it.
    assert f'href="{path}"' in ana.get(f"/pagos/{approved.id}").body.decode()
    history = ana.get("/pagos").body.decode()
    assert f'href="{path}"' in history and "Descargar PDF" in history
    for step in ("Iniciado 10:00 a. m.", "Enviado a su banco 10:00 a. m.", "Aprobado 10:03 a. m."):
        assert step in history

    # Another member cannot download it, nor learn that it exists.
    make_member("52123456", password=PASSWORD, email="luis@correo.example", full_name="Luis Rodríguez")
    luis = Browser(client)
    luis.post("/ingresar", {"document_number": "52123456"}, csrf_from="/ingresar")
    luis.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    refused = get_pdf(luis, path)
    assert refused.status_code == 404
    assert refused.headers["Content-Type"].startswith("text/html")
    assert b"No encontramos ese pago" in refused.body and b"%PDF" not in refused.body
    assert get_pdf(luis, "/pagos/not-an-id/comprobante.pdf").status_code == 404


def test_the_return_page_without_a_session_offers_no_download(client, approved) -> None:  # type: ignore[no-untyped-def]
    html = Browser(client).get(f"/pagos/{approved.id}/retorno").body.decode()
    assert "Comprobante de pago" in html and "comprobante.pdf" not in html
    assert 'aria-current="step"' in html and "Enviado a su banco" in html  # the lifecycle still shows


def test_the_receipt_page_shows_the_lifecycle_stepper(client, approved) -> None:  # type: ignore[no-untyped-def]
    html = member_browser(client).get(f"/pagos/{approved.id}").body.decode()
    stepper = re.search(r'<ol class="stepper" aria-label="Seguimiento del pago">(.*?)</ol>', html,
                        re.S).group(1)
    items = re.findall(r"<li class=\"step-(\w+)\"( aria-current=\"step\")?>", stepper)
    assert items == [("done", ""), ("done", ""), ("done", ' aria-current="step"')]
    for text in ("Iniciado", "Enviado a su banco", "Aprobado", "23 de noviembre de 2026, 10:03 a. m.",
                 "(completado, paso actual)"):
        assert text in stepper


def test_the_receipt_email_carries_the_pdf(ctx, approved) -> None:  # type: ignore[no-untyped-def]
    (message,) = sent_emails()
    assert message.destinations["ToAddresses"] == ["ana.perez@correo.example"]
    assert approved.reference in message.subject and "Aprobada" in message.subject
    assert "Adjuntamos este comprobante en PDF" in message.body and "Adjuntamos" in message.text
    ((filename, content_type, data),) = message.attachments
    assert (filename, content_type) == (f"comprobante-{approved.reference}.pdf", "application/pdf")
    text = pdf_text(data)
    assert approved.reference in text and "$ 1.080.000" in text
    assert "•••• 4050" in text and DOC not in text  # an email may be forwarded: document masked


def test_a_pdf_failure_never_blocks_the_receipt_email(ctx, make_member, make_obligation, gateway, clock,  # type: ignore[no-untyped-def]
                                                      monkeypatch) -> None:
    from chalicelib.services import receipt_pdf

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("no font")

    monkeypatch.setattr(receipt_pdf, "render", broken)
    make_member(DOC)
    make_obligation()
    started = start(ctx)
    payments.apply_gateway_event(ctx, {}, gateway.event(started.reference, "APPROVED", at=clock.now))
    (message,) = sent_emails()
    assert started.reference in message.subject
    assert get_payment(started.id).receipt_emailed is True


def test_the_pdf_and_the_email_show_how_the_credit_payment_was_applied(  # type: ignore[no-untyped-def]
        ctx, make_member, make_obligation, gateway, clock) -> None:
    make_member(DOC, password=PASSWORD)
    make_obligation("CRE-1", amount_due=850_000, minimum_amount=850_000, maximum_amount=12_400_000,
                    product_number="880012345678", description="Crédito de libre inversión cuota 7/36")
    give_parts()
    started = start(ctx, items=[("CRE-1", 1_000_000)])
    pending = pdf_text(payments.receipt_pdf(ctx, started.id, document_number=DOC)[1])
    assert "Así se aplicará su pago a cada crédito cuando el banco lo apruebe" in pending
    payments.apply_gateway_event(ctx, {}, gateway.event(started.reference, "APPROVED", at=clock.now))
    split = [("Intereses de mora", "$ 6.800"), ("Seguros", "$ 14.200"), ("Intereses corrientes", "$ 186.000"),
             ("Capital", "$ 643.000"), ("Abono extraordinario a capital", "$ 150.000")]
    text = pdf_text(payments.receipt_pdf(ctx, started.id, document_number=DOC)[1])
    assert "Aplicación del pago" in text
    assert "Así se aplicó su pago a cada crédito, según el orden de aplicación de la cooperativa" in text
    for label, amount in split:
        assert f"{label} {amount}" in text, label
    (message,) = sent_emails()
    assert "según el orden de aplicación de la cooperativa" in message.body
    for label, amount in split:
        assert re.search(rf"<td>{label}</td><td[^>]*>{re.escape(amount)}</td>", message.body), label
        assert f"  - {label}: {amount}" in message.text, label


HOSTILE_DESCRIPTION = "Ahorro navideño 🎄 \u202eCOP 000.001\u202c nul\x00 fin ١٠٠ 中文 Ελληνικά Кириллица"


def test_any_text_renders_in_the_pdf(client, ctx, make_member, make_obligation, gateway, clock) -> None:  # type: ignore[no-untyped-def]
    """Stored text the import would refuse today (emoji, U+202E, NUL: loaded before, or by hand)
    never breaks the receipt: the download answers 200 and the email carries the PDF."""
    make_member(DOC, password=PASSWORD, full_name="Zoë 👩‍💻 \u202eanA")
    make_obligation("AHO-1", type="AHORRO", amount_due=80_000, minimum_amount=80_000, maximum_amount=80_000,
                    product_number="AHP-1\u202e", description=HOSTILE_DESCRIPTION)
    started = start(ctx, items=[("AHO-1", 80_000)])
    payments.apply_gateway_event(ctx, {}, gateway.event(started.reference, "APPROVED", at=clock.now))

    response = get_pdf(member_browser(client), f"/pagos/{started.id}/comprobante.pdf")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    text = pdf_text(response.body)
    for expected in ("Ahorro navideño", "COP 000.001", "nul fin", "١٠٠", "Ελληνικά", "Кириллица"):
        assert expected in text, expected
    assert "\u202e" not in text and "\u202c" not in text and "\x00" not in text  # dropped, in one place

    (message,) = sent_emails()
    ((name, content_type, data),) = message.attachments
    assert name == f"comprobante-{started.reference}.pdf" and content_type == "application/pdf"
    assert "Ahorro navideño" in pdf_text(data)
    assert "Adjuntamos este comprobante en PDF" in message.text


def test_the_pdf_is_set_in_the_embedded_unicode_font(ctx, approved) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.services import receipt_pdf

    data = payments.receipt_pdf(ctx, approved.id, document_number=DOC)[1]
    reader = PdfReader(io.BytesIO(data))
    fonts = {str(f["/BaseFont"]) for f in reader.pages[0]["/Resources"]["/Font"].values()}
    assert fonts == {"/MPDFAA+DejaVuSansBook", "/MPDFAA+DejaVuSansBold"}  # embedded subsets
    assert {p.name for p in receipt_pdf.FONTS.iterdir()} >= {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf",
                                                             "LICENSE-DejaVu.txt"}
    assert len(data) < 120_000  # only the glyphs used travel with each receipt


def test_an_email_without_its_pdf_says_so(ctx, make_member, make_obligation, gateway, clock,  # type: ignore[no-untyped-def]
                                          monkeypatch, caplog) -> None:
    from chalicelib.services import receipt_pdf

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disco lleno")

    monkeypatch.setattr(receipt_pdf, "render", broken)
    sent = []
    send = ctx.mailer.send
    monkeypatch.setattr(ctx.mailer, "send", lambda email: sent.append(email) or send(email))
    make_member(DOC)
    make_obligation()
    started = start(ctx)
    payments.apply_gateway_event(ctx, {}, gateway.event(started.reference, "APPROVED", at=clock.now))
    (message,) = sent
    assert message.attachments == () and len(sent_emails()) == 1
    for body in (message.text, message.html):
        assert "Adjuntamos" not in body
        assert "No pudimos adjuntar el comprobante en PDF a este correo" in body and "Mis pagos" in body
    (line,) = [r.getMessage() for r in caplog.records if "payment_receipt_pdf_failed" in r.getMessage()]
    assert started.reference in line and "RuntimeError: disco lleno" in line
