"""A member in Chromium: first access through the outbox email, two-step login, paste refused,
lockout message, logout."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import latest_email

NEW_PASSWORD = "una frase larga para mi cooperativa"


def first_access(page, stack, document: str, email: str, password: str = NEW_PASSWORD) -> None:  # type: ignore[no-untyped-def]
    """¿Olvidó su contraseña? → email in the local outbox → link → temporary key + new password."""
    page.goto("/ingresar")
    page.get_by_role("link", name="¿Olvidó su contraseña?").first.click()
    page.get_by_label("Número de documento").fill(document)
    page.get_by_role("button", name="Enviar").click()
    expect(page.get_by_role("status")).to_contain_text("Si el documento está registrado")

    message = latest_email(stack, email)
    key = re.search(r">([A-Z2-9]{10})<", message["html"]).group(1)
    page.goto(stack.outbox_url)
    page.get_by_role("link", name=message["subject"]).first.click()
    with page.expect_navigation():
        page.frame_locator("iframe").get_by_role("link", name="Crear mi contraseña").click()
    expect(page).to_have_url(re.compile(r"/cambiar-clave$"))  # the token left the address bar
    page.get_by_label("Clave temporal").fill(key)
    page.get_by_label("Nueva contraseña", exact=True).fill(password)
    page.get_by_label("Confirme la nueva contraseña").fill(password)
    page.get_by_role("button", name="Cambiar contraseña").click()
    expect(page.get_by_role("heading", name="Su contraseña fue actualizada")).to_be_visible()


def sign_in(page, document: str, password: str):  # type: ignore[no-untyped-def]
    page.goto("/ingresar")
    page.get_by_label("Usuario").fill(document)
    page.get_by_role("button", name="Siguiente").click()
    page.get_by_label("Contraseña").fill(password)
    page.get_by_role("button", name="Iniciar sesión").click()


def test_first_access_login_and_logout(page, stack) -> None:  # type: ignore[no-untyped-def]
    first_access(page, stack, "1020304050", "ana.perez@correo.example")
    page.get_by_role("link", name="Iniciar sesión").click()
    # Step 1 shows the seed's notices and no member data.
    notice = "Por seguridad, el campo de usuario y contraseña no permite copiar ni pegar."
    expect(page.get_by_text(notice)).to_be_visible()
    expect(page.get_by_text("Al ingresar al sitio web aceptas los")).to_be_visible()
    sign_in(page, "1020304050", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Hola, Ana María Pérez Gómez")).to_be_visible()
    expect(page.locator("#ultimo-ingreso")).to_contain_text("Este es su primer ingreso")
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.get_by_role("heading", name="Su sesión se cerró")).to_be_visible()
    page.goto("/inicio")
    expect(page).to_have_url(re.compile(r"/ingresar$"))  # the session is gone server-side

    sign_in(page, "1020304050", NEW_PASSWORD)
    expect(page.locator("#ultimo-ingreso")).to_contain_text("Su último ingreso fue el")


def test_paste_is_refused_in_both_fields(page, stack) -> None:  # type: ignore[no-untyped-def]
    page.goto("/recuperar")
    page.evaluate("navigator.clipboard.writeText('52123456')")
    control = page.get_by_label("Número de documento")
    control.click()
    page.keyboard.press("Control+V")
    assert control.input_value() == "52123456"  # the clipboard works where pasting is allowed

    page.goto("/ingresar")
    user = page.get_by_label("Usuario")
    user.click()
    page.keyboard.press("Control+V")
    assert user.input_value() == ""
    prevented = user.evaluate(
        "el => !el.dispatchEvent(new ClipboardEvent('paste', "
        "{cancelable: true, clipboardData: new DataTransfer()}))")
    assert prevented
    user.fill("52123456")
    page.get_by_role("button", name="Siguiente").click()
    password = page.get_by_label("Contraseña")
    password.click()
    page.keyboard.press("Control+V")
    assert password.input_value() == ""
    for kind in ("copy", "cut", "drop"):
        assert password.evaluate(f"el => !el.dispatchEvent(new Event('{kind}', {{cancelable: true}}))")


def test_lockout_shows_the_generic_message(page, stack) -> None:  # type: ignore[no-untyped-def]
    first_access(page, stack, "80111222", "jorge.restrepo@correo.example")
    for _ in range(5):
        sign_in(page, "80111222", "no es mi contraseña correcta")
        expect(page.get_by_role("alert")).to_be_visible()
    sign_in(page, "80111222", NEW_PASSWORD)  # the right one, while locked
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Documento o contraseña incorrectos")
    expect(alert).to_contain_text("se bloquea temporalmente")
    expect(page).to_have_url(re.compile(r"/ingresar/clave$"))


def test_unknown_document_gets_the_same_step_two(page, stack) -> None:  # type: ignore[no-untyped-def]
    sign_in(page, "11223344", "cualquier frase de prueba")
    expect(page.get_by_role("alert")).to_contain_text("Documento o contraseña incorrectos")
