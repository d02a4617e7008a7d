"""The one request wrapper of pages, the member API and the staff API.

Each kind of request is an ``Exchange`` subclass that differs only in how it authenticates
(``authenticate``) and how it renders a refusal (``refuse``: the API's JSON error body of SPEC §6,
or an HTML error page). What a failure means is decided once, by ``http.domain_error``: a domain
error keeps its status and Spanish message, DynamoDB busy is a 503, anything else a calm 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import TypeVar

from chalice import Response
from chalice.app import Request

from chalicelib.context import Context, get_context
from chalicelib.domain.errors import DomainError, InvalidInput
from chalicelib.observability import log_event
from chalicelib.web import http


class Exchange:
    """One request: the context, the caller's address and cookies. Subclasses choose how the
    caller is authenticated and how a refusal is answered (here: the API's JSON error)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.ctx: Context = get_context()
        self.settings = self.ctx.settings
        self.ip = http.client_ip(request, self.settings)
        self.cookies = http.cookies(request)

    def query(self) -> dict[str, str]:
        """The query string's parameters (of a repeated one, its last value)."""
        return dict(self.request.query_params or {})

    def param(self, name: str) -> str:
        """A parameter of the route's path ("" when absent)."""
        return (self.request.uri_params or {}).get(name, "")

    def authenticate(self) -> None:
        """Refuse the request (raise a DomainError) before its handler runs; nothing by default."""

    def refuse(self, error: DomainError) -> Response:
        """The answer to a refusal or a failure."""
        return http.json_error(error)

    def skip_session_lookup(self) -> None:
        """After a failure: answer without reading a session not read yet (the store may be what
        failed); one already read stays. Nothing to skip by default."""


E = TypeVar("E", bound=Exchange)
Handler = Callable[[Request], Response]


def handler(kind: type[E]) -> Callable[[Callable[[E], Response]], Handler]:
    """Decorate ``func(exchange) -> Response`` into a Chalice view of the given kind."""

    def decorate(func: Callable[[E], Response]) -> Handler:
        @wraps(func)
        def wrapper(request: Request) -> Response:
            return answer(request, kind, func)

        return wrapper

    return decorate


def answer(request: Request, kind: type[E], func: Callable[[E], Response]) -> Response:
    """``func``'s answer; every exception becomes the kind's refusal, never a trace."""
    try:
        exchange = kind(request)
    except Exception as exc:  # nothing to render a page with: the API's shape
        return http.json_error(failure(request, exc))
    try:
        exchange.authenticate()
        return func(exchange)
    except Exception as exc:
        error = failure(request, exc)
        if error.status >= 500:
            exchange.skip_session_lookup()
        return exchange.refuse(error)


def failure(request: Request, exc: Exception) -> DomainError:
    """What ``exc`` means to the caller, logged: the field's name of bad input (never the value
    sent), the trace of anything unexpected. Call it from an ``except`` block."""
    if isinstance(exc, InvalidInput):
        log_event("input_validation_fail", path=request.path, code=exc.code, field=exc.field)
    elif not isinstance(exc, DomainError):
        log_event("unhandled_error", level=logging.ERROR, exc_info=True, path=request.path)
    return http.domain_error(exc)
