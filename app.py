"""Sucursal Virtual: routes, schedules and events. Each one delegates; no business rule lives here."""

from __future__ import annotations

from chalice import Chalice, Cron, Rate, Response
from chalice.app import Request

from chalicelib import web
from chalicelib.config import get_settings
from chalicelib.web import http

app = Chalice(app_name="sucursal-virtual")
FORM = http.FORM


def current_request() -> Request:
    """The request being handled (Chalice's ``app.current_request`` is None between requests)."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no request is being handled")
    return request


@app.middleware("http")
def http_envelope(event, get_response):  # type: ignore[no-untyped-def]
    """Correlation id (X-Request-Id), security headers, access log line: every HTTP response."""
    return http.envelope(event, get_response)


@app.middleware("scheduled")
@app.middleware("cloudwatch")
@app.middleware("dynamodb")
def job_envelope(event, get_response):  # type: ignore[no-untyped-def]
    """Schedules, the S3 drop folder's event and the events stream: one correlation id per
    invocation in the logs."""
    from chalicelib.observability import job_envelope

    return job_envelope(event, get_response)


# --- pages: entry, staged login, recovery -----------------------------------------------------

@app.route("/", methods=["GET"])
def home() -> Response:
    return web.pages.home(current_request())


@app.route("/terminos", methods=["GET"])
def terms() -> Response:
    return web.pages.terms(current_request())


@app.route("/ingresar", methods=["GET"])
def login_document_form() -> Response:
    return web.pages.login_document_form(current_request())


@app.route("/ingresar", methods=["POST"], content_types=FORM)
def login_document_submit() -> Response:
    return web.pages.login_document_submit(current_request())


@app.route("/ingresar/clave", methods=["GET"])
def login_password_form() -> Response:
    return web.pages.login_password_form(current_request())


@app.route("/ingresar/clave", methods=["POST"], content_types=FORM)
def login_password_submit() -> Response:
    return web.pages.login_password_submit(current_request())


@app.route("/salir", methods=["POST"], content_types=FORM)
def logout() -> Response:
    return web.pages.logout(current_request())


@app.route("/salida", methods=["GET"])
def logged_out() -> Response:
    return web.pages.logged_out(current_request())


@app.route("/inicio", methods=["GET"])
def landing() -> Response:
    return web.pages.landing(current_request())


@app.route("/cuenta/clave", methods=["GET"])
def account_password_form() -> Response:
    return web.pages.account_password_form(current_request())


@app.route("/cuenta/clave", methods=["POST"], content_types=FORM)
def account_password_submit() -> Response:
    return web.pages.account_password_submit(current_request())


@app.route("/recuperar", methods=["GET"])
def recovery_form() -> Response:
    return web.pages.recovery_form(current_request())


@app.route("/recuperar", methods=["POST"], content_types=FORM)
def recovery_submit() -> Response:
    return web.pages.recovery_submit(current_request())


@app.route("/cambiar-clave", methods=["GET"])
def change_password_form() -> Response:
    return web.pages.change_password_form(current_request())


@app.route("/cambiar-clave", methods=["POST"], content_types=FORM)
def change_password_submit() -> Response:
    return web.pages.change_password_submit(current_request())


# --- pages: what I owe, paying it, receipts --------------------------------------------------

@app.route("/obligaciones", methods=["GET"])
def obligations_page() -> Response:
    return web.payment_pages.obligations(current_request())


@app.route("/pagos/resumen", methods=["POST"], content_types=FORM)
def payment_summary_submit() -> Response:
    return web.payment_pages.summary_submit(current_request())


@app.route("/pagos/resumen", methods=["GET"])
def payment_summary_page() -> Response:
    return web.payment_pages.summary(current_request())


@app.route("/pagos", methods=["POST"], content_types=FORM)
def pay_page() -> Response:
    return web.payment_pages.pay(current_request())


@app.route("/pagos", methods=["GET"])
def payment_history_page() -> Response:
    return web.payment_pages.payment_history(current_request())


@app.route("/pagos/{payment_id}", methods=["GET"])
def payment_receipt_page(payment_id: str) -> Response:
    return web.payment_pages.payment_receipt(current_request())


@app.route("/pagos/{payment_id}/consultar", methods=["POST"], content_types=FORM)
def payment_status_query_page(payment_id: str) -> Response:
    return web.payment_pages.payment_status_query(current_request())


@app.route("/pagos/{payment_id}/retorno", methods=["GET"])
def payment_return_page(payment_id: str) -> Response:
    return web.payment_pages.payment_return(current_request())


@app.route("/static/{name}", methods=["GET"])
def static_file(name: str) -> Response:
    return web.static.serve(name)


# --- JSON API (SPEC §6) -----------------------------------------------------------------------

@app.route("/api/v1/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return web.static.openapi()


@app.route("/api/v1/session/identify", methods=["POST"])
def api_identify() -> Response:
    return web.api.identify(current_request())


@app.route("/api/v1/session", methods=["POST"])
def api_login() -> Response:
    return web.api.login(current_request())


@app.route("/api/v1/session", methods=["DELETE"])
def api_logout() -> Response:
    return web.api.logout(current_request())


@app.route("/api/v1/recovery", methods=["POST"])
def api_request_recovery() -> Response:
    return web.api.request_recovery(current_request())


@app.route("/api/v1/recovery/confirm", methods=["POST"])
def api_confirm_recovery() -> Response:
    return web.api.confirm_recovery(current_request())


@app.route("/api/v1/me", methods=["GET"])
def api_me() -> Response:
    return web.api.me(current_request())


# --- payments: JSON API, webhook, reconciliation ------------------------------------------------

@app.route("/api/v1/obligations", methods=["GET"])
def api_obligations() -> Response:
    return web.payments_api.obligations(current_request())


@app.route("/api/v1/banks", methods=["GET"])
def api_banks() -> Response:
    return web.payments_api.banks(current_request())


@app.route("/api/v1/payment-terms", methods=["GET"])
def api_payment_terms() -> Response:
    return web.payments_api.payment_terms(current_request())


@app.route("/api/v1/payments", methods=["POST"])
def api_create_payment() -> Response:
    return web.payments_api.create_payment(current_request())


@app.route("/api/v1/payments", methods=["GET"])
def api_list_payments() -> Response:
    return web.payments_api.list_payments(current_request())


@app.route("/api/v1/payments/{payment_id}", methods=["GET"])
def api_get_payment(payment_id: str) -> Response:
    return web.payments_api.get_payment(current_request())


@app.route("/webhooks/pse", methods=["POST"], content_types=["application/json"])
def pse_webhook() -> Response:
    return web.payments_api.webhook(current_request(), gateway="wompi")


@app.route("/webhooks/placetopay", methods=["POST"], content_types=["application/json"])
def placetopay_webhook() -> Response:
    return web.payments_api.webhook(current_request(), gateway="placetopay")


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile_pending(event):  # type: ignore[no-untyped-def]
    """PSE's sonda: due payments queried at the gateway (first at 7 min, then every 12)."""
    return web.payments_api.reconcile(event)


