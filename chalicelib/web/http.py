"""HTTP plumbing for the entry points: parsing requests, building responses, cookies, headers."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from chalice import Response
from chalice.app import Request

from chalicelib.config import Settings, get_settings
from chalicelib.domain.errors import DomainError, InvalidInput
from chalicelib.security import bounded_json
from chalicelib.web import headers as header_values

FORM = ["application/x-www-form-urlencoded"]
JSON = ["application/json"]
MAX_BODY = 64 * 1024
HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
REQUEST_ID_HEADER = "X-Request-Id"
#: What a caller's X-Request-Id must look like to be reused (anything else could inject log text).
_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
#: Recorded as the payer's address when API Gateway gives none (never bound to).
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104  # nosec B104
TOO_LARGE = "La solicitud es demasiado grande."
TOO_DEEP = (f"El cuerpo de la solicitud anida objetos o listas a más de {bounded_json.MAX_DEPTH} "
            "niveles.")
NOT_JSON = "El cuerpo de la solicitud no es JSON válido."


# --- requests --------------------------------------------------------------------------------

def client_ip(request: Request, settings: Settings) -> str:
    """The caller's address; X-Forwarded-For is trusted only where configured (local, tests)."""
    if settings.trust_forwarded_for:
        forwarded: str = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first and len(first) <= 45:
            return first
    identity = (request.context or {}).get("identity") or {}
    return str(identity.get("sourceIp") or UNKNOWN_ADDRESS)


def raw_body(request: Request) -> bytes:
    """The body as sent (Chalice's ``raw_body`` is declared ``str | bytes``)."""
    raw = request.raw_body or b""
    return raw.encode("utf-8") if isinstance(raw, str) else raw


def form_fields(request: Request) -> dict[str, str]:
    """A urlencoded form as single values (the last one wins), never raising on odd input."""
    return {key: values[-1] for key, values in form_values(request).items()}


def form_values(request: Request) -> dict[str, list[str]]:
    """A urlencoded form with every value of repeated fields (checkbox lists)."""
    raw = raw_body(request)
    if len(raw) > MAX_BODY:
        raise InvalidInput(TOO_LARGE)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("La solicitud no es texto UTF-8 válido.") from exc
    return parse_qs(text, keep_blank_values=True, max_num_fields=300)


def parse_json(raw: bytes) -> Any:
    """A JSON body within MAX_BODY bytes and ``bounded_json.MAX_DEPTH`` levels (None when empty);
    InvalidInput (a Spanish 400) for anything else, before any recursion can fail."""
    try:
        return bounded_json.loads(raw, max_bytes=MAX_BODY) if raw.strip() else None
    except bounded_json.TooLarge as exc:
        raise InvalidInput(TOO_LARGE) from exc
    except bounded_json.TooDeep as exc:
        raise InvalidInput(TOO_DEEP) from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise InvalidInput(NOT_JSON) from exc


def json_fields(request: Request) -> dict[str, Any]:
    """A JSON object body; a clear 400 for anything else."""
    body = parse_json(raw_body(request))
    if not isinstance(body, dict):
        raise InvalidInput("El cuerpo de la solicitud debe ser un objeto JSON.")
    return body


