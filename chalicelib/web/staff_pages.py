"""The staff console's plumbing and its sign-in pages (``/backoffice/...``).

A staff page never looks at the member's cookie (a member session opens no staff page) and a
member page never looks at the staff cookie. The staff cookie (``__Host-sv_staff``; ``sv_staff``
without Secure in the local stage) is ``SameSite=Strict``: the console is only reached from itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from chalice import Response
from chalice.app import Request

from chalicelib.domain.errors import DomainError, Forbidden, InvalidCredentials, Unauthenticated
from chalicelib.domain.sessions import StaffSession
from chalicelib.formatting import iso
from chalicelib.observability import log_event
from chalicelib.services import staff_auth
from chalicelib.services.staff_auth import StaffSessionView
from chalicelib.web import http
from chalicelib.web.handler import handler
from chalicelib.web.pages import CSRF_REFUSED, Page

SIGN_IN = "/backoffice/ingresar"
HOME = "/backoffice"
NEW_PASSWORD_PAGE = "/backoffice/ingresar/nueva-clave"  # a path  # noqa: S105  # nosec B105
CODE_PAGE = "/backoffice/ingresar/autenticador"
KEEPALIVE = "/backoffice/sesion"
SESSION_ENDED = "Su sesión del personal terminó o no ha ingresado. Ingrese de nuevo."


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class StaffPage(Page):
    """A console request: the staff session (or the sign-in in progress) instead of a member's."""

    SIGN_IN = SIGN_IN
    ERROR_TEMPLATE = "staff/error.html"

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self._staff: StaffSessionView | bool | None = False
        self._pending: StaffSession | bool | None = False

    def session(self) -> None:
        return None  # the member's session is not this page's business

    def skip_session_lookup(self) -> None:
        if self._staff is False:
            self._staff = None
        if self._pending is False:
            self._pending = None

    @property
    def staff_cookie(self) -> str | None:
        return self.cookies.get(self.settings.staff_cookie_name)

    def staff(self) -> StaffSessionView | None:
        if self._staff is False:
            self._staff = staff_auth.current(self.ctx, self.staff_cookie)
        return self._staff  # type: ignore[return-value]

    def pending(self) -> StaffSession | None:
        if self._pending is False:
            self._pending = staff_auth.pending(self.ctx, self.staff_cookie)
        return self._pending  # type: ignore[return-value]

    def idle_session(self) -> StaffSessionView | None:
        return self.staff()

    def session_ui(self) -> dict[str, Any]:
        return {"keepalive": KEEPALIVE, "logout": "/backoffice/salir",
                "expired": f"{SIGN_IN}?salida=inactividad",
                "idle_minutes": self.settings.staff_session_idle_seconds // 60}

    def expected_csrf(self) -> str:
        staff = self.staff()
        if staff is not None:
            return staff.csrf_token
        pending = self.pending()
        if pending is not None:
            return pending.csrf_token
        return super().expected_csrf()

    def csrf_token(self) -> str:
        return self.expected_csrf() or self.anonymous_csrf()

    def set_staff_cookie(self, token: str | None) -> None:
        if token is None:
            self.set_cookies.append(http.expired_cookie(self.settings, self.settings.staff_cookie_name))
        else:
            self.set_cookies.append(http.cookie_header(self.settings, self.settings.staff_cookie_name,
                                                       token))

    def require_staff(self, role: str = "consulta") -> StaffSessionView:
        staff = self.staff()
        if staff is None:
            if self.staff_cookie:
                log_event("session_use_after_expire", level=logging.WARNING, ip=self.ip,
                          path=self.request.path, actor="staff")
            raise Unauthenticated(SESSION_ENDED)
        staff_auth.require(staff, role)
        return staff

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        values.setdefault("section", "")
        return super().render(template, status=status, staff=self.staff(), **values)

    def render_with_csp(self, template: str, *, forms: Mapping[str, Any], **values: Any) -> Response:
        """A page whose forms post to S3 (presigned POST): their origin joins ``form-action``."""
        response = self.render(template, forms=forms, **values)
        origins = sorted({_origin(form.url) for form in forms.values()})
        csp = http.security_headers(self.settings, self.request.path)["Content-Security-Policy"]
        if origins:
            csp = csp.replace("form-action ", f"form-action {' '.join(origins)} ", 1)
        response.headers["Content-Security-Policy"] = csp
        return response

    def refused(self, template: str, **values: Any) -> Response:
        return self.render(template, status=403, error=CSRF_REFUSED, **values)


#: Errors become the console's error page; no session → the sign-in page.
staff_page = handler(StaffPage)


# --- signing in ----------------------------------------------------------------------------------

def _next(page: StaffPage, step: staff_auth.SignInStep) -> Response:
    """Where a sign-in step leads, with the cookie of its new stage."""
    if step.token is not None:
        page.set_staff_cookie(step.token)
    if step.stage == staff_auth.ACTIVE:
        return page.redirect(HOME)
    if step.stage == staff_auth.NEW_PASSWORD:
        return page.redirect(NEW_PASSWORD_PAGE)
    if step.stage == "DONE":
        page.set_staff_cookie(None)
        return page.redirect(f"{SIGN_IN}?listo=1")
    return page.redirect(CODE_PAGE)


@staff_page
def sign_in_form(page: StaffPage) -> Response:
    if page.staff() is not None:
        return page.redirect(HOME)
    query = page.query()
    return page.render("staff/sign_in.html", error=None, username="", done=query.get("listo") == "1",
                       signed_out=query.get("salida") in ("1", "inactividad"),
                       idle=query.get("salida") == "inactividad")


@staff_page
def sign_in_submit(page: StaffPage) -> Response:
    fields = http.form_fields(page.request)
    username = fields.get("username", "")[:128]
    if not page.check_csrf(fields):
        return page.refused("staff/sign_in.html", username=username, done=False, signed_out=False, idle=False)
    try:
        step = staff_auth.begin(page.ctx, username, fields.get("password", ""), ip=page.ip)
    except DomainError as error:
        return page.render("staff/sign_in.html", status=error.status, error=error.message,
                           username=username, done=False, signed_out=False, idle=False)
    return _next(page, step)


def _pending_or_restart(page: StaffPage, stages: tuple[str, ...]) -> StaffSession:
    item = page.pending()
    if item is None or item.stage not in stages:
        raise InvalidCredentials(staff_auth.SIGNIN_EXPIRED, code="signin_expired")
    return item


def _restart(page: StaffPage, error: DomainError) -> Response:
    if page.staff() is not None:  # already signed in: nothing to restart
        return page.redirect(HOME)
    page.set_staff_cookie(None)
    return page.render("staff/sign_in.html", status=error.status, error=error.message, username="",
                       done=False, signed_out=False, idle=False)


@staff_page
def new_password_form(page: StaffPage) -> Response:
    try:
        _pending_or_restart(page, (staff_auth.NEW_PASSWORD,))
    except InvalidCredentials as error:
        return _restart(page, error)
    return page.render("staff/new_password.html", errors={})


@staff_page
def new_password_submit(page: StaffPage) -> Response:
    fields = http.form_fields(page.request)
    try:
        item = _pending_or_restart(page, (staff_auth.NEW_PASSWORD,))
    except InvalidCredentials as error:
        return _restart(page, error)
    if not page.check_csrf(fields):
        return page.render("staff/new_password.html", status=403, errors={"general": CSRF_REFUSED})
    try:
        step = staff_auth.set_new_password(page.ctx, item, fields.get("new_password", ""),
                                           fields.get("confirmation", ""), ip=page.ip)
    except InvalidCredentials as error:
        return _restart(page, error)
    except DomainError as error:
        return page.render("staff/new_password.html", status=error.status,
                           errors={error.field or "general": error.message})
    return _next(page, step)


def otpauth_uri(issuer: str, username: str, secret: str) -> str:
    """The ``otpauth://`` URI authenticator apps read from the QR code (Google's key-uri format)."""
    label = quote(f"{issuer}:{username}", safe="")
    return f"otpauth://totp/{label}?secret={quote(secret, safe='')}&issuer={quote(issuer, safe='')}"


def qr_svg(text: str, title: str) -> str:
    """The QR code as inline SVG (segno, rendered on the server; no script, no external image)."""
    import segno  # lazy: only the TOTP set-up page draws one

    return str(segno.make(text, error="m").svg_inline(scale=5, border=2, title=title))


def _code_page(page: StaffPage, item: StaffSession, *, status: int = 200,
               error: str | None = None) -> Response:
    setup = item.stage in (staff_auth.MFA_SETUP, staff_auth.TOKEN_SETUP)
    values: dict[str, Any] = {"setup": setup, "error": error, "username": item.username}
    if setup and item.totp_secret:
        issuer = f"{page.settings.cooperative_short_name} Sucursal Virtual"
        uri = otpauth_uri(issuer, item.username, item.totp_secret)
        values.update(secret=item.totp_secret, otpauth=uri,
                      qr=qr_svg(uri, f"Código QR para configurar el autenticador de {item.username}"))
    return page.render("staff/code.html", status=status, **values)


_CODE_STAGES = (staff_auth.MFA_CODE, staff_auth.MFA_SETUP, staff_auth.TOKEN_SETUP)


@staff_page
def code_form(page: StaffPage) -> Response:
    try:
        item = _pending_or_restart(page, _CODE_STAGES)
    except InvalidCredentials as error:
        return _restart(page, error)
    return _code_page(page, item)


@staff_page
def code_submit(page: StaffPage) -> Response:
    fields = http.form_fields(page.request)
    try:
        item = _pending_or_restart(page, _CODE_STAGES)
    except InvalidCredentials as error:
        return _restart(page, error)
    if not page.check_csrf(fields):
        return _code_page(page, item, status=403, error=CSRF_REFUSED)
    try:
        step = staff_auth.submit_code(page.ctx, item, fields.get("code", ""), ip=page.ip)
    except (InvalidCredentials, Forbidden) as error:
        return _restart(page, error)
    except DomainError as error:
        return _code_page(page, item, status=error.status, error=error.message)
    return _next(page, step)


@staff_page
def sign_out(page: StaffPage) -> Response:
    fields = http.form_fields(page.request)
    staff = page.staff()
    if staff is not None and page.check_csrf(fields):
        staff_auth.logout(page.ctx, staff, ip=page.ip)
    page.set_staff_cookie(None)
    # The idle warning's own sign-out, when nobody answered it: the page then says why.
    reason = "inactividad" if fields.get("motivo") == "inactividad" else "1"
    return page.redirect(f"{SIGN_IN}?salida={reason}", headers={"Clear-Site-Data": '"cache", "storage"'})


@staff_page
def keepalive(page: StaffPage) -> Response:
    """The idle warning's "Continuar": reading the session slides it; its new idle end."""
    staff = page.staff()
    if staff is None:
        return http.json_error(Unauthenticated(SESSION_ENDED))
    return http.json_response({"session_expires_at": iso(staff.idle_expires_at)})
