"""Errors a member or a client can cause, each with a stable code and a Spanish message."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DomainError(Exception):
    """A refusal the member must read: ``code`` is the API error code, ``message`` is Spanish."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.field = field
        self.extra = extra or {}


class InvalidInput(DomainError):
    status = 400
    code = "invalid_request"


class InvalidCredentials(DomainError):
    status = 401
    code = "invalid_credentials"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    """What a use case read changed before its write: ``changed`` names what (the unit of work's
    labels, e.g. ``payment`` or ``obligation:APORTES``); re-read and decide again, or tell the user."""

    status = 409
    code = "conflict"

    def __init__(self, message: str = "Los datos cambiaron mientras se procesaba; intente de nuevo.",
                 *, changed: Iterable[str] = (), code: str | None = None, field: str | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, code=code, field=field, extra=extra)
        self.changed = frozenset(changed)


class Throttled(DomainError):
    status = 429
    code = "too_many_requests"


class ServiceUnavailable(DomainError):
    status = 503
    code = "service_unavailable"


class InternalError(DomainError):
    """Our failure, not the member's: shown with a calm message, logged with the details."""

    status = 500
    code = "internal_error"