# --- member experience: PDF receipts, display preferences, reminders -------------------

app.api.binary_types.append("application/pdf")  # the receipt download (base64 through API Gateway)


@app.route("/pagos/{payment_id}/comprobante.pdf", methods=["GET"])
def payment_receipt_pdf(payment_id: str) -> Response:
    return web.payment_pages.receipt_pdf(current_request())


@app.route("/preferencias", methods=["POST"], content_types=FORM)
def display_preferences() -> Response:
    return web.preferences.save(current_request())


@app.route("/avisos/cancelar", methods=["GET"])
def reminders_unsubscribe_form() -> Response:
    return web.reminder_pages.unsubscribe_form(current_request())


@app.route("/avisos/cancelar", methods=["POST"], content_types=[*FORM, "multipart/form-data"])
def reminders_unsubscribe() -> Response:
    return web.reminder_pages.unsubscribe_submit(current_request())


@app.schedule(Cron(0, 13, "*", "*", "?", "*"))
def remind_due_obligations(event):  # type: ignore[no-untyped-def]
    """Daily at 8:00 in Colombia (13:00 UTC): obligations due within REMINDER_DAYS_BEFORE_DUE."""
    return web.reminder_pages.run_due_reminders(event)


@app.schedule(Rate(30, unit=Rate.MINUTES))
def remind_pending_payments(event):  # type: ignore[no-untyped-def]
    """Payments still pending at the bank after PENDING_REMINDER_SECONDS (not at night)."""
    return web.reminder_pages.run_pending_reminders(event)


# --- back office: staff API (IAM in AWS, X-Api-Key locally) and the daily export -------

import warnings  # noqa: E402  (kept in this section)

from chalice import IAMAuthorizer  # noqa: E402

STAFF = IAMAuthorizer()  # API Gateway checks SigV4 + IAM; locally web.staff_api checks X-Api-Key
# `chalice local` and the test client warn on every request that they skip IAM: locally the
# staff API key stands in for it (STAFF_API_KEY_REQUIRED), so the warning is only noise.
warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")


@app.route("/staff/v1/payments", methods=["GET"], authorizer=STAFF)
def staff_search_payments() -> Response:
    return web.staff_api.search_payments(current_request())


@app.route("/staff/v1/payments/{payment_id}", methods=["GET"], authorizer=STAFF)
def staff_get_payment(payment_id: str) -> Response:
    return web.staff_api.get_payment(current_request())