def cookies(request: Request) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(request.headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def same_origin(request: Request, settings: Settings) -> bool:
    """Reject cross-site posts (OWASP CSRF CS, Fetch Metadata).

    Browsers send Sec-Fetch-Site, which pages cannot forge: trust it when present. Without it, an
    Origin header, when sent, must be ours. (Under ``Referrer-Policy: no-referrer`` Chromium sends
    ``Origin: null`` even for same-origin form posts, so Origin alone cannot decide.)
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or origin.rstrip("/") == settings.public_origin


# --- cookies ---------------------------------------------------------------------------------

def cookie_header(settings: Settings, name: str, value: str, *, max_age: int | None = None,
                  path: str = "/", same_site: str = "Lax") -> str:
    return header_values.cookie(name, value, path=path, same_site=same_site,
                                secure=settings.cookie_secure, max_age=max_age)


def expired_cookie(settings: Settings, name: str, *, path: str = "/") -> str:
    return cookie_header(settings, name, "", max_age=0, path=path)


# --- responses -------------------------------------------------------------------------------

def html(body: str, *, status: int = 200, headers: Mapping[str, Any] | None = None) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": HTML_TYPE, **(headers or {})})


def redirect(location: str, *, headers: Mapping[str, Any] | None = None) -> Response:
    return Response(body="", status_code=303, headers={
        "Location": header_values.location(location), "Content-Type": HTML_TYPE, **(headers or {})})


def json_response(body: Any, *, status: int = 200, headers: Mapping[str, Any] | None = None) -> Response:
    payload = "" if body is None else json.dumps(body, ensure_ascii=False)
    return Response(body=payload, status_code=status, headers={"Content-Type": JSON_TYPE, **(headers or {})})


BUSY_MESSAGE = ("En este momento tenemos muchas solicitudes y no pudimos atender la suya. "
                "Intente de nuevo en unos segundos; no se perdió ninguna información.")
UNEXPECTED_MESSAGE = "Tuvimos un problema al procesar su solicitud. Intente de nuevo en unos minutos."


def domain_error(exc: Exception) -> DomainError:
    """What the caller reads for ``exc``: a domain error as it is; for a failure that is not
    theirs, busy (503) or unexpected (500)."""
    from chalicelib.adapters.dynamo.repositories import is_transient
    from chalicelib.domain.errors import InternalError, ServiceUnavailable

    if isinstance(exc, DomainError):
        return exc
    if is_transient(exc):
        return ServiceUnavailable(BUSY_MESSAGE, code="service_busy")
    return InternalError(UNEXPECTED_MESSAGE)


def json_error(error: DomainError) -> Response:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.field:
        body["field"] = error.field
    body.update(error.extra)
    return json_response({"error": body}, status=error.status)


_FRAMEWORK_ERRORS = {
    400: ("invalid_request", "La solicitud no es válida."),
    403: ("forbidden", "No tiene permiso para hacer esta solicitud."),
    404: ("not_found", "No encontramos lo que busca."),
    405: ("method_not_allowed", "Esta dirección no admite ese método HTTP."),
    415: ("unsupported_media_type",
          "Tipo de contenido no admitido: envíe JSON (Content-Type: application/json) a la API "
          "y formularios (application/x-www-form-urlencoded) a las páginas."),
    500: ("internal_error", UNEXPECTED_MESSAGE),
}


def framework_error(response: Response) -> Response:
    """Chalice answers some refusals itself, in English, as ``{"Code", "Message"}`` (405, 415, a
    binary answer without a matching Accept, a ChaliceViewError, an unhandled exception): give
    every one our shape and Spanish, keeping its status."""
    if response.status_code < 400:
        return response
    body = response.body
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body) if body[:1] in ("{", b"{") else None
        except ValueError:
            return response
    if not isinstance(body, dict) or set(body) != {"Code", "Message"}:
        return response
    status = response.status_code
    code, message = _FRAMEWORK_ERRORS.get(status) or _FRAMEWORK_ERRORS[500 if status >= 500 else 400]
    return json_response({"error": {"code": code, "message": message}}, status=status,
                         headers={k: v for k, v in response.headers.items()
                                  if k.lower() not in ("content-type", "content-length")})


def correlation_id_for(request: Request | None) -> str:
    """API Gateway's request id; else the caller's ``X-Request-Id`` if it is plainly an id; else new."""
    from chalicelib.observability import new_correlation_id

    if request is not None:
        for candidate in ((request.context or {}).get("requestId"), request.headers.get("x-request-id")):
            if isinstance(candidate, str) and _REQUEST_ID.fullmatch(candidate):
                return candidate
    return new_correlation_id()


def envelope(request: Request | None, get_response: Callable[[Request | None], Response]) -> Response:
    """Around every HTTP request (app.py's middleware): a correlation id bound to every log line and
    echoed in ``X-Request-Id``, our shape for Chalice's own refusals, the security headers, and one
    ``http_request`` line (route template, never the raw path or query: no document numbers)."""
    from chalicelib.observability import log_context, log_event

    started = time.perf_counter()
    request_id = correlation_id_for(request)
    route = request.path if request is not None else ""
    with log_context(correlation_id=request_id):
        response = _completed(framework_error(get_response(request)), route, request_id)
        try:
            header_values.check(response.headers)
        except header_values.UnsafeHeader as exc:  # a builder was bypassed: never send it
            log_event("unsafe_header", level=logging.ERROR, route=route, reason=str(exc)[:200])
            response = _completed(json_error(domain_error(exc)), route, request_id)
        log_event("http_request", method=request.method if request is not None else "", route=route,
                  status=response.status_code, duration_ms=round((time.perf_counter() - started) * 1000, 1))
    return response


def _completed(response: Response, route: str, request_id: str) -> Response:
    """The security headers (unless the handler chose its own) and the correlation id."""
    for name, value in security_headers(get_settings(), route).items():
        response.headers.setdefault(name, value)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def security_headers(settings: Settings, path: str) -> dict[str, str]:
    """Headers for every response (SPEC §2.4; OWASP HTTP headers cheat sheet)."""
    form_action = "'self'"
    if settings.gateway_origin:
        form_action += f" {settings.gateway_origin}"  # the PSE redirect follows a form post
    headers = {
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action {form_action}"
        ),
        "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer" if path.startswith("/cambiar-clave")
        else "strict-origin-when-cross-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }
    if not path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"
    return headers
