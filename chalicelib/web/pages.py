"""The server-rendered pages: each handler parses, calls one use case, renders or redirects."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.config import Settings
from chalicelib.domain.errors import DomainError, InvalidCredentials, Unauthenticated
from chalicelib.domain.passwords import MAX_LENGTH, MIN_LENGTH, WeakPassword, policy_summary
from chalicelib.observability import correlation_id, log_event
from chalicelib.services import auth, recovery
from chalicelib.services.auth import SessionView
from chalicelib.templating import render
from chalicelib.web import http
from chalicelib.web.handler import Exchange, handler

TICKET_COOKIE = "sv_ticket"
RECOVERY_COOKIE = "sv_recovery"
CSRF_FIELD = "csrf_token"
CONFIRMATION_MISMATCH = "La confirmación no coincide con la nueva contraseña. Escríbala de nuevo."
CSRF_REFUSED = ("La página estaba abierta desde hace mucho o la solicitud no vino de este sitio. "
                "Vuelva a intentarlo.")


class Page(Exchange):
    """One page request: the cookies to set and the page's variables. Nobody is authenticated up
    front (a page asks for the session it needs); a refusal is the calm error page, or the
    sign-in page when the session ended."""

    SIGN_IN = "/ingresar"
    ERROR_TEMPLATE = "error.html"

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.set_cookies: list[str] = []
        self._session: SessionView | bool | None = False

    # -- cookies and CSRF ---------------------------------------------------------------------
    def cookie_name(self, name: str) -> str:
        return f"__Host-{name}" if self.settings.cookie_secure else name

    def set_cookie(self, name: str, value: str, *, max_age: int | None = None,
                   same_site: str = "Lax") -> None:
        self.set_cookies.append(http.cookie_header(self.settings, self.cookie_name(name), value,
                                                   max_age=max_age, same_site=same_site))

    def clear_cookie(self, name: str) -> None:
        self.set_cookies.append(http.expired_cookie(self.settings, self.cookie_name(name)))

    def anonymous_csrf(self) -> str:
        """Signed double-submit token for forms shown before login."""
        seed = self.cookies.get(self.cookie_name("sv_csrf"))
        if not seed or len(seed) > 100:
            seed = self.ctx.token(24)
            self.cookies[self.cookie_name("sv_csrf")] = seed
            # Lax: a page opened from another site (a webmail link) must be able to set it.
            self.set_cookie("sv_csrf", seed)
        return self.ctx.signer("form-csrf").mac(seed)

    def csrf_token(self) -> str:
        session = self.session()
        return session.csrf_token if session else self.anonymous_csrf()

    def expected_csrf(self) -> str:
        """The token a form post must carry: the session's, else the signed double-submit one."""
        session = self.session()
        if session:
            return session.csrf_token
        seed = self.cookies.get(self.cookie_name("sv_csrf"))
        return self.ctx.signer("form-csrf").mac(seed) if seed else ""

    def check_csrf(self, fields: dict[str, str]) -> bool:
        submitted = fields.get(CSRF_FIELD, "")
        expected = self.expected_csrf()
        token_ok = bool(expected) and hmac.compare_digest(submitted.encode(), expected.encode())
        origin_ok = http.same_origin(self.request, self.settings)
        if not (token_ok and origin_ok):
            log_event("malicious_csrf", level=logging.WARNING, ip=self.ip, path=self.request.path,
                      reason="origin" if token_ok else "token",
                      origin=self.request.headers.get("origin"),
                      fetch_site=self.request.headers.get("sec-fetch-site"))
        return token_ok and origin_ok

    # -- session ------------------------------------------------------------------------------
    def skip_session_lookup(self) -> None:
        if self._session is False:
            self._session = None

    def session(self) -> SessionView | None:
        if self._session is False:
            token = self.cookies.get(self.settings.session_cookie_name)
            self._session = auth.current_session(self.ctx, token)
        return self._session  # type: ignore[return-value]

    # -- the idle warning -----------------------------------------------------------------------
    def idle_session(self) -> Any:
        """The session the idle warning watches (anything with ``idle_expires_at``), or None."""
        return self.session()

    def session_ui(self) -> dict[str, Any]:
        """The warning's keep-alive, logout and expired addresses, and the idle time it states."""
        return {"keepalive": "/api/v1/me", "logout": "/salir", "expired": "/salida?motivo=inactividad",
                "idle_minutes": self.settings.session_idle_seconds // 60}

    # -- responses ----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.settings.base_path}{path}"

    def render(self, template: str, *, status: int = 200, **values: Any) -> Response:
        from chalicelib.web import preferences

        session = self.session()
        idle_session = self.idle_session()
        seconds_left = 0
        if idle_session is not None:  # the warning's clock is the server's, not a page-load guess
            seconds_left = max(1, int((idle_session.idle_expires_at - self.ctx.now()).total_seconds()))
        body = render(
            template,
            settings=self.settings,
            url=self.url,
            csrf_token=self.csrf_token(),
            signed_in=session is not None,
            session=session,
            session_seconds_left=seconds_left,
            idle_session=idle_session is not None,
            session_ui=self.session_ui(),
            block_copy_paste=self.settings.block_copy_paste,
            prefs=preferences.read(self.cookies, self.cookie_name(preferences.COOKIE)),
            return_path=preferences.return_path(self.request),
            **values,
        )
        return http.html(body, status=status, headers=self.cookie_headers())

    def redirect(self, path: str, headers: Mapping[str, Any] | None = None) -> Response:
        return http.redirect(self.url(path), headers={**self.cookie_headers(), **(headers or {})})

    def cookie_headers(self) -> dict[str, Any]:
        return {"Set-Cookie": self.set_cookies} if self.set_cookies else {}

    def refuse(self, error: DomainError) -> Response:
        """The calm error page, with the request's correlation id for the member to quote to
        support; an ended session leads to the sign-in page instead."""
        if isinstance(error, Unauthenticated):
            return self.redirect(self.SIGN_IN)
        return self.error_page(error.message, status=error.status)

    def error_page(self, message: str, *, status: int) -> Response:
        return self.render(self.ERROR_TEMPLATE, status=status, message=message,
                           reference=correlation_id())


page_handler = handler(Page)


def require_session(page: Page) -> SessionView:
    session = page.session()
    if session is None:
        if page.cookies.get(page.settings.session_cookie_name):
            log_event("session_use_after_expire", level=logging.WARNING, ip=page.ip,
                      path=page.request.path)
        raise Unauthenticated("Su sesión terminó. Ingrese de nuevo.")
    return session


# --- entry and login -------------------------------------------------------------------------

@page_handler
def home(page: Page) -> Response:
    return page.render("home.html")


@page_handler
def terms(page: Page) -> Response:
    return page.render("terms.html")


@page_handler
def login_document_form(page: Page) -> Response:
    if page.session():
        return page.redirect("/inicio")
    return page.render("login_document.html", error=None, document="")


@page_handler
def login_document_submit(page: Page) -> Response:
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        return page.render("login_document.html", status=403, error=CSRF_REFUSED, document="")
    try:
        ticket = auth.identify(page.ctx, fields.get("document_number", ""), ip=page.ip)
    except DomainError as error:
        return page.render("login_document.html", status=error.status, error=error.message,
                           document=fields.get("document_number", "")[:20])
    page.set_cookie(TICKET_COOKIE, ticket, max_age=page.settings.login_ticket_seconds, same_site="Strict")
    return page.redirect("/ingresar/clave")


def _duration(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minuto" if minutes == 1 else f"{minutes} minutos"


def _wait_help(settings: Settings) -> dict[str, str]:
    return {"first": _duration(settings.lockout_base_seconds),
            "longest": _duration(settings.lockout_max_seconds)}


@page_handler
def login_password_form(page: Page) -> Response:
    if not page.cookies.get(page.cookie_name(TICKET_COOKIE)):
        return page.redirect("/ingresar")
    return page.render("login_password.html", error=None, wait_help=None)


@page_handler
def login_password_submit(page: Page) -> Response:
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        return page.render("login_password.html", status=403, error=CSRF_REFUSED, wait_help=None)
    ticket = page.cookies.get(page.cookie_name(TICKET_COOKIE))
    try:
        result = auth.login(page.ctx, ticket, fields.get("password", ""), ip=page.ip)
    except InvalidCredentials as error:
        if error.message == auth.TICKET_EXPIRED:
            return page.render("login_document.html", status=401, error=error.message, document="")
        # The same help for every failure and every document: it tells nothing about the account.
        return page.render("login_password.html", status=401, error=error.message,
                           wait_help=_wait_help(page.settings))
    except DomainError as error:
        return page.render("login_password.html", status=error.status, error=error.message,
                           wait_help=None)
    page.clear_cookie(TICKET_COOKIE)
    page.set_cookies.append(http.cookie_header(page.settings, page.settings.session_cookie_name,
                                               result.session_token))
    return page.redirect("/inicio")


@page_handler
def logout(page: Page) -> Response:
    """A state change like any other: the session's token, or at least a same-origin request (a
    page left open past the session's end still signs out); a cross-site post changes nothing."""
    fields = http.form_fields(page.request)
    if not (page.check_csrf(fields) or http.same_origin(page.request, page.settings)):
        return page.error_page(CSRF_REFUSED, status=403)
    session = page.session()
    if session:
        auth.logout(page.ctx, session, ip=page.ip)
    page.set_cookies.append(http.expired_cookie(page.settings, page.settings.session_cookie_name))
    # The idle warning's own logout, when nobody answered it: the page then says why.
    target = "/salida?motivo=inactividad" if fields.get("motivo") == "inactividad" else "/salida"
    return page.redirect(target, headers={"Clear-Site-Data": '"cache", "storage"'})


@page_handler
def logged_out(page: Page) -> Response:
    idle = page.query().get("motivo") == "inactividad"
    return page.render("logged_out.html", idle=idle)


@page_handler
def landing(page: Page) -> Response:
    from chalicelib.services import obligations

    session = require_session(page)
    summary = auth.member_summary(page.ctx, session)
    owed = obligations.standing(obligations.list_obligations(page.ctx, session.document_number))
    changed = page.query().get("aviso") == "clave-cambiada"
    return page.render("landing.html", member=summary, owed=owed, password_changed=changed)


# --- recovery --------------------------------------------------------------------------------

@page_handler
def recovery_form(page: Page) -> Response:
    """The document typed at login comes along (from the login ticket, never from the address)."""
    ticket = page.cookies.get(page.cookie_name(TICKET_COOKIE))
    document = auth.ticket_document(page.ctx, ticket) if ticket and len(ticket) < 500 else None
    return page.render("recovery_request.html", error=None, document=document or "")


@page_handler
def recovery_submit(page: Page) -> Response:
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        return page.render("recovery_request.html", status=403, error=CSRF_REFUSED, document="")
    try:
        message = recovery.request_recovery(page.ctx, fields.get("document_number", ""), ip=page.ip)
    except DomainError as error:
        return page.render("recovery_request.html", status=error.status, error=error.message,
                           document=fields.get("document_number", "")[:20])
    return page.render("recovery_sent.html", message=message,
                       minutes=page.settings.recovery_ttl_seconds // 60)


PASSWORD_FIELDS = ("current_password", "temporary_key", "new_password", "confirmation")


def error_links(errors: dict[str, str], order: tuple[str, ...]) -> list[tuple[str | None, str]]:
    """The error summary's (field id, message) pairs: page errors first, then fields in order."""
    links: list[tuple[str | None, str]] = [(None, errors["general"])] if errors.get("general") else []
    return links + [(name, errors[name]) for name in order if errors.get(name)]


def password_form(page: Page, template: str, *, status: int = 200,
                  errors: dict[str, str] | None = None, **values: Any) -> Response:
    """A form that sets a password: the policy before the fields, errors summarised and marked."""
    errors = errors or {}
    return page.render(template, status=status, errors=errors,
                       links=error_links(errors, PASSWORD_FIELDS),
                       policy=policy_summary(page.settings.cooperative_short_name),
                       min_length=MIN_LENGTH, max_length=MAX_LENGTH, **values)


def _change_password_page(page: Page, *, status: int = 200, errors: dict[str, str] | None = None,
                          general: str | None = None, temporary_key: str = "") -> Response:
    """Everything typed but the passwords comes back: the temporary key survives a typo."""
    errors = {**(errors or {}), **({"general": general} if general else {})}
    return password_form(page, "change_password.html", status=status, errors=errors,
                         temporary_key=temporary_key[:64])


@page_handler
def change_password_form(page: Page) -> Response:
    query = page.query()
    token = query.get("token")
    if token is not None:
        # Move the token out of the address bar (and of Referer and history) into a cookie; only
        # a value of the exact shape we send goes anywhere near a header.
        if not recovery.is_token(token):
            log_event("input_validation_fail", level=logging.WARNING, ip=page.ip, path=page.request.path,
                      field="token")
            return page.render("recovery_invalid.html", status=400, message=recovery.INVALID_RECOVERY)
        # Lax, not Strict: the link is opened from a webmail (another site), and a Strict cookie
        # would not come back on the redirect that follows.
        page.set_cookie(RECOVERY_COOKIE, token, max_age=page.settings.recovery_ttl_seconds)
        return page.redirect("/cambiar-clave")
    if not page.cookies.get(page.cookie_name(RECOVERY_COOKIE)):
        return page.render("recovery_invalid.html", status=400, message=recovery.INVALID_RECOVERY)
    return _change_password_page(page)


@page_handler
def change_password_submit(page: Page) -> Response:
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        return _change_password_page(page, status=403, general=CSRF_REFUSED,
                                     temporary_key=fields.get("temporary_key", ""))
    token = page.cookies.get(page.cookie_name(RECOVERY_COOKIE))
    new_password = fields.get("new_password", "")
    key = fields.get("temporary_key", "")
    if new_password and new_password != fields.get("confirmation", ""):
        return _change_password_page(page, status=400, temporary_key=key,
                                     errors={"confirmation": CONFIRMATION_MISMATCH})
    try:
        recovery.confirm_recovery(page.ctx, token, key, new_password, ip=page.ip)
    except recovery.InvalidRecovery as error:
        if error.field == "token":
            page.clear_cookie(RECOVERY_COOKIE)
            return page.render("recovery_invalid.html", status=400, message=error.message)
        return _change_password_page(page, status=400, temporary_key=key,
                                     errors={error.field or "general": error.message})
    except (WeakPassword, DomainError) as error:
        return _change_password_page(page, status=error.status, temporary_key=key,
                                     errors={error.field or "general": error.message})
    page.clear_cookie(RECOVERY_COOKIE)
    page.set_cookies.append(http.expired_cookie(page.settings, page.settings.session_cookie_name))
    return page.render("password_changed.html")


# --- the signed-in member's own password ------------------------------------------------------

@page_handler
def account_password_form(page: Page) -> Response:
    require_session(page)
    return password_form(page, "account_password.html")


@page_handler
def account_password_submit(page: Page) -> Response:
    session = require_session(page)
    fields = http.form_fields(page.request)
    if not page.check_csrf(fields):
        return password_form(page, "account_password.html", status=403, errors={"general": CSRF_REFUSED})
    new_password = fields.get("new_password", "")
    if new_password and new_password != fields.get("confirmation", ""):
        return password_form(page, "account_password.html", status=400,
                             errors={"confirmation": CONFIRMATION_MISMATCH})
    try:
        recovery.change_password(page.ctx, document_number=session.document_number,
                                 session_hash=session.session_hash,
                                 current_password=fields.get("current_password", ""),
                                 new_password=new_password, ip=page.ip)
    except (WeakPassword, DomainError) as error:
        return password_form(page, "account_password.html", status=error.status,
                             errors={error.field or "general": error.message})
    return page.redirect("/inicio?aviso=clave-cambiada")
