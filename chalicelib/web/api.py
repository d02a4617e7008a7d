"""The JSON API of SPEC §6: each handler parses, calls one use case and shapes the answer."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from chalice import Response

from chalicelib.domain.errors import Forbidden, Unauthenticated
from chalicelib.formatting import iso
from chalicelib.observability import log_event
from chalicelib.services import auth, recovery
from chalicelib.services.auth import SessionView
from chalicelib.web import http
from chalicelib.web.handler import Exchange, handler

NOT_SIGNED_IN = "Debe iniciar sesión."
CSRF_MISSING = "Falta el encabezado X-CSRF-Token o no corresponde a su sesión."
CROSS_SITE = "Solicitud rechazada: no proviene de este sitio."


class Call(Exchange):
    """One member API call: only same-origin requests change anything; the session is checked on
    demand; a refusal is the JSON error of SPEC §6."""

    def authenticate(self) -> None:
        if self.request.method != "GET" and not http.same_origin(self.request, self.settings):
            log_event("malicious_csrf", level=logging.WARNING, ip=self.ip, path=self.request.path,
                      reason="origin", origin=self.request.headers.get("origin"),
                      fetch_site=self.request.headers.get("sec-fetch-site"))
            raise Forbidden(CROSS_SITE, code="cross_site")

    def body(self) -> dict[str, Any]:
        return http.json_fields(self.request)

    def session(self, *, state_changing: bool = False) -> SessionView:
        token = self.cookies.get(self.settings.session_cookie_name)
        session = auth.current_session(self.ctx, token)
        if session is None:
            if token:
                log_event("session_use_after_expire", level=logging.WARNING, ip=self.ip,
                          path=self.request.path)
            raise Unauthenticated(NOT_SIGNED_IN)
        if state_changing:
            sent = self.request.headers.get("x-csrf-token", "")
            if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
                log_event("malicious_csrf", level=logging.WARNING, ip=self.ip, path=self.request.path,
                          reason="token")
                raise Forbidden(CSRF_MISSING, code="csrf_failed")
        return session


#: Member-caused errors become ``{"error": {...}}`` with their status; never a trace.
api_handler = handler(Call)


@api_handler
def identify(call: Call) -> Response:
    body = call.body()
    ticket = auth.identify(call.ctx, body.get("document_number"), ip=call.ip)
    return http.json_response({"login_ticket": ticket, "next": "password"})


@api_handler
def login(call: Call) -> Response:
    body = call.body()
    result = auth.login(call.ctx, body.get("login_ticket"), body.get("password"), ip=call.ip)
    cookie = http.cookie_header(call.settings, call.settings.session_cookie_name, result.session_token)
    return http.json_response(
        {
            "member": {
                "name": result.member_name,
                "last_login_at": iso(result.previous_login_at),
                "last_login_ip": result.previous_login_ip,
            },
            "csrf_token": result.csrf_token,
        },
        status=201,
        headers={"Set-Cookie": cookie},
    )


@api_handler
def logout(call: Call) -> Response:
    session = call.session(state_changing=True)
    auth.logout(call.ctx, session, ip=call.ip)
    cookie = http.expired_cookie(call.settings, call.settings.session_cookie_name)
    return Response(body="", status_code=204, headers={"Set-Cookie": cookie})


@api_handler
def request_recovery(call: Call) -> Response:
    message = recovery.request_recovery(call.ctx, call.body().get("document_number"), ip=call.ip)
    return http.json_response({"message": message}, status=202)


@api_handler
def confirm_recovery(call: Call) -> Response:
    body = call.body()
    recovery.confirm_recovery(call.ctx, body.get("token"), body.get("temporary_key"),
                              body.get("new_password"), ip=call.ip)
    return Response(body="", status_code=204)


@api_handler
def me(call: Call) -> Response:
    session = call.session()
    member = auth.member_summary(call.ctx, session)
    return http.json_response({
        "document_type": member.document_type,
        "document_number": member.document_number,
        "name": member.name,
        "email": member.email_hint,
        "last_login_at": iso(member.previous_login_at),
        "last_login_ip": member.previous_login_ip,
        "session_expires_at": iso(session.idle_expires_at),
    })
