"""The member's journey without JavaScript: what is owed on /inicio, paid instalments, the
password changed while signed in, first access that keeps the temporary key, the lockout help."""

from __future__ import annotations

import re

from tests.conftest import recovery_from_email, sent_emails
from tests.integration.test_payment_pages import choose, member  # noqa: F401  (the fixture)
from tests.integration.test_session_api import DOC, PASSWORD
from tests.page_support import Browser
from tests.payment_support import get_obligation

NEW = "otra frase larga para la cooperativa"


def test_inicio_says_what_is_owed_today_and_pays_the_overdue_part(member: Browser) -> None:  # noqa: F811
    html = member.get("/inicio").body.decode()
    for text in ("Lo que debe hoy", "Tiene $ 850.000 vencidos", "$ 930.000", "15 de noviembre de 2026"):
        assert text in html, text
    link = re.search(r'href="([^"]+)">Pagar lo vencido \(\$ 850.000\)</a>', html).group(1)
    summary = member.get(link.replace("&amp;", "&")).body.decode()
    assert "Resumen del pago" in summary and 'name="item_0_amount" value="850000"' in summary
    assert "$ 80.000" not in summary  # only what is overdue


def test_a_paid_instalment_is_never_overdue_and_offers_no_zero_option(member: Browser) -> None:  # noqa: F811
    credit = get_obligation("CRE-1")
    credit.amount_due, credit.minimum_amount = 0, 0
    credit.portal_payments = {"p1": {"amount": 850_000, "at": "2026-11-22T15:00:00+00:00",
                                     "reference": "SVABCDEFGHIJKL"}}
    credit.save()
    html = member.get("/obligaciones").body.decode()
    card = re.search(r'<fieldset class="card obligation state-paid".*?</fieldset>', html, re.S).group(0)
    assert "Cuota pagada" in card and "SVABCDEFGHIJKL" in card and "22 de noviembre de 2026" in card
    assert "en mora" not in card and "Valor a pagar: $ 0" not in card and "Pago mínimo" not in card
    assert "Otro valor entre $ 1 y $ 12.400.000" in card
    assert "Lo que debe hoy" in member.get("/inicio").body.decode()
    assert "vencidos" not in member.get("/inicio").body.decode()


def test_change_password_while_signed_in_ends_the_other_sessions(member: Browser, client) -> None:  # noqa: F811
    other = Browser(client)
    other.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    other.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    assert other.get("/inicio").status_code == 200
    wrong = member.post("/cuenta/clave", {"current_password": "no es la actual", "new_password": NEW,
                                          "confirmation": NEW}, csrf_from="/cuenta/clave")
    assert wrong.status_code == 400 and "La contraseña actual no es correcta" in wrong.body.decode()
    assert 'href="#current_password"' in wrong.body.decode()
    weak = member.post("/cuenta/clave", {"current_password": PASSWORD, "new_password": "corta",
                                         "confirmation": "corta"}, csrf_from="/cuenta/clave")
    assert weak.status_code == 400 and 'href="#new_password"' in weak.body.decode()
    done = member.post("/cuenta/clave", {"current_password": PASSWORD, "new_password": NEW,
                                         "confirmation": NEW}, csrf_from="/cuenta/clave")
    assert done.headers["Location"] == "/inicio?aviso=clave-cambiada"
    assert "Su contraseña fue cambiada" in member.get("/inicio?aviso=clave-cambiada").body.decode()
    assert other.get("/inicio").headers["Location"] == "/ingresar"  # the other session ended
    assert "Su contraseña fue cambiada" in sent_emails()[-1].subject


def test_first_access_keeps_the_temporary_key_through_a_typo(browser: Browser, make_member) -> None:  # type: ignore[no-untyped-def]
    make_member(DOC)
    browser.post("/recuperar", {"document_number": DOC}, csrf_from="/recuperar")
    token, key = recovery_from_email(sent_emails()[0])
    browser.get(f"/cambiar-clave?token={token}")
    form = browser.get("/cambiar-clave").body.decode()
    assert form.index("Política de contraseñas") < form.index('id="new_password"')  # policy first
    for fields in ({"new_password": NEW, "confirmation": NEW + "x"},
                   {"new_password": "corta", "confirmation": "corta"}):
        again = browser.post("/cambiar-clave", {"temporary_key": key, **fields}, csrf_from="/cambiar-clave")
        html = again.body.decode()
        assert again.status_code == 400 and f'value="{key}"' in html
        assert NEW not in html and "corta" not in html.split("Política de contraseñas")[0]
        assert 'class="error-summary"' in html


def test_recovery_carries_the_document_typed_at_login(browser: Browser) -> None:
    assert 'value=""' in browser.get("/recuperar").body.decode().split('id="document_number"')[1][:400]
    browser.post("/ingresar", {"document_number": "52123456"}, csrf_from="/ingresar")
    field = browser.get("/recuperar").body.decode().split('id="document_number"')[1][:400]
    assert 'value="52123456"' in field


def test_every_failed_login_explains_the_wait_alike(browser: Browser, make_member) -> None:  # type: ignore[no-untyped-def]
    make_member(DOC, password=PASSWORD)
    pages = []
    for document in (DOC, "99887766"):
        browser.post("/ingresar", {"document_number": document}, csrf_from="/ingresar")
        html = browser.post("/ingresar/clave", {"password": "no es la clave"},
                            csrf_from="/ingresar/clave").body.decode()
        help_text = re.search(r'<p id="lockout-help">(.*?)</p>', html, re.S).group(1)
        assert "después de 5 intentos fallidos" in help_text and "1 minuto" in help_text
        assert "«¿Olvidó su contraseña?»" in help_text
        pages.append(re.sub(r'value="[^"]*"', "", html.split('<main', 1)[1].split('</main>')[0]))
    assert pages[0] == pages[1]  # nothing tells a member from a stranger
