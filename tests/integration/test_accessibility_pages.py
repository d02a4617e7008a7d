"""Display preferences without JavaScript, and what the pages tell the session warning."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_session_api import DOC, PASSWORD
from tests.page_support import FORM, Browser


def prefs(browser: Browser, accion: str, volver: str = "/ingresar", **headers: str):  # type: ignore[no-untyped-def]
    extra = {name.replace("_", "-"): value for name, value in headers.items()}
    return browser.client.http.post("/preferencias", headers={**FORM, **browser._cookie(), **extra},
                                     body=f"accion={accion}&volver={volver}")


def remember(browser: Browser, response) -> None:  # type: ignore[no-untyped-def]
    browser._remember(response)


def test_text_size_and_contrast_work_without_javascript(browser: Browser) -> None:
    page = browser.get("/ingresar").body.decode()
    assert '<html lang="es-CO">' in page
    for text in ("Tamaño del texto", ">A-<", ">A<", ">A+<", "Alto contraste", 'aria-pressed="false"',
                 'name="volver" value="/ingresar"'):
        assert text in page, text
    response = prefs(browser, "mas", Sec_Fetch_Site="same-origin")
    assert response.status_code == 303 and response.headers["Location"] == "/ingresar"
    assert "sv_prefs=1.0" in str(response.headers["Set-Cookie"])
    remember(browser, response)
    for _ in range(5):
        remember(browser, prefs(browser, "mas"))
    remember(browser, prefs(browser, "contraste"))
    html = browser.get("/ingresar").body.decode()
    assert '<html lang="es-CO" class="text-3 contrast">' in html  # clamped at the largest size
    assert 'aria-pressed="true"' in html
    remember(browser, prefs(browser, "normal"))
    remember(browser, prefs(browser, "menos"))
    remember(browser, prefs(browser, "menos"))
    assert '<html lang="es-CO" class="text-minus-1 contrast">' in browser.get("/").body.decode()


@pytest.mark.parametrize("volver,location", [
    ("/terminos", "/terminos"), ("//evil.example/x", "/"), ("https://evil.example", "/"),
    ("/\\evil.example", "/"), ("/pagos/abc?x=1", "/pagos/abc?x=1"), ("", "/"),
])
def test_preferences_only_go_back_to_this_site(browser: Browser, volver: str, location: str) -> None:
    assert prefs(browser, "mas", volver).headers["Location"] == location


def test_a_cross_site_post_changes_nothing_and_script_posts_get_204(browser: Browser) -> None:
    cross = prefs(browser, "contraste", Sec_Fetch_Site="cross-site")
    assert cross.status_code == 303 and "Set-Cookie" not in cross.headers
    quiet = browser.client.http.post("/preferencias", headers={**FORM, "Sec-Fetch-Site": "same-origin"},
                                     body="accion=contraste&js=1&volver=/")
    assert quiet.status_code == 204 and "sv_prefs=0.1; Path=/; HttpOnly" in str(quiet.headers["Set-Cookie"])


def test_posted_pages_come_back_to_the_form_they_belong_to(client, make_member) -> None:  # type: ignore[no-untyped-def]
    make_member(DOC, password=PASSWORD)
    browser = Browser(client)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    summary = browser.post("/pagos/resumen", {}, csrf_from="/obligaciones").body.decode()
    assert 'name="volver" value="/obligaciones"' in summary
    wrong = browser.post("/ingresar/clave", {"password": "x"}).body.decode()
    assert 'name="volver" value="/ingresar/clave"' in wrong


def test_the_warning_counts_from_the_sessions_real_expiry(client, make_member, clock) -> None:  # type: ignore[no-untyped-def]
    make_member(DOC, password=PASSWORD)
    browser = Browser(client)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")

    def seconds_left() -> int:
        html = browser.get("/inicio").body.decode()
        assert 'role="alertdialog"' in html and 'aria-describedby="session-warning-text"' in html
        return int(re.search(r'data-idle-seconds="(\d+)"', html).group(1))

    assert seconds_left() == 600
    clock.advance(seconds=20)  # the session slides only every 30 s (one write saved per click)
    assert seconds_left() == 580
    clock.advance(seconds=20)
    assert seconds_left() == 600
    for _ in range(12):  # active for almost an hour: near the absolute end the idle time shrinks
        clock.advance(seconds=290)
        seconds_left()
    assert seconds_left() == 80
    assert 'data-expired-url="/salida?motivo=inactividad"' in browser.get("/inicio").body.decode()
    clock.advance(minutes=2)
    assert browser.get("/inicio").status_code == 303


def test_the_idle_logout_page_says_why(browser: Browser) -> None:
    html = browser.get("/salida?motivo=inactividad").body.decode()
    assert "porque no tuvo actividad durante 10 minutos" in html
    assert "porque no tuvo actividad" not in browser.get("/salida").body.decode()


def test_errors_are_tied_to_their_fields(browser: Browser) -> None:
    html = browser.post("/ingresar", {"document_number": "abc"}, csrf_from="/ingresar").body.decode()
    field = re.search(r"<input id=\"document_number\"[^>]*>", html, re.S).group(0)
    assert 'aria-invalid="true"' in field and "document-error" in field
    assert 'id="document-error"' in html
