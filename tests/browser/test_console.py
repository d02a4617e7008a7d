"""The staff console in Chromium: first sign-in on Cognito (new password, TOTP set-up), a payment
a member made minutes before, a review case resolved, a bad file uploaded straight to S3 and its
report, an export generated and downloaded; a consulta user sees no action; axe on every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from devtools.staff_pool import DEFAULT_DEMO_PASSWORD
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_accessibility import WIDTHS, Audit, sized_page  # noqa: F401  (a fixture)
from tests.browser.test_login_journey import first_access, sign_in
from tests.browser.test_payment_journey import choose_and_pay
from tests.staff_support import totp_code

STAFF_PASSWORD = "frase larga del personal de tesoreria"
ROSA, ROSA_EMAIL = "1144668800", "rosa.pardo@correo.example"  # hers alone: other journeys pay too


def console_sign_in(page, username: str, audit: Audit | None = None) -> None:  # type: ignore[no-untyped-def]
    """Sign in as a demo staff user: the first time with the new password and the TOTP set-up."""
    page.goto("/backoffice/ingresar")
    if audit:
        audit.check("consola: ingreso")
    page.get_by_label("Usuario").fill(username)
    page.get_by_label("Contraseña").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Continuar").click()
    if page.get_by_role("alert").count():  # not changed yet: the temporary password
        page.get_by_label("Contraseña").fill(DEFAULT_DEMO_PASSWORD)
        page.get_by_role("button", name="Continuar").click()
        expect(page.get_by_role("heading", name="Cree su contraseña")).to_be_visible()
        if audit:
            audit.check("consola: nueva contraseña")
        page.get_by_label("Nueva contraseña", exact=True).fill(STAFF_PASSWORD)
        page.get_by_label("Confirme la nueva contraseña").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Guardar y continuar").click()
        expect(page.get_by_role("heading", name="Configure su autenticador")).to_be_visible()
        expect(page.get_by_role("img", name=re.compile("Código QR"))).to_be_visible()
        if audit:
            audit.check("consola: configurar autenticador")
        secret = page.locator("#totp-secret").inner_text()
        page.get_by_label("Código de 6 dígitos").fill(totp_code(secret))
        page.get_by_role("button", name="Activar y continuar").click()
    else:
        expect(page.get_by_role("heading", name="Código de verificación")).to_be_visible()
        if audit:
            audit.check("consola: código de verificación")
        page.get_by_label("Código de 6 dígitos").fill(totp_code())
        page.get_by_role("button", name="Ingresar").click()
    expect(page.get_by_role("heading", name="Resumen de recaudos")).to_be_visible()


def member_pays(browser, stack) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Rosa pays her dental plan (the bank approves) and her aportes (the bank leaves it pending):
    the approved payment's reference and the pending payment's id."""
    from tests.browser.test_login_journey import NEW_PASSWORD

    context = browser.new_context(base_url=stack.app_url, locale="es-CO")
    member = context.new_page()
    member.set_default_timeout(15_000)
    first_access(member, stack, ROSA, ROSA_EMAIL)
    sign_in(member, ROSA, NEW_PASSWORD)
    choose_and_pay(member, {"Plan odontológico familiar": None})
    member.get_by_role("button", name="Aprobar").click()
    expect(member.get_by_role("heading", name="Comprobante de pago")).to_be_visible()
    reference = member.locator("article.receipt dt:text-is('Referencia') + dd").inner_text().strip()
    choose_and_pay(member, {"Aportes sociales noviembre": None})
    member.get_by_role("button", name="Dejar pendiente").click()
    expect(member.get_by_role("heading", name="Comprobante de pago")).to_be_visible()
    pending_id = re.search(r"/pagos/([^/?]+)", member.url).group(1)
    context.close()
    return reference, pending_id


