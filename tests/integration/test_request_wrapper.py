"""The one request wrapper: member pages, console pages, the member API and the staff API answer a
failure the same way (status, code, Spanish message); only the rendering differs (an HTML error
page, or the API's ``{"error": {"code", "message"}}``), and an ended session takes a page to its
sign-in instead of a 401."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from chalicelib.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    Throttled,
    Unauthenticated,
)
from chalicelib.web import http
from tests.integration.test_faults import TRACE_MARKERS
from tests.integration.test_staff_api import KEY
from tests.page_support import Browser
from tests.staff_support import staff_sign_in

JSON = {"Content-Type": "application/json"}
THROTTLED = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                        "Query")
UNANSWERED = ReadTimeoutError(endpoint_url="http://127.0.0.1:5000/")


# --- one route of each kind, with the use case it calls made to fail ----------------------------------

def _member_page(browser: Browser) -> Any:
    return browser.get("/avisos/cancelar?token=x")


def _console_page(browser: Browser) -> Any:
    return browser.get("/backoffice/revision")


def _member_api(browser: Browser) -> Any:
    return browser.client.http.post("/api/v1/session/identify", headers=JSON,
                                    body=json.dumps({"document_number": "1020304050"}))


def _staff_api(browser: Browser) -> Any:
    return browser.client.http.get("/staff/v1/review", headers={**JSON, "X-Api-Key": KEY})


#: kind → (the route's request, the module and name of the use case it calls)
KINDS: dict[str, tuple[Callable[[Browser], Any], str, str]] = {
    "member page": (_member_page, "chalicelib.services.reminders", "member_for_token"),
    "console page": (_console_page, "chalicelib.services.staff", "review_queue"),
    "member API": (_member_api, "chalicelib.services.auth", "identify"),
    "staff API": (_staff_api, "chalicelib.services.staff", "review_queue"),
}
PAGES = ("member page", "console page")
SIGN_IN = {"member page": "/ingresar", "console page": "/backoffice/ingresar"}

FAILURES: dict[str, tuple[Exception, int, str, str]] = {
    # what the use case raises: (exception, status, code, message)
    "invalid input": (InvalidInput("El número de documento no es válido.", field="document_number"),
                      400, "invalid_request", "El número de documento no es válido."),
    "not found": (NotFound("No encontramos ese pago."), 404, "not_found", "No encontramos ese pago."),
    "conflict": (Conflict("Ese pago ya cambió.", code="payment_changed"), 409, "payment_changed",
                 "Ese pago ya cambió."),
    "throttled": (Throttled("Demasiados intentos; espere un minuto."), 429, "too_many_requests",
                  "Demasiados intentos; espere un minuto."),
    "service unavailable": (ServiceUnavailable("La pasarela no responde."), 503, "service_unavailable",
                            "La pasarela no responde."),
    "dynamodb throttled": (THROTTLED, 503, "service_busy", http.BUSY_MESSAGE),
    "dynamodb unanswered": (UNANSWERED, 503, "service_busy", http.BUSY_MESSAGE),
    "a bug": (ValueError("a bug"), 500, "internal_error", http.UNEXPECTED_MESSAGE),
}


@pytest.fixture
def staff(browser: Browser, staff_pool) -> Browser:  # type: ignore[no-untyped-def]
    """A browser signed in to the console (the other kinds ignore its cookie)."""
    staff_sign_in(browser, staff_pool)
    return browser


def _answer(browser: Browser, monkeypatch: pytest.MonkeyPatch, kind: str, error: Exception) -> Any:
    """The answer of ``kind``'s route while its use case raises ``error``."""
    import importlib

    send, module, name = KINDS[kind]

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(importlib.import_module(module), name, failing)
        return send(browser)


def _text(response: Any) -> str:
    body = response.body
    return body.decode("utf-8") if isinstance(body, bytes) else str(body)


@pytest.mark.parametrize("failure", FAILURES)
def test_every_kind_answers_a_failure_alike(staff: Browser, monkeypatch: pytest.MonkeyPatch,
                                            failure: str) -> None:
    error, status, code, message = FAILURES[failure]
    for kind in KINDS:
        response = _answer(staff, monkeypatch, kind, error)
        text = _text(response)
        assert response.status_code == status, (kind, text[:300])
        for marker in TRACE_MARKERS:
            assert marker not in text, (kind, marker)
        if kind in PAGES:
            assert response.headers["Content-Type"].startswith("text/html"), kind
            assert html.escape(message, quote=False) in text, (kind, text[:300])
            assert "Código de referencia" in text and response.headers["X-Request-Id"] in text, kind
        else:
            expected: dict[str, Any] = {"code": code, "message": message}
            if isinstance(error, DomainError) and error.field:
                expected["field"] = error.field
            assert response.json_body == {"error": expected}, kind


def test_an_ended_session_takes_a_page_to_its_sign_in_and_an_api_call_to_401(
        staff: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    error = Unauthenticated("Su sesión terminó. Ingrese de nuevo.")
    for kind in KINDS:
        response = _answer(staff, monkeypatch, kind, error)
        if kind in PAGES:
            assert response.status_code == 303, kind
            assert response.headers["Location"].endswith(SIGN_IN[kind]), kind
        else:
            assert response.status_code == 401, kind
            assert response.json_body == {"error": {"code": "unauthenticated", "message": error.message}}


# --- the staff API with DynamoDB busy, end to end ----------------------------------------------------

@pytest.fixture
def busy_dynamodb(monkeypatch: pytest.MonkeyPatch) -> Callable[[Exception], None]:
    """From now on every DynamoDB call fails with ``error`` (botocore's retries already spent)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    failure: list[Exception] = []

    def call(client, operation_name, params):  # type: ignore[no-untyped-def]
        if failure and client.meta.service_model.service_name == "dynamodb":
            raise failure[0]
        return original(client, operation_name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)
    return failure.append


@pytest.mark.parametrize("error", [THROTTLED, UNANSWERED], ids=["throttled", "unanswered"])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/staff/v1/review"),
    ("GET", "/staff/v1/members/1020304050/audit"),
    ("POST", "/staff/v1/members/1020304050/block"),
])
def test_the_staff_api_answers_503_not_500_when_dynamodb_is_busy(  # type: ignore[no-untyped-def]
        client, busy_dynamodb, error: Exception, method: str, path: str) -> None:
    busy_dynamodb(error)
    body = json.dumps({"reason": "Fraude reportado por el asociado."}) if method == "POST" else ""
    response = getattr(client.http, method.lower())(path, headers={**JSON, "X-Api-Key": KEY}, body=body)
    assert response.status_code == 503, response.body
    assert response.json_body == {"error": {"code": "service_busy", "message": http.BUSY_MESSAGE}}
