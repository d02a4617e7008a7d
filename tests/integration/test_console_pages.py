"""The staff console's pages through chalice's test client: sign-in, roles, every action audited."""

from __future__ import annotations

import re

import pytest

from tests.page_support import Browser
from tests.staff_support import NEW_PASSWORD, totp_code


def _csrf(body: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


def _sign_in(browser: Browser, staff_pool, username: str = "tesoreria", role: str = "tesoreria"):  # type: ignore[no-untyped-def]
    from tests.staff_support import staff_sign_in

    return staff_sign_in(browser, staff_pool, username, role)


def test_first_sign_in_through_the_pages_shows_the_qr_and_opens_the_summary(browser, staff_pool) -> None:  # type: ignore[no-untyped-def]
    staff_pool("tesoreria", "tesoreria")
    from tests.staff_support import PASSWORD

    page = browser.get("/backoffice/ingresar")
    assert page.status_code == 200 and "Ingreso del personal" in page.body.decode()
    response = browser.post("/backoffice/ingresar", {"csrf_token": _csrf(page.body.decode()),
                                                     "username": "tesoreria", "password": PASSWORD})
    assert response.headers["Location"].endswith("/backoffice/ingresar/nueva-clave")
    assert browser.get("/backoffice").headers["Location"].endswith("/backoffice/ingresar")  # pending
    body = browser.get("/backoffice/ingresar/nueva-clave").body.decode()
    response = browser.post("/backoffice/ingresar/nueva-clave", {"csrf_token": _csrf(body),
                                                                 "new_password": NEW_PASSWORD,
                                                                 "confirmation": NEW_PASSWORD})
    assert response.headers["Location"].endswith("/backoffice/ingresar/autenticador")
    body = browser.get("/backoffice/ingresar/autenticador").body.decode()
    assert "<svg" in body and "otpauth://totp/" in body and 'id="totp-secret"' in body
    wrong = browser.post("/backoffice/ingresar/autenticador", {"csrf_token": _csrf(body), "code": "12345"})
    assert wrong.status_code == 400
    response = browser.post("/backoffice/ingresar/autenticador",
                            {"csrf_token": _csrf(body), "code": totp_code()})
    assert response.headers["Location"].endswith("/backoffice")
    summary = browser.get("/backoffice")
    assert summary.status_code == 200, summary.body
    text = summary.body.decode()
    assert "Resumen de recaudos" in text and "tesoreria (Tesorería)" in text and "<svg" in text


def test_a_member_session_opens_no_staff_page_nor_the_reverse(browser, staff_pool, make_member) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_observability import sign_in

    sign_in(browser, make_member)  # a member signed in
    assert browser.get("/backoffice").status_code == 303
    assert browser.get("/backoffice/pagos?document=1020304050").status_code == 303
    member_jar = dict(browser.jar)
    staff = Browser(browser.client)
    _sign_in(staff, staff_pool)
    staff_cookie = {k: v for k, v in staff.jar.items() if "staff" in k}
    only_staff = Browser(browser.client)
    only_staff.jar = staff_cookie
    assert only_staff.get("/inicio").status_code == 303  # the staff cookie is no member session
    assert only_staff.get("/backoffice").status_code == 200
    only_member = Browser(browser.client)
    only_member.jar = {k: v for k, v in member_jar.items() if "staff" not in k}
    assert only_member.get("/inicio").status_code == 200


def test_payment_search_detail_and_csv(browser, staff_pool, pending) -> None:  # type: ignore[no-untyped-def]
    from tests.payment_support import get_payment

    payment = get_payment(pending.id)
    _sign_in(browser, staff_pool)
    found = browser.get(f"/backoffice/pagos?document={payment.document_number}")
    assert found.status_code == 200 and payment.reference in found.body.decode()
    csv_answer = browser.get(f"/backoffice/pagos?document={payment.document_number}&formato=csv")
    assert csv_answer.headers["Content-Type"].startswith("text/csv")
    assert payment.reference in csv_answer.body.decode()
    bad = browser.get("/backoffice/pagos?reference=xx")
    assert bad.status_code == 400 and "referencia" in bad.body.decode()
    detail = browser.get(f"/backoffice/pagos/{payment.payment_id}")
    assert detail.status_code == 200
    assert "Consultar en la pasarela" in detail.body.decode()


@pytest.mark.parametrize("path", ["/backoffice/pagos/x/consultar", "/backoffice/pagos/x/reenviar",
                                  "/backoffice/revision/x", "/backoffice/exportaciones",
                                  "/backoffice/asociados/1020304050/bloquear",
                                  "/backoffice/asociados/1020304050/recuperacion",
                                  "/backoffice/personal", "/backoffice/personal/tesoreria/rol"])
def test_a_consulta_user_is_refused_every_action(browser, staff_pool, path: str) -> None:  # type: ignore[no-untyped-def]
    _sign_in(browser, staff_pool, "consulta", "consulta")
    body = browser.get("/backoffice").body.decode()
    response = browser.post(path, {"csrf_token": _csrf(body), "reason": "prueba de rol",
                                   "action": "reject", "role": "administrador"})
    assert response.status_code == 403, (path, response.status_code)
    assert "Su rol no permite esta acción." in response.body.decode()


def test_a_post_without_the_session_token_is_refused(browser, staff_pool) -> None:  # type: ignore[no-untyped-def]
    _sign_in(browser, staff_pool)
    response = browser.post("/backoffice/exportaciones", {"csrf_token": "otro"})
    assert response.status_code == 400


def test_every_action_is_audited_with_the_cognito_username(browser, staff_pool, make_member) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import AuditEvent

    make_member("1020304050")
    _sign_in(browser, staff_pool, "administrador", "administrador")
    body = browser.get("/backoffice/asociados?documento=1020304050").body.decode()
    assert "Bloquear en el portal" in body
    no_reason = browser.post("/backoffice/asociados/1020304050/bloquear", {"csrf_token": _csrf(body)})
    assert no_reason.status_code == 400
    done = browser.post("/backoffice/asociados/1020304050/bloquear",
                        {"csrf_token": _csrf(body), "reason": "Suplantación reportada"},
                        )
    assert done.status_code == 303
    events = list(AuditEvent.query("1020304050"))
    blocked = [e for e in events if e.event == "staff_member_blocked"]
    assert [(e.actor, e.reason) for e in blocked] == [("staff:administrador", "Suplantación reportada")]
    signins = [e for e in AuditEvent.query("staff") if e.event == "authn_login_success"]
    assert signins and signins[0].actor == "staff:administrador"


def test_the_administrador_creates_a_staff_user_and_sets_the_group(browser, staff_pool) -> None:  # type: ignore[no-untyped-def]
    _sign_in(browser, staff_pool, "administrador", "administrador")
    body = browser.get("/backoffice/personal").body.decode()
    created = browser.post("/backoffice/personal", {"csrf_token": _csrf(body), "username": "ana.cartera",
                                                    "email": "ana@coopejemplo.example", "role": "consulta"})
    assert created.status_code == 200 and "Contraseña temporal" in created.body.decode()
    moved = browser.post("/backoffice/personal/ana.cartera/rol", {"csrf_token": _csrf(body),
                                                                  "role": "tesoreria"})
    assert moved.status_code == 303
    listing = browser.get("/backoffice/personal").body.decode()
    assert "ana.cartera" in listing
    disabled = browser.post("/backoffice/personal/ana.cartera/estado", {"csrf_token": _csrf(body),
                                                                        "enabled": "false"})
    assert disabled.status_code == 303
