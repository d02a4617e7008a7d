"""Sucursal Virtual: routes, schedules and events. Each one delegates; no business rule lives here."""

from __future__ import annotations

from chalice import Chalice, Rate, Response

from chalicelib import web
from chalicelib.config import get_settings
from chalicelib.web import http

app = Chalice(app_name="sucursal-virtual")
FORM = http.FORM


@app.middleware("http")
def security_headers(event, get_response):  # type: ignore[no-untyped-def]
    response: Response = http.framework_error(get_response(event))
    for name, value in http.security_headers(get_settings(), event.path).items():
        response.headers.setdefault(name, value)
    return response


# --- pages: entry, staged login, recovery -----------------------------------------------------

@app.route("/", methods=["GET"])
def home() -> Response:
    return web.pages.home(app.current_request)


@app.route("/terminos", methods=["GET"])
def terms() -> Response:
    return web.pages.terms(app.current_request)


@app.route("/ingresar", methods=["GET"])
def login_document_form() -> Response:
    return web.pages.login_document_form(app.current_request)


@app.route("/ingresar", methods=["POST"], content_types=FORM)
def login_document_submit() -> Response:
    return web.pages.login_document_submit(app.current_request)


@app.route("/ingresar/clave", methods=["GET"])
def login_password_form() -> Response:
    return web.pages.login_password_form(app.current_request)


@app.route("/ingresar/clave", methods=["POST"], content_types=FORM)
def login_password_submit() -> Response:
    return web.pages.login_password_submit(app.current_request)


@app.route("/salir", methods=["POST"], content_types=FORM)
def logout() -> Response:
    return web.pages.logout(app.current_request)


@app.route("/salida", methods=["GET"])
def logged_out() -> Response:
    return web.pages.logged_out(app.current_request)


@app.route("/inicio", methods=["GET"])
def landing() -> Response:
    return web.pages.landing(app.current_request)


@app.route("/recuperar", methods=["GET"])
def recovery_form() -> Response:
    return web.pages.recovery_form(app.current_request)


@app.route("/recuperar", methods=["POST"], content_types=FORM)
def recovery_submit() -> Response:
    return web.pages.recovery_submit(app.current_request)


@app.route("/cambiar-clave", methods=["GET"])
def change_password_form() -> Response:
    return web.pages.change_password_form(app.current_request)


@app.route("/cambiar-clave", methods=["POST"], content_types=FORM)
def change_password_submit() -> Response:
    return web.pages.change_password_submit(app.current_request)


# --- pages: what I owe, paying it, receipts --------------------------------------------------

@app.route("/obligaciones", methods=["GET"])
def obligations_page() -> Response:
    return web.payment_pages.obligations(app.current_request)


@app.route("/pagos/resumen", methods=["POST"], content_types=FORM)
def payment_summary_page() -> Response:
    return web.payment_pages.summary(app.current_request)


@app.route("/pagos", methods=["POST"], content_types=FORM)
def pay_page() -> Response:
    return web.payment_pages.pay(app.current_request)


@app.route("/pagos", methods=["GET"])
def payment_history_page() -> Response:
    return web.payment_pages.payment_history(app.current_request)


@app.route("/pagos/{payment_id}", methods=["GET"])
def payment_receipt_page(payment_id: str) -> Response:
    return web.payment_pages.payment_receipt(app.current_request)


@app.route("/pagos/{payment_id}/retorno", methods=["GET"])
def payment_return_page(payment_id: str) -> Response:
    return web.payment_pages.payment_return(app.current_request)


@app.route("/static/{name}", methods=["GET"])
def static_file(name: str) -> Response:
    return web.static.serve(name)


# --- JSON API (SPEC §6) -----------------------------------------------------------------------

@app.route("/api/v1/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return web.static.openapi()


@app.route("/api/v1/session/identify", methods=["POST"])
def api_identify() -> Response:
    return web.api.identify(app.current_request)


@app.route("/api/v1/session", methods=["POST"])
def api_login() -> Response:
    return web.api.login(app.current_request)


@app.route("/api/v1/session", methods=["DELETE"])
def api_logout() -> Response:
    return web.api.logout(app.current_request)


@app.route("/api/v1/recovery", methods=["POST"])
def api_request_recovery() -> Response:
    return web.api.request_recovery(app.current_request)


@app.route("/api/v1/recovery/confirm", methods=["POST"])
def api_confirm_recovery() -> Response:
    return web.api.confirm_recovery(app.current_request)


@app.route("/api/v1/me", methods=["GET"])
def api_me() -> Response:
    return web.api.me(app.current_request)


# --- payments: JSON API, webhook, reconciliation ------------------------------------------------

@app.route("/api/v1/obligations", methods=["GET"])
def api_obligations() -> Response:
    return web.payments_api.obligations(app.current_request)


@app.route("/api/v1/banks", methods=["GET"])
def api_banks() -> Response:
    return web.payments_api.banks(app.current_request)


@app.route("/api/v1/payments", methods=["POST"])
def api_create_payment() -> Response:
    return web.payments_api.create_payment(app.current_request)


@app.route("/api/v1/payments", methods=["GET"])
def api_list_payments() -> Response:
    return web.payments_api.list_payments(app.current_request)


@app.route("/api/v1/payments/{payment_id}", methods=["GET"])
def api_get_payment(payment_id: str) -> Response:
    return web.payments_api.get_payment(app.current_request)


@app.route("/webhooks/pse", methods=["POST"], content_types=["application/json"])
def pse_webhook() -> Response:
    return web.payments_api.webhook(app.current_request)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile_pending(event):  # type: ignore[no-untyped-def]
    """PSE's sonda: due payments queried at the gateway (first at 7 min, then every 12)."""
    return web.payments_api.reconcile(event)