def flag_for_review(stack, payment_id: str) -> None:  # type: ignore[no-untyped-def]
    """What the poller does to a payment still pending after 24 hours (the test cannot wait them):
    the review flag and its reason, written to the stack's DynamoDB."""
    import boto3

    dynamo = boto3.client("dynamodb", endpoint_url=stack.moto_url, region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
    dynamo.update_item(TableName="sv-local-payments", Key={"payment_id": {"S": payment_id}},
                       UpdateExpression="SET review_flag = :f, review_reason = :r",
                       ExpressionAttributeValues={":f": {"S": "REVIEW"}, ":r": {"S": "horizon_exceeded"}})


def test_tesoreria_finds_the_payment_exports_it_and_uploads_a_bad_file(page, browser, stack) -> None:  # type: ignore[no-untyped-def]
    console_sign_in(page, "tesoreria")
    reference, pending_id = member_pays(browser, stack)
    assert re.fullmatch(r"SV[A-Z0-9]{12}", reference), reference

    page.get_by_role("link", name="Pagos", exact=True).click()
    page.get_by_label("Documento del asociado").fill(ROSA)
    page.get_by_role("button", name="Buscar").click()
    page.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", name=f"Pago {reference}")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("Aprobada")
    page.get_by_role("button", name="Consultar en la pasarela").click()
    expect(page.get_by_role("status")).to_contain_text("Se consultó la pasarela")

    page.get_by_role("link", name="Exportaciones", exact=True).click()
    page.get_by_role("button", name="Generar ahora").click()
    expect(page.get_by_role("status")).to_contain_text("Se generó la exportación")
    page.get_by_role("link", name="Pagos", exact=True).click()
    page.get_by_label("Referencia").fill(reference)
    page.get_by_role("button", name="Buscar").click()
    page.get_by_role("link", name=reference).click()
    export_id = re.search(r"\d{8}-\d{6}-[a-z0-9]+", page.locator("dl.facts").inner_text()).group(0)
    page.get_by_role("link", name="Exportaciones", exact=True).click()
    with page.expect_download() as download:
        page.get_by_role("link", name=f"Descargar {export_id}").click()
    with open(download.value.path(), encoding="utf-8") as downloaded:
        content = downloaded.read()
    assert reference in content and content.startswith("export_id;reference;cus")

    flag_for_review(stack, pending_id)
    page.get_by_role("link", name="Revisión", exact=True).click()
    case = page.locator("section.card", has_text="Pasaron más de 24 horas")
    expect(case).to_have_count(1)
    case.get_by_label("Dejar pendiente 24 horas más").check()
    case.get_by_role("button", name="Resolver el caso").click()  # no reason: the form stays
    assert case.get_by_label(re.compile("Motivo")).evaluate("e => e.validity.valueMissing")
    case.get_by_label(re.compile("Motivo")).fill("El banco confirma que el débito sigue en proceso")
    case.get_by_role("button", name="Resolver el caso").click()
    expect(page.get_by_role("status")).to_contain_text("Se resolvió el caso")
    expect(page.locator("section.card", has_text="Pasaron más de 24 horas")).to_have_count(0)
    page.goto(f"/backoffice/pagos/{pending_id}")
    expect(page.locator("dl.facts")).to_contain_text("keep_pending por staff:tesoreria")
    expect(page.get_by_role("table", name=re.compile("Eventos de auditoría"))).to_contain_text(
        "El banco confirma que el débito sigue en proceso")

    bad = ARTIFACTS / "obligaciones-con-error.csv"
    ARTIFACTS.mkdir(exist_ok=True)
    bad.write_text("document_number,obligation_id,type,product_number,description,due_date,amount_due,"
                   "minimum_amount,maximum_amount,cutoff\n"
                   f"{ROSA},CON-ODO-03,CONVENIO,77001,Plan odontológico familiar,2026-12-30,cuarenta,"
                   "45000,45000,2026-11-22T23:00:00-05:00\n", "utf-8")
    page.get_by_role("link", name="Cargas", exact=True).click()
    partial = page.locator("form", has=page.get_by_role("heading", name=re.compile("parcial")))
    partial.get_by_label("Archivo CSV").set_input_files(str(bad))
    partial.get_by_role("button", name="Cargar").click()
    expect(page.get_by_role("heading", name="Carga de archivo")).to_be_visible()
    for _ in range(30):
        if page.get_by_role("table", name="Filas rechazadas").count():
            break
        page.wait_for_timeout(1000)
        page.get_by_role("link", name="actualizar el estado").click()
    table = page.get_by_role("table", name="Filas rechazadas")
    expect(table).to_contain_text("2")
    expect(table).to_contain_text("amount_due")
    page.screenshot(path=str(ARTIFACTS / "consola-reporte-de-carga.png"), full_page=True)


def test_a_consulta_user_sees_no_action(page, stack) -> None:  # type: ignore[no-untyped-def]
    console_sign_in(page, "consulta")
    page.get_by_role("link", name="Exportaciones", exact=True).click()
    expect(page.get_by_role("button", name="Generar ahora")).to_have_count(0)
    page.get_by_role("link", name="Cargas", exact=True).click()
    expect(page.get_by_text("Su rol permite ver el historial de cargas")).to_be_visible()
    expect(page.get_by_role("link", name="Personal", exact=True)).to_have_count(0)
    page.goto("/backoffice/personal")
    expect(page.get_by_role("alert")).to_contain_text("Su rol no permite esta acción.")


@pytest.mark.parametrize("sized_page", list(WIDTHS), indirect=True)
def test_every_console_page_has_no_axe_violations(sized_page, browser, stack, request) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page = sized_page
    label = request.node.callspec.params["sized_page"]
    audit = Audit(page, f"consola-{label}")
    console_sign_in(page, "administrador", audit)
    audit.check("consola: resumen")
    for path, name in (("/backoffice/pagos", "pagos"),
                       ("/backoffice/pagos?status=APPROVED", "pagos: resultados"),
                       ("/backoffice/revision", "revisión"), ("/backoffice/cargas", "cargas"),
                       ("/backoffice/exportaciones", "exportaciones"), ("/backoffice/asociados", "asociados"),
                       (f"/backoffice/asociados?documento={ROSA}", "asociado"),
                       ("/backoffice/personal", "personal"),
                       ("/backoffice/pagos/no-existe", "página de error")):
        page.goto(path)
        audit.check(f"consola: {name}")
    page.goto(f"/backoffice/pagos?document={ROSA}")
    if not page.locator("table.payments a").count():  # the journey above did not run first
        member_pays(browser, stack)
        page.goto(f"/backoffice/pagos?document={ROSA}")
    page.locator("table.payments a").first.click()
    audit.check("consola: detalle de pago")
    flag_for_review(stack, re.search(r"/backoffice/pagos/([^/?]+)", page.url).group(1))
    page.goto("/backoffice/revision")
    expect(page.get_by_role("button", name="Resolver el caso").first).to_be_visible()
    audit.check("consola: revisión con un caso")
    page.goto("/backoffice/cargas")
    reports = page.get_by_role("link", name=re.compile("^Ver reporte"))
    if reports.count():
        reports.first.click()
        audit.check("consola: reporte de una carga")
    audit.assert_clean()
