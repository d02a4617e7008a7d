"""The server-rendered pages (no JavaScript needed): entry, staged login, recovery, logout."""

from __future__ import annotations

import pytest

from tests.conftest import recovery_from_email, sent_emails
from tests.integration.test_session_api import DOC, PASSWORD
from tests.page_support import FORM, Browser

PAGES = ["/", "/ingresar", "/recuperar", "/terminos", "/salida"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_is_spanish_with_security_headers(browser: Browser, path: str) -> None:
    response = browser.get(path)
    assert response.status_code == 200
    html = response.body.decode()
    assert '<html lang="es-CO">' in html
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Strict-Transport-Security"].startswith("max-age=63072000")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"]
    assert headers["Content-Type"] == "text/html; charset=utf-8"


def test_home_has_the_module_button_advice_and_contacts(browser: Browser) -> None:
    html = browser.get("/").body.decode()
    for text in ("Pago de Asociados", ">Ingresar<", "escriba usted mismo la dirección",
                 "¿Olvidó su contraseña?", "NIT 900.123.456-7", "(601) 745 0000",
                 "soporte@coopejemplo.example"):
        assert text in html


def test_login_steps_match_the_seed(browser: Browser) -> None:
    step1 = browser.get("/ingresar").body.decode()
    for text in ("Inicio de Sesión", ">Usuario<", ">Siguiente<", "¿Olvidó su contraseña?",
                 "Por seguridad, el campo de usuario y contraseña no permite copiar ni pegar.",
                 "Al ingresar al sitio web aceptas los", 'autocomplete="username"', "data-no-clipboard"):
        assert text in step1
    response = browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    assert response.status_code == 303 and response.headers["Location"] == "/ingresar/clave"
    step2 = browser.get("/ingresar/clave").body.decode()
    for text in (">Contraseña<", ">Iniciar sesión<", "¿Olvidó su contraseña?",
                 'autocomplete="current-password"', "no permite copiar ni pegar",
                 "términos y condiciones de uso"):
        assert text in step2


def test_copy_paste_blocking_can_be_switched_off(browser: Browser, monkeypatch) -> None:
    monkeypatch.setenv("BLOCK_COPY_PASTE", "false")
    html = browser.get("/ingresar").body.decode()
    assert "data-no-clipboard" not in html and "no permite copiar" not in html


def test_full_journey_first_access_login_and_logout(browser: Browser, make_member) -> None:
    make_member(DOC)
    sent = browser.post("/recuperar", {"document_number": DOC}, csrf_from="/recuperar")
    assert "Si el documento está registrado" in sent.body.decode()
    token, key = recovery_from_email(sent_emails()[0])
    landing = browser.get(f"/cambiar-clave?token={token}")
    assert landing.status_code == 303 and landing.headers["Location"] == "/cambiar-clave"
    form = browser.get("/cambiar-clave")
    assert form.headers["Referrer-Policy"] == "no-referrer"
    assert "Política de contraseñas" in form.body.decode()
    changed = browser.post("/cambiar-clave", {"temporary_key": key, "new_password": PASSWORD,
                                              "confirmation": PASSWORD}, csrf_from="/cambiar-clave")
    assert "Su contraseña fue actualizada" in changed.body.decode()
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    signed_in = browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/inicio"
    landing_page = browser.get("/inicio")
    html = landing_page.body.decode()
    assert "Hola, Ana María Pérez" in html and "Este es su primer ingreso" in html
    assert landing_page.headers["Cache-Control"] == "no-store"
    out = browser.post("/salir", {}, csrf_from="/inicio")
    assert out.status_code == 303 and out.headers["Location"] == "/salida"
    assert browser.get("/inicio").headers["Location"] == "/ingresar"


def test_wrong_password_page_shows_the_generic_message(browser: Browser, make_member) -> None:
    make_member(DOC, password=PASSWORD)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    response = browser.post("/ingresar/clave", {"password": "no es la frase correcta"},
                            csrf_from="/ingresar/clave")
    assert response.status_code == 401
    assert "Documento o contraseña incorrectos" in response.body.decode()


def test_malformed_document_is_explained_on_the_form(browser: Browser) -> None:
    response = browser.post("/ingresar", {"document_number": "12-ab"}, csrf_from="/ingresar")
    assert response.status_code == 400
    assert "solo dígitos" in response.body.decode()
    assert 'aria-invalid="true"' in response.body.decode()


def test_forms_without_csrf_token_are_refused(browser: Browser) -> None:
    response = browser.post("/ingresar", {"document_number": DOC})
    assert response.status_code == 403
    assert "Vuelva a intentarlo" in response.body.decode()


def test_password_step_without_step_one_goes_back(browser: Browser) -> None:
    assert browser.get("/ingresar/clave").headers["Location"] == "/ingresar"


def test_mismatched_confirmation_is_tied_to_its_field(browser: Browser, make_member) -> None:
    make_member(DOC)
    browser.post("/recuperar", {"document_number": DOC}, csrf_from="/recuperar")
    token, key = recovery_from_email(sent_emails()[0])
    browser.get(f"/cambiar-clave?token={token}")
    response = browser.post("/cambiar-clave", {"temporary_key": key, "new_password": PASSWORD,
                                               "confirmation": "otra cosa"}, csrf_from="/cambiar-clave")
    html = response.body.decode()
    assert response.status_code == 400
    assert 'id="confirmation-error"' in html and "no coincide" in html


def test_change_password_without_link_explains(browser: Browser) -> None:
    response = browser.get("/cambiar-clave")
    assert response.status_code == 400
    assert "Solicitar un nuevo enlace" in response.body.decode()


def test_static_files_and_unknown_static(browser: Browser) -> None:
    css = browser.get("/static/app.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert browser.get("/static/../app.py").status_code in (403, 404)
    assert browser.get("/static/nada.css").status_code == 404


def test_framework_refusals_are_spanish_json(client) -> None:
    wrong_type = client.http.post("/api/v1/session/identify", headers=FORM, body="document_number=1")
    assert wrong_type.status_code == 415
    assert wrong_type.json_body["error"]["code"] == "unsupported_media_type"
    wrong_method = client.http.put("/api/v1/me", headers={"Content-Type": "application/json"}, body="{}")
    assert wrong_method.status_code == 405
    assert wrong_method.json_body["error"]["message"].startswith("Esta dirección")


@pytest.mark.parametrize("body", [b"\xff\xfe\xfd", b"a=" + b"x" * 70000, b"%%%&&&===",
                                  b"csrf_token=1&document_number=%00"])
def test_junk_form_bodies_never_500(browser: Browser, body: bytes) -> None:
    for path in ("/ingresar", "/ingresar/clave", "/recuperar", "/cambiar-clave", "/salir"):
        response = browser.client.http.post(path, headers=FORM, body=body)
        assert response.status_code < 500, (path, response.status_code)
