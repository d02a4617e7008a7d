"""A new member on a phone (360 × 740, touch): first access from the email, login, paying two
obligations through the sandbox bank, the receipt and its PDF, the history.

Each step is saved as ``test-artifacts/phone/NN-step.png``; a few of them are in
``docs/screenshots/`` for the README (copy them again when the pages change).
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.browser.conftest import ARTIFACTS, accept_terms, latest_email

PEDRO, PEDRO_EMAIL = "1122334455", "pedro.ruiz@correo.example"
PASSWORD = "mi cooperativa desde el celular"
SHOTS = ARTIFACTS / "phone"
PHONE = {"viewport": {"width": 360, "height": 740}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 1}


@pytest.fixture
def phone(browser, stack) -> Iterator[object]:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=stack.app_url, locale="es-CO", accept_downloads=True, **PHONE)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SHOTS / "zz-final.png"), full_page=True)
    context.close()


class Steps:
    def __init__(self, page) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.count = 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        for old in SHOTS.glob("*.pdf"):
            old.unlink()

    def shot(self, name: str) -> Path:
        """A named screenshot, after checking the page fits the phone's width."""
        self.page.wait_for_load_state("load")
        scroll, inner = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner + 1, f"{name}: the page scrolls sideways on a phone ({scroll} > {inner} px)"
        self.count += 1
        path = SHOTS / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def wait_for_email(stack, to: str, text: str, timeout: float = 15.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        message = latest_email(stack, to)
        if text in message["subject"] or time.monotonic() > deadline:
            assert text in message["subject"], message["subject"]
            return message
        time.sleep(0.3)


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_a_new_member_pays_from_a_phone_and_keeps_the_pdf(phone, stack) -> None:  # type: ignore[no-untyped-def]
    page = phone
    steps = Steps(page)

    # First access, as a new member would: the home page, "¿Olvidó su contraseña?", the email.
    page.goto("/")
    expect(page.get_by_role("heading", name="Sucursal Virtual")).to_be_visible()
    steps.shot("inicio")
    page.get_by_role("link", name="Ingresar", exact=True).tap()
    expect(page.get_by_role("heading", name="Inicio de Sesión")).to_be_visible()
    steps.shot("ingresar")
    page.get_by_role("link", name="¿Olvidó su contraseña?").first.tap()
    expect(page.get_by_role("heading", name="¿Olvidó su contraseña?")).to_be_visible()
    page.get_by_label("Número de documento").fill(PEDRO)
    steps.shot("recuperar")
    page.get_by_role("button", name="Enviar").tap()
    expect(page.get_by_role("status")).to_contain_text("Si el documento está registrado")
    steps.shot("revise-su-correo")

    message = latest_email(stack, PEDRO_EMAIL)
    key = re.search(r">([A-Z2-9]{10})<", message["html"]).group(1)
    page.goto(stack.outbox_url)
    page.get_by_role("link", name=message["subject"]).first.tap()
    with page.expect_navigation():
        page.frame_locator("iframe").get_by_role("link", name="Crear mi contraseña").tap()
    expect(page).to_have_url(re.compile(r"/cambiar-clave$"))
    page.get_by_label("Clave temporal").fill(key)
    page.get_by_label("Nueva contraseña", exact=True).fill(PASSWORD)
    page.get_by_label("Confirme la nueva contraseña").fill(PASSWORD)
    steps.shot("crear-contrasena")
    page.get_by_role("button", name="Cambiar contraseña").tap()
    expect(page.get_by_role("heading", name="Su contraseña fue actualizada")).to_be_visible()

    # The two-step login.
    page.get_by_role("link", name="Iniciar sesión").tap()
    page.get_by_label("Usuario").fill(PEDRO)
    page.get_by_role("button", name="Siguiente").tap()
    expect(page).to_have_url(re.compile(r"/ingresar/clave$"))
    page.get_by_label("Contraseña").fill(PASSWORD)
    steps.shot("ingresar-clave")
    page.get_by_role("button", name="Iniciar sesión").tap()
    expect(page.get_by_role("heading", name="Hola, Pedro Pablo Ruiz")).to_be_visible()
    steps.shot("bienvenida")

    # What he owes: both obligations, the summary, the bank's page.
    page.get_by_role("link", name="Ver y pagar mis obligaciones").tap()
    expect(page.get_by_role("heading", name="Mis obligaciones")).to_be_visible()
    expect(page.get_by_text("Plan odontológico familiar")).to_be_visible()
    for description in ("Aportes sociales noviembre", "Plan odontológico familiar"):
        card = page.locator("fieldset.obligation", has_text=description)
        card.get_by_label(re.compile("^Valor a pagar:")).tap()
    steps.shot("obligaciones")
    page.get_by_role("button", name="Continuar").tap()
    expect(page.get_by_role("heading", name="Resumen del pago")).to_be_visible()
    expect(page.locator("tfoot")).to_contain_text("$ 120.000")
    page.get_by_label("Banco").select_option(label="Banco que aprueba")
    accept_terms(page)
    steps.shot("resumen")
    page.get_by_role("button", name="Pagar con PSE").tap()
    expect(page).to_have_url(re.compile(r"/banco/"))
    expect(page.get_by_text("$ 120.000")).to_be_visible()
    steps.shot("banco")
    page.get_by_role("button", name="Aprobar").tap()

    # The receipt with its lifecycle, and the PDF.
    expect(page.get_by_role("heading", name="Comprobante de pago")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Aprobada")
    stepper = page.get_by_role("list", name="Seguimiento del pago")
    expect(stepper.get_by_role("listitem")).to_have_count(3)
    expect(stepper.locator("[aria-current=step]")).to_contain_text("Aprobado")
    steps.shot("comprobante")
    reference = page.locator("dt:text-is('Referencia') + dd").inner_text()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Descargar comprobante (PDF)").tap()
    download = download_info.value
    assert download.suggested_filename == f"comprobante-{reference}.pdf"
    saved = SHOTS / download.suggested_filename
    download.save_as(saved)
    text = pdf_text(saved.read_bytes())
    for expected in ("Comprobante de pago PSE", "NIT 900.123.456-7", "Aprobada", reference,
                     "Banco que aprueba", "$ 120.000", "$ 75.000", "$ 45.000", "Plan odontológico familiar",
                     f"CC {PEDRO}"):
        assert expected in text, expected

    # The receipt email, in the local outbox, carries the same PDF.
    receipt_email = wait_for_email(stack, PEDRO_EMAIL, reference)
    assert [a["filename"] for a in receipt_email["attachments"]] == [f"comprobante-{reference}.pdf"]

    # The history: the payment, its steps and the PDF again.
    page.get_by_role("link", name="Mis pagos", exact=True).tap()
    expect(page.get_by_role("heading", name="Mis pagos")).to_be_visible()
    row = page.locator("tbody tr").first
    expect(row).to_contain_text("Aprobada")
    expect(row).to_contain_text("$ 120.000")
    expect(row.get_by_role("list", name=f"Seguimiento del pago {reference}")).to_contain_text("Aprobado")
    steps.shot("mis-pagos")
    with page.expect_download() as again:
        row.get_by_role("link", name=re.compile("^Descargar PDF")).tap()
    assert again.value.suggested_filename == f"comprobante-{reference}.pdf"
    assert steps.count == 12
