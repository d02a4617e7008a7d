"""The member's journey, round two, in Chromium: pay what you meant, know where you stand, never
start over. One test per finding of the walk through the journey (with and without script)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import accept_terms, latest_email
from tests.browser.test_accessibility import WCAG_TAGS, describe
from tests.browser.test_login_journey import first_access, sign_in

PASSWORD = "mi frase para la segunda vuelta"
SOFIA, SOFIA_EMAIL = "71000001", "sofia.vargas@correo.example"
ANDRES, ANDRES_EMAIL = "71000002", "andres.castro@correo.example"
VALENTINA, VALENTINA_EMAIL = "71000003", "valentina.ospina@correo.example"
CAMILO, CAMILO_EMAIL = "71000004", "camilo.torres@correo.example"
HOUSING = "Crédito de vivienda cuota 4/120"
CAR = "Crédito de vehículo cuota 9/60"


#: The pages of this journey also meet WCAG 2.2 AA and axe's best practices.
JOURNEY_TAGS = [*WCAG_TAGS, "wcag22a", "wcag22aa", "best-practice"]


def axe_at_both_widths(page, name: str) -> None:  # type: ignore[no-untyped-def]
    from axe_playwright_python.sync_playwright import Axe

    for width, height in ((1280, 900), (360, 740)):
        page.set_viewport_size({"width": width, "height": height})
        violations = Axe().run(page, options={"runOnly": {"type": "tag", "values": JOURNEY_TAGS},
                                              "resultTypes": ["violations"]}).response["violations"]
        assert not violations, f"{name} ({width} px): {page.url}\n{describe(violations)}"
    page.set_viewport_size({"width": 1280, "height": 900})


def card(page, description: str):  # type: ignore[no-untyped-def]
    return page.locator("fieldset.obligation", has_text=description)


def new_member_pays_aportes(page, stack, document: str, email: str, bank: str) -> None:  # type: ignore[no-untyped-def]
    """First access, login, the aportes' amount due, the bank: up to the bank's page."""
    first_access(page, stack, document, email, PASSWORD)
    sign_in(page, document, PASSWORD)
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    card(page, "Aportes sociales noviembre").get_by_label(re.compile("^Valor a pagar:")).check()
    page.get_by_role("button", name="Continuar").click()
    page.get_by_label("Banco").select_option(label=bank)
    accept_terms(page)
    page.get_by_role("button", name="Pagar con PSE").click()
    expect(page).to_have_url(re.compile(r"/banco/"))


def test_the_typed_amount_is_the_amount_paid_and_a_paid_instalment_reads_paid(page, stack) -> None:  # type: ignore[no-untyped-def]
    """Points 1, 4, 6, 8, 9 and 10: one control per obligation, errors at the field, Back keeps
    the selection, the bank comes first, the result first, the paid instalment is "Pagada"."""
    first_access(page, stack, SOFIA, SOFIA_EMAIL, PASSWORD)
    sign_in(page, SOFIA, PASSWORD)
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    expect(page.locator("form[data-selection] input[type=radio]:checked")).to_have_count(0)
    total = page.locator("[data-total]")
    expect(total).to_have_text("$ 0")
    for masked in ("71•••• 5123", "72•••• 5123", "9•••• 5123"):  # three products, three numbers
        expect(page.get_by_text(masked, exact=True)).to_be_visible()

    housing = card(page, HOUSING)
    housing.get_by_label(re.compile("^Valor a pagar:")).check()
    expect(total).to_have_text("$ 850.000")
    housing.get_by_label("Otro valor (pesos)").fill("doce")  # refused at the field
    expect(housing.get_by_label(re.compile("^Otro valor entre"))).to_be_checked()
    page.get_by_role("button", name="Continuar").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    summary.get_by_role("link", name=re.compile("Escriba el valor en pesos")).click()
    field = card(page, HOUSING).get_by_label("Otro valor (pesos)")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(card(page, HOUSING).locator(".field-error")).to_contain_text("Escriba el valor en pesos")
    axe_at_both_widths(page, "obligaciones con error en el campo")
    field.fill("99.000.000")  # out of bounds: also at the field, not only at the top
    page.get_by_role("button", name="Continuar").click()
    expect(card(page, HOUSING).locator(".field-error")).to_contain_text("debe estar entre")

    card(page, HOUSING).get_by_label(re.compile("^Valor a pagar:")).check()  # clears the typed text
    expect(card(page, HOUSING).get_by_label("Otro valor (pesos)")).to_have_value("")
    card(page, HOUSING).get_by_label("Otro valor (pesos)").fill("900.000")  # typing chooses it
    expect(card(page, HOUSING).get_by_label(re.compile("^Otro valor entre"))).to_be_checked()
    expect(total).to_have_text("$ 900.000")
    page.get_by_role("button", name="Continuar").click()

    expect(page.get_by_role("heading", name="Resumen del pago")).to_be_visible()
    expect(page.locator("tfoot")).to_contain_text("$ 900.000")
    bank_y = page.get_by_label("Banco").bounding_box()["y"]
    assert bank_y < page.locator("tfoot").bounding_box()["y"]  # the bank comes first
    page.set_viewport_size({"width": 360, "height": 740})  # the placeholder is whole on a phone
    room = page.get_by_label("Banco").evaluate("""el => {
        const style = getComputedStyle(el), canvas = document.createElement("canvas").getContext("2d");
        canvas.font = style.font;
        const text = canvas.measureText(el.options[0].text).width;
        return el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20 - text;
    }""")
    assert room > 0, f"«A continuación seleccione su banco» is cut by {-room:.0f} px at 360 px"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("link", name="Volver y cambiar lo elegido").click()
    expect(card(page, HOUSING).get_by_label("Otro valor (pesos)")).to_have_value("900000")
    expect(total).to_have_text("$ 900.000")
    page.get_by_role("button", name="Continuar").click()

    page.get_by_label("Banco").select_option(label="Banco que aprueba")
    page.get_by_label("Persona jurídica").check()  # Sofía's document is a NIT, as PSE asks of one
    accept_terms(page)
    page.get_by_role("button", name="Pagar con PSE").click()
    expect(page).to_have_url(re.compile(r"/banco/"))
    expect(page.get_by_text("$ 900.000")).to_be_visible()
    bank_page = page.url
    page.go_back()  # no "confirm form resubmission": the summary is a GET
    expect(page).to_have_url(re.compile(r"/pagos/resumen\?"))
    pending = page.locator("section.pending")
    expect(pending).to_contain_text("Ya hay un pago pendiente: no pague de nuevo")
    expect(pending).to_contain_text("CUS (código único de seguimiento de PSE)")
    expect(pending.locator("a[href^='tel:']")).to_have_count(1)
    axe_at_both_widths(page, "pago pendiente desde otra pestaña")

    page.goto(bank_page)
    page.get_by_role("button", name="Aprobar").click()
    result = page.locator(".result")
    expect(result).to_contain_text("✓")
    expect(result).to_contain_text("Estado: Aprobada")
    expect(result).to_contain_text("$ 900.000")
    expect(result).to_contain_text("Cooperativa")
    assert result.bounding_box()["y"] < 400  # the result leads the page
    expect(page.get_by_role("link", name="Intentar de nuevo")).to_have_count(0)
    expect(page.locator(".stepper")).not_to_contain_text("Pendiente en el banco")
    axe_at_both_widths(page, "comprobante aprobado")

    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    housing = card(page, HOUSING)
    expect(housing).to_contain_text("Cuota pagada")
    expect(housing).not_to_contain_text("en mora")
    expect(housing.get_by_label(re.compile("^Valor a pagar:"))).to_have_count(0)
    expect(housing.get_by_label(re.compile("^Pago mínimo"))).to_have_count(0)
    expect(housing.get_by_label(re.compile("^Otro valor entre \\$ 1 y"))).to_have_count(1)

    page.get_by_role("link", name="Mis pagos", exact=True).click()
    row = page.locator("tbody tr").first
    expect(row).to_contain_text(f"Crédito •••• 5123 · {HOUSING}: $ 900.000")  # what was paid
    expect(row).to_contain_text("✓ Aprobada")

    # The bank and the person type are remembered for the next payment.
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    card(page, CAR).get_by_label(re.compile("^Valor a pagar:")).check()
    page.get_by_role("button", name="Continuar").click()
    expect(page.get_by_label("Banco")).to_have_value(re.compile(r".+"))
    assert page.get_by_label("Banco").evaluate("el => el.selectedOptions[0].text") == "Banco que aprueba"
    expect(page.get_by_label("Persona jurídica")).to_be_checked()


def test_without_script_a_typed_amount_still_wins(browser, stack) -> None:  # type: ignore[no-untyped-def]
    """Points 1 and 7 without JavaScript: "Pagar lo vencido" from /inicio; the radio left on
    "Valor a pagar" cannot override the typed "$ 400.000,00" (written as members write it)."""
    context = browser.new_context(base_url=stack.app_url, locale="es-CO", java_script_enabled=False,
                                  viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        first_access(page, stack, CAMILO, CAMILO_EMAIL, PASSWORD)
        sign_in(page, CAMILO, PASSWORD)
        # "Lo que debe hoy": its aportes fell due 30 days before the run ({today-30}).
        owed = page.locator("section.owed-today")
        expect(owed).to_contain_text("Tiene $ 65.000 vencidos")
        expect(owed).to_contain_text("$ 165.000")
        page.get_by_role("link", name="Pagar lo vencido ($ 65.000)").click()
        expect(page.get_by_role("heading", name="Resumen del pago")).to_be_visible()
        expect(page.locator("tfoot")).to_contain_text("$ 65.000")
        page.get_by_role("link", name="Mis obligaciones", exact=True).click()
        saving = card(page, "Ahorro programado estudio")
        saving.get_by_label(re.compile("^Valor a pagar:")).check()
        saving.get_by_label("Otro valor (pesos)").fill("$ 400.000,00")  # no script to move the radio
        page.get_by_role("button", name="Continuar").click()
        expect(page.locator("tfoot")).to_contain_text("$ 400.000")
        page.get_by_role("link", name="Volver y cambiar lo elegido").click()
        saving = card(page, "Ahorro programado estudio")
        expect(saving.get_by_label(re.compile("^Otro valor entre"))).to_be_checked()
        expect(saving.get_by_label("Otro valor (pesos)")).to_have_value("400000")
    finally:
        context.close()


def test_abandoning_the_bank_page_says_when_to_pay_again(page, stack) -> None:  # type: ignore[no-untyped-def]
    """Point 3: pending told plainly, "Consultar estado", no "Continuar" with nothing payable."""
    new_member_pays_aportes(page, stack, ANDRES, ANDRES_EMAIL, "Banco que aprueba")
    page.goto("/inicio")  # the member leaves the bank's page without deciding

    owed = page.locator("section.owed-today")
    expect(owed).to_contain_text("Tiene un pago pendiente en su banco")
    expect(owed).to_contain_text("no pague de nuevo")
    page.get_by_role("link", name="Mis obligaciones", exact=True).click()
    expect(page.get_by_text("Pago pendiente en su banco", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Continuar")).to_have_count(0)
    page.get_by_role("link", name=re.compile("^Ver el estado del pago")).click()

    help_box = page.locator(".pending-help")
    for text in ("No pague de nuevo", "Le avisaremos por correo", "podrá pagar de nuevo a partir de las",
                 "Suele tardar unos minutos"):
        expect(help_box).to_contain_text(text)
    expect(help_box.locator("a[href^='tel:']")).to_have_count(1)
    expect(page.locator("dt", has_text="CUS")).to_have_count(1)
    page.get_by_role("button", name="Consultar estado").click()
    expect(page.get_by_role("status")).to_contain_text("el pago sigue pendiente")
    axe_at_both_widths(page, "pago pendiente")


def test_a_rejection_leads_with_intentar_de_nuevo_prefilled(page, stack) -> None:  # type: ignore[no-untyped-def]
    """Point 6: after a rejection the main action is "Intentar de nuevo", with the same items."""
    new_member_pays_aportes(page, stack, VALENTINA, VALENTINA_EMAIL, "Banco que rechaza")
    page.get_by_role("button", name="Rechazar").click()
    result = page.locator(".result")
    expect(result).to_contain_text("✗")
    expect(result).to_contain_text("Rechazada")
    first_action = page.locator(".actions a, .actions button").first
    expect(first_action).to_have_text("Intentar de nuevo")
    first_action.click()
    expect(page.get_by_role("heading", name="Resumen del pago")).to_be_visible()
    expect(page.locator("tfoot")).to_contain_text("$ 50.000")
    assert page.get_by_label("Banco").evaluate("el => el.selectedOptions[0].text") == "Banco que rechaza"


def test_first_access_forgives_a_typo_and_says_what_to_expect(page, stack) -> None:  # type: ignore[no-untyped-def]
    """Points 2 and 10: the document carried from login, a "revise su correo" page that says
    what to expect, the temporary key kept through a typo, the policy first, show password."""
    page.goto("/")
    expect(page.locator("main")).not_to_contain_text("no ingrese desde enlaces recibidos por correo")
    page.goto("/ingresar")
    page.get_by_label("Usuario").fill("80111222")
    page.get_by_role("button", name="Siguiente").click()
    page.get_by_role("link", name="¿Olvidó su contraseña?").first.click()
    expect(page.get_by_label("Número de documento")).to_have_value("80111222")
    page.get_by_label("Número de documento").fill("52123456")
    page.get_by_role("button", name="Enviar").click()
    expected = page.locator("main")
    for text in ("Qué esperar", "correo no deseado", "10 caracteres", "vencen en 15 minutos"):
        expect(expected).to_contain_text(text)
    expect(expected.locator("a[href^='tel:']")).to_have_count(1)
    expect(expected).not_to_contain_text("@correo.example")  # no address: it would tell who is a member
    axe_at_both_widths(page, "revise su correo")

    message = latest_email(stack, "luis.rodriguez@correo.example")
    key = re.search(r">([A-Z2-9]{10})<", message["html"]).group(1)
    link = re.search(r'href="([^"]*/cambiar-clave\?token=[^"]+)"', message["html"]).group(1)
    page.goto(link.replace("&amp;", "&"))
    policy_y = page.get_by_role("heading", name="Política de contraseñas").bounding_box()["y"]
    assert policy_y < page.get_by_label("Nueva contraseña", exact=True).bounding_box()["y"]
    page.get_by_label("Clave temporal").fill(key)
    new = page.get_by_label("Nueva contraseña", exact=True)
    new.fill(PASSWORD)
    expect(page.get_by_text("Longitud suficiente")).to_be_visible()
    page.get_by_role("button", name="Mostrar la nueva contraseña").click()
    expect(new).to_have_attribute("type", "text")
    page.get_by_label("Confirme la nueva contraseña").fill(PASSWORD + " con un error")
    page.get_by_role("button", name="Cambiar contraseña").click()
    expect(page.locator(".error-summary")).to_contain_text("La confirmación no coincide")
    expect(page.get_by_label("Clave temporal")).to_have_value(key)  # kept through the typo
    expect(page.get_by_label("Nueva contraseña", exact=True)).to_have_value("")
    axe_at_both_widths(page, "crear contraseña con error")
    page.get_by_label("Nueva contraseña", exact=True).fill(PASSWORD)
    page.get_by_label("Confirme la nueva contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Cambiar contraseña").click()
    expect(page.get_by_role("heading", name="Su contraseña fue actualizada")).to_be_visible()


def test_every_failed_login_explains_the_wait_without_telling_anything(page, stack) -> None:  # type: ignore[no-untyped-def]
    """Point 5: the same help for a document that does not exist as for a real one."""
    sign_in(page, "99887766", "cualquier frase de prueba")
    help_text = page.locator("#lockout-help")
    expect(help_text).to_contain_text("después de 5 intentos fallidos")
    expect(help_text).to_contain_text("1 minuto")
    expect(help_text.get_by_role("link", name="«¿Olvidó su contraseña?»")).to_have_count(1)
    axe_at_both_widths(page, "ingreso fallido")


def test_inicio_shows_what_is_owed_and_the_password_changes_while_signed_in(page, stack) -> None:  # type: ignore[no-untyped-def]
    """Point 7: "Lo que debe hoy" with "Pagar lo vencido"; change password while signed in."""
    first_access(page, stack, "1122334455", "pedro.ruiz@correo.example", PASSWORD)
    sign_in(page, "1122334455", PASSWORD)
    owed = page.locator("section.owed-today")
    expect(owed.get_by_role("heading", name="Lo que debe hoy")).to_be_visible()
    expect(owed).to_contain_text("Total a pagar")
    expect(owed).to_contain_text("$ 120.000")
    expect(owed).to_contain_text("Fecha límite más próxima")
    axe_at_both_widths(page, "lo que debe hoy")
    page.get_by_role("link", name="Cambiar mi contraseña").click()
    axe_at_both_widths(page, "cambiar mi contraseña")
    page.get_by_label("Contraseña actual").fill(PASSWORD)
    page.get_by_label("Nueva contraseña", exact=True).fill(PASSWORD + " nueva")
    page.get_by_label("Confirme la nueva contraseña").fill(PASSWORD + " nueva")
    page.get_by_role("button", name="Cambiar contraseña").click()
    expect(page.get_by_role("status")).to_contain_text("Su contraseña fue cambiada")
    assert "Su contraseña fue cambiada" in latest_email(stack, "pedro.ruiz@correo.example")["subject"]