@app.route("/staff/v1/payments/{payment_id}/requery", methods=["POST"], authorizer=STAFF)
def staff_requery_payment(payment_id: str) -> Response:
    return web.staff_api.requery_payment(current_request())


@app.route("/staff/v1/payments/{payment_id}/resend-receipt", methods=["POST"], authorizer=STAFF)
def staff_resend_receipt(payment_id: str) -> Response:
    return web.staff_api.resend_receipt(current_request())


@app.route("/staff/v1/review", methods=["GET"], authorizer=STAFF)
def staff_review_queue() -> Response:
    return web.staff_api.review_queue(current_request())


@app.route("/staff/v1/review/{payment_id}/resolve", methods=["POST"], authorizer=STAFF)
def staff_resolve_review(payment_id: str) -> Response:
    return web.staff_api.resolve_review(current_request())


@app.route("/staff/v1/members/{document_number}/audit", methods=["GET"], authorizer=STAFF)
def staff_member_audit(document_number: str) -> Response:
    return web.staff_api.member_audit(current_request())


@app.route("/staff/v1/members/{document_number}/block", methods=["POST"], authorizer=STAFF)
def staff_block_member(document_number: str) -> Response:
    return web.staff_api.block_member(current_request())


@app.route("/staff/v1/members/{document_number}/unblock", methods=["POST"], authorizer=STAFF)
def staff_unblock_member(document_number: str) -> Response:
    return web.staff_api.unblock_member(current_request())


@app.route("/staff/v1/exports", methods=["POST"], authorizer=STAFF)
def staff_create_export() -> Response:
    return web.staff_api.create_export(current_request())


@app.route("/staff/v1/exports/{export_id}", methods=["GET"], authorizer=STAFF)
def staff_get_export(export_id: str) -> Response:
    return web.staff_api.get_export(current_request())


@app.schedule(Cron(0, 11, "*", "*", "?", "*"))
def export_approved_payments(event):  # type: ignore[no-untyped-def]
    """Daily at 6:00 in Colombia (11:00 UTC): approved payments not exported yet, to S3 (SPEC §4)."""
    return web.staff_api.scheduled_export(event)


# --- back office: the S3 drop folder of the core system's files ----------------------

#: EventBridge rule: objects created under imports/ of the import bucket. The bucket's name is not
#: known when app.py is imported: devtools/infra/template.py's merge template adds
#: ``detail.bucket.name = [Ref ImportBucket]`` to this rule, and the handler checks it again.
IMPORT_DROP_PATTERN = {"source": ["aws.s3"], "detail-type": ["Object Created"],
                       "detail": {"object": {"key": [{"prefix": "imports/"}]}}}


@app.on_cw_event(IMPORT_DROP_PATTERN, name="import_from_s3")
def import_from_s3(event):  # type: ignore[no-untyped-def]
    """A members/obligations CSV put under imports/: import it, write reports/<name>.report.*."""
    from chalicelib.context import get_context
    from chalicelib.services import import_jobs

    ctx = get_context()
    return import_jobs.handle_event(event.to_dict(), ctx.settings, now=ctx.now())


# --- side effects after the commit: the events table's DynamoDB Stream --------------------------

#: The stream's ARN exists only once the stack made the events table: ``chalice package`` writes
#: this placeholder unless EVENTS_STREAM_ARN is set, and devtools/infra/events.py's merge template
#: puts the table's ``StreamArn`` in its place (with the retries, the failure destination and the
#: partial batch answers that Chalice's decorator cannot express).
EVENTS_STREAM_PLACEHOLDER = "arn:aws:dynamodb:us-east-1:000000000000:table/events/stream/merge-template"
EVENTS_BATCH_SIZE = 10  # each event may render a PDF and call SES: a batch stays within seconds
EVENTS_MAX_RETRIES = 5  # then the record goes to the failure queue (the poller still sends receipts)


@app.on_dynamodb_record(stream_arn=get_settings().events_stream_arn or EVENTS_STREAM_PLACEHOLDER,
                        batch_size=EVENTS_BATCH_SIZE, starting_position="TRIM_HORIZON")
def deliver_domain_events(event):  # type: ignore[no-untyped-def]
    """Receipts of approved and rejected payments, from the events their transitions recorded."""
    from chalicelib.web import event_stream

    return event_stream.deliver(event.to_dict())


# --- staff console: Cognito sign-in (password + TOTP), server-side staff sessions ---------------

@app.route("/backoffice/ingresar", methods=["GET"])
def staff_sign_in_form() -> Response:
    return web.staff_pages.sign_in_form(current_request())


@app.route("/backoffice/ingresar", methods=["POST"], content_types=FORM)
def staff_sign_in() -> Response:
    return web.staff_pages.sign_in_submit(current_request())


