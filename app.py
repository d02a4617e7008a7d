"""Sucursal Virtual: routes, schedules and events. Each one delegates; no business rule lives here."""

from __future__ import annotations

from chalice import Chalice, Response

from chalicelib.config import get_settings
from chalicelib.web import api, http, pages, static

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
    return pages.home(app.current_request)


@app.route("/terminos", methods=["GET"])
def terms() -> Response:
    return pages.terms(app.current_request)


@app.route("/ingresar", methods=["GET"])
def login_document_form() -> Response:
    return pages.login_document_form(app.current_request)


@app.route("/ingresar", methods=["POST"], content_types=FORM)
def login_document_submit() -> Response:
    return pages.login_document_submit(app.current_request)


@app.route("/ingresar/clave", methods=["GET"])
def login_password_form() -> Response:
    return pages.login_password_form(app.current_request)


@app.route("/ingresar/clave", methods=["POST"], content_types=FORM)
def login_password_submit() -> Response:
    return pages.login_password_submit(app.current_request)


@app.route("/salir", methods=["POST"], content_types=FORM)
def logout() -> Response:
    return pages.logout(app.current_request)


@app.route("/salida", methods=["GET"])
def logged_out() -> Response:
    return pages.logged_out(app.current_request)


@app.route("/inicio", methods=["GET"])
def landing() -> Response:
    return pages.landing(app.current_request)


@app.route("/recuperar", methods=["GET"])
def recovery_form() -> Response:
    return pages.recovery_form(app.current_request)


@app.route("/recuperar", methods=["POST"], content_types=FORM)
def recovery_submit() -> Response:
    return pages.recovery_submit(app.current_request)


@app.route("/cambiar-clave", methods=["GET"])
def change_password_form() -> Response:
    return pages.change_password_form(app.current_request)


@app.route("/cambiar-clave", methods=["POST"], content_types=FORM)
def change_password_submit() -> Response:
    return pages.change_password_submit(app.current_request)


@app.route("/static/{name}", methods=["GET"])
def static_file(name: str) -> Response:
    return static.serve(name)


# --- JSON API (SPEC §6) -----------------------------------------------------------------------

@app.route("/api/v1/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    return static.openapi()


@app.route("/api/v1/session/identify", methods=["POST"])
def api_identify() -> Response:
    return api.identify(app.current_request)


@app.route("/api/v1/session", methods=["POST"])
def api_login() -> Response:
    return api.login(app.current_request)


@app.route("/api/v1/session", methods=["DELETE"])
def api_logout() -> Response:
    return api.logout(app.current_request)


@app.route("/api/v1/recovery", methods=["POST"])
def api_request_recovery() -> Response:
    return api.request_recovery(app.current_request)


@app.route("/api/v1/recovery/confirm", methods=["POST"])
def api_confirm_recovery() -> Response:
    return api.confirm_recovery(app.current_request)


@app.route("/api/v1/me", methods=["GET"])
def api_me() -> Response:
    return api.me(app.current_request)
