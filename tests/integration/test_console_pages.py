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


def test_upload_form_posts_to_s3_and_the_report_names_the_bad_line(browser, staff_pool) -> None:  # type: ignore[no-untyped-def]
    import boto3

    from devtools.drop_folder import DropFolderWatcher

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="sv-local-files")
    _sign_in(browser, staff_pool)
    page = browser.get("/backoffice/cargas")
    body = page.body.decode()
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    action = re.search(r'<form method="post" action="([^"]+)" enctype="multipart/form-data"', body).group(1)
    assert action.split("/")[2] in csp  # the S3 origin may receive the form, nothing else new
    keys = re.findall(r'name="key" value="(imports/obligations/[^"]+-parcial\.csv)"', body)
    assert len(keys) == 1
    s3.put_object(Bucket="sv-local-files", Key=keys[0], Body=(
        "document_number,obligation_id,type,product_number,description,due_date,amount_due,"
        "minimum_amount,maximum_amount,cutoff\n"
        "1020304050,CR-1,CREDITO,1,Crédito,2026-12-30,mucho,1,1,2026-11-22T23:00:00-05:00\n").encode())
    pending = browser.get(f"/backoffice/cargas/archivo?key={keys[0]}&bucket=sv-local-files").body.decode()
    assert "La importación está en curso" in pending
    assert DropFolderWatcher("sv-local-files").run_once()  # what EventBridge does in AWS
    report = browser.get(f"/backoffice/cargas/archivo?key={keys[0]}").body.decode()
    assert "Filas rechazadas" in report and re.search(r'data-label="Línea" class="amount">2<', report)
    assert "amount_due" in report
    history = browser.get("/backoffice/cargas").body.decode()
    assert "Ver reporte" in history
    assert browser.get("/backoffice/cargas/archivo?key=../../etc").status_code == 400


def test_generate_now_lists_the_export_and_download_redirects_to_s3(browser, staff_pool) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import AuditEvent

    _sign_in(browser, staff_pool)
    body = browser.get("/backoffice/exportaciones").body.decode()
    assert browser.post("/backoffice/exportaciones", {"csrf_token": _csrf(body)}).status_code == 303
    listing = browser.get("/backoffice/exportaciones?aviso=exportado").body.decode()
    assert "Se generó la exportación." in listing
    export_id = re.search(r'/backoffice/exportaciones/([^/]+)/descargar', listing).group(1)
    download = browser.get(f"/backoffice/exportaciones/{export_id}/descargar")
    assert download.status_code == 303 and "Signature=" in download.headers["Location"]
    events = {e.event for e in AuditEvent.query("staff")}
    assert {"staff_export_created", "sensitive_read"} <= events


def test_the_review_queue_explains_and_resolves_with_a_reason(browser, staff_pool, pending, gateway) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.adapters.dynamo.models import AuditEvent, Payment

    Payment(payment_id=pending.id).update(actions=[Payment.review_flag.set("REVIEW"),
                                                   Payment.review_reason.set("horizon_exceeded")])
    _sign_in(browser, staff_pool)
    body = browser.get("/backoffice/revision").body.decode()
    assert "Pasaron más de 24 horas" in body and pending.reference in body
    refused = browser.post(f"/backoffice/revision/{pending.id}", {"csrf_token": _csrf(body),
                                                                  "action": "keep_pending", "reason": ""})
    assert refused.status_code == 400 and "motivo" in refused.body.decode()
    done = browser.post(f"/backoffice/revision/{pending.id}", {
        "csrf_token": _csrf(body), "action": "keep_pending", "reason": "El banco sigue procesando"})
    assert done.status_code == 303
    assert pending.reference not in browser.get("/backoffice/revision").body.decode()
    kept = [e for e in AuditEvent.query("1020304050") if e.reason == "El banco sigue procesando"]
    assert kept and kept[0].actor == "staff:tesoreria"


def test_the_summary_counts_today_and_the_month(browser, staff_pool, pending, clock) -> None:  # type: ignore[no-untyped-def]
    _sign_in(browser, staff_pool)
    body = browser.get("/backoffice").body.decode()
    # One payment created today (CREATED or PENDING at the bank): it shows in today's table.
    assert re.search(r'(Pendiente|Iniciada)</th><td data-label="Pagos" class="amount">1<', body)
    assert "Recaudo aprobado por día, últimos 30 días" in body and body.count("<rect ") == 30


def test_an_idle_console_session_ends_after_15_minutes(browser, staff_pool, clock) -> None:  # type: ignore[no-untyped-def]
    _sign_in(browser, staff_pool)
    clock.advance(minutes=14)
    assert browser.get("/backoffice").status_code == 200
    clock.advance(minutes=15, seconds=1)
    assert browser.get("/backoffice").headers["Location"].endswith("/backoffice/ingresar")


def test_console_pages_carry_the_idle_warning_of_the_staff_session(browser, staff_pool, clock) -> None:  # type: ignore[no-untyped-def]
    _sign_in(browser, staff_pool)
    body = browser.get("/backoffice").body.decode()
    assert 'data-idle-seconds="900"' in body and 'data-keepalive-url="/backoffice/sesion"' in body
    assert 'action="/backoffice/salir"' in body and "tras 15 minutos sin actividad" in body
    clock.advance(minutes=5)
    alive = browser.get("/backoffice/sesion")
    assert alive.status_code == 200 and alive.json_body["session_expires_at"] == "2026-11-23T10:20:00-05:00"
    sign_out = browser.post("/backoffice/salir", {"csrf_token": _csrf(body), "motivo": "inactividad"})
    assert sign_out.headers["Location"].endswith("?salida=inactividad")
    assert "se cerró por inactividad" in browser.get("/backoffice/ingresar?salida=inactividad").body.decode()
    assert browser.get("/backoffice/sesion").status_code == 401