@app.route("/backoffice/ingresar/nueva-clave", methods=["GET"])
def staff_new_password_form() -> Response:
    return web.staff_pages.new_password_form(current_request())


@app.route("/backoffice/ingresar/nueva-clave", methods=["POST"], content_types=FORM)
def staff_new_password() -> Response:
    return web.staff_pages.new_password_submit(current_request())


@app.route("/backoffice/ingresar/autenticador", methods=["GET"])
def staff_code_form() -> Response:
    return web.staff_pages.code_form(current_request())


@app.route("/backoffice/ingresar/autenticador", methods=["POST"], content_types=FORM)
def staff_code() -> Response:
    return web.staff_pages.code_submit(current_request())


@app.route("/backoffice/salir", methods=["POST"], content_types=FORM)
def staff_sign_out() -> Response:
    return web.staff_pages.sign_out(current_request())


@app.route("/backoffice/sesion", methods=["GET"])
def staff_keepalive() -> Response:
    return web.staff_pages.keepalive(current_request())


# --- staff console: pages ----------------------------------------------------------------------

@app.route("/backoffice", methods=["GET"])
def console_summary() -> Response:
    return web.console_pages.summary(current_request())


@app.route("/backoffice/pagos", methods=["GET"])
def console_payments() -> Response:
    return web.console_pages.payments(current_request())


@app.route("/backoffice/pagos/{payment_id}", methods=["GET"])
def console_payment(payment_id: str) -> Response:
    return web.console_pages.payment_detail(current_request())


@app.route("/backoffice/pagos/{payment_id}/consultar", methods=["POST"], content_types=FORM)
def console_payment_requery(payment_id: str) -> Response:
    return web.console_pages.payment_requery(current_request())


@app.route("/backoffice/pagos/{payment_id}/reenviar", methods=["POST"], content_types=FORM)
def console_payment_resend(payment_id: str) -> Response:
    return web.console_pages.payment_resend(current_request())


@app.route("/backoffice/revision", methods=["GET"])
def console_review() -> Response:
    return web.console_pages.review(current_request())


@app.route("/backoffice/revision/{payment_id}", methods=["POST"], content_types=FORM)
def console_review_resolve(payment_id: str) -> Response:
    return web.console_pages.review_resolve(current_request())


@app.route("/backoffice/cargas", methods=["GET"])
def console_uploads() -> Response:
    return web.console_pages.upload_page(current_request())


@app.route("/backoffice/cargas/archivo", methods=["GET"])
def console_upload() -> Response:
    return web.console_pages.upload_result(current_request())


@app.route("/backoffice/exportaciones", methods=["GET"])
def console_exports() -> Response:
    return web.console_pages.exports_page(current_request())


@app.route("/backoffice/exportaciones", methods=["POST"], content_types=FORM)
def console_export_now() -> Response:
    return web.console_pages.export_now(current_request())


@app.route("/backoffice/exportaciones/{export_id}/descargar", methods=["GET"])
def console_export_download(export_id: str) -> Response:
    return web.console_pages.export_download(current_request())


@app.route("/backoffice/asociados", methods=["GET"])
def console_members() -> Response:
    return web.console_pages.members(current_request())


@app.route("/backoffice/asociados/{document_number}/bloquear", methods=["POST"], content_types=FORM)
def console_member_block(document_number: str) -> Response:
    return web.console_pages.member_block(current_request())


@app.route("/backoffice/asociados/{document_number}/desbloquear", methods=["POST"], content_types=FORM)
def console_member_unblock(document_number: str) -> Response:
    return web.console_pages.member_unblock(current_request())


@app.route("/backoffice/asociados/{document_number}/cerrar-sesiones", methods=["POST"], content_types=FORM)
def console_member_end_sessions(document_number: str) -> Response:
    return web.console_pages.member_end_sessions(current_request())


@app.route("/backoffice/asociados/{document_number}/recuperacion", methods=["POST"], content_types=FORM)
def console_member_recovery(document_number: str) -> Response:
    return web.console_pages.member_recovery(current_request())


@app.route("/backoffice/personal", methods=["GET"])
def console_people() -> Response:
    return web.console_pages.people(current_request())


@app.route("/backoffice/personal", methods=["POST"], content_types=FORM)
def console_people_create() -> Response:
    return web.console_pages.people_create(current_request())


@app.route("/backoffice/personal/{username}/rol", methods=["POST"], content_types=FORM)
def console_people_role(username: str) -> Response:
    return web.console_pages.people_role(current_request())


@app.route("/backoffice/personal/{username}/estado", methods=["POST"], content_types=FORM)
def console_people_enabled(username: str) -> Response:
    return web.console_pages.people_enabled(current_request())
