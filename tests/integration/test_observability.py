"""Correlation ids: one per request, schedule run or event, in every log line and in
``X-Request-Id``; the member's error page shows it as a reference; one access line per request."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from tests.integration.test_session_api import DOC, PASSWORD
from tests.page_support import FORM, Browser

GENERATED = re.compile(r"[A-Za-z0-9_-]{16}")  # observability.new_correlation_id
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
JSON = {"Content-Type": "application/json"}
STAFF = {"X-Api-Key": "local-staff-key", **JSON}


def log_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The JSON lines of the ``sucursal`` logger captured so far."""
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "sucursal" and r.getMessage().startswith("{")]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="sucursal")
    return caplog


def sign_in(browser: Browser, make_member) -> None:  # type: ignore[no-untyped-def]
    """A member signed in through the login pages (the browser keeps the session cookie)."""
    make_member(DOC, password=PASSWORD)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    response = browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    assert response.status_code == 303 and response.headers["Location"] == "/inicio"


# --- HTTP: every response, its log lines ------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "route"), [
    ("GET", "/", {}, b"", 200, "/"),
    ("POST", "/api/v1/session/identify", JSON, b'{"document_number": "12ab"}', 400,
     "/api/v1/session/identify"),
    ("GET", "/api/v1/me", {}, b"", 401, "/api/v1/me"),
    ("PUT", "/api/v1/me", JSON, b"{}", 405, "/api/v1/me"),
    ("POST", "/api/v1/session/identify", FORM, b"document_number=1", 415, "/api/v1/session/identify"),
    ("GET", "/staff/v1/exports/20261123-000000-abcdef", STAFF, b"", 404, "/staff/v1/exports/{export_id}"),
    ("GET", "/static/nada.css", {}, b"", 404, "/static/{name}"),
    ("GET", f"/pagos/pay-{DOC}/retorno?documento={DOC}", {}, b"", None, "/pagos/{payment_id}/retorno"),
])
def test_every_response_has_a_request_id_shared_by_its_log_lines(  # type: ignore[no-untyped-def]
        client, logs, method: str, path: str, headers: dict[str, str], body: bytes, status: int | None,
        route: str) -> None:
    response = client.http.request(method, path, headers=headers, body=body)
    if status is not None:
        assert response.status_code == status
    request_id = response.headers["X-Request-Id"]
    assert GENERATED.fullmatch(request_id)
    mine = [line for line in log_lines(logs) if line.get("correlation_id") == request_id]
    access = [line for line in mine if line["event"] == "http_request"]
    assert len(access) == 1
    assert access[0]["method"] == method and access[0]["route"] == route
    assert access[0]["status"] == response.status_code and access[0]["duration_ms"] >= 0
    assert all(DOC not in json.dumps(line) and "?" not in line.get("route", "") for line in mine)
    if status == 400:
        assert any(line["event"] == "input_validation_fail" for line in mine)


def test_each_request_gets_its_own_id_and_none_leaks_outside(client, logs) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.observability import correlation_id

    ids = {client.http.get("/").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5
    assert correlation_id() is None


@pytest.mark.parametrize(("sent", "kept"), [
    ("3f2a9c1e-77b0-4c1d-9a55-0e8f2d4c6b7a", True),
    ("ABCdef12", True),
    ("a" * 64, True),
    ("short", False),
    ("a" * 65, False),
    ("two words here", False),
    ("abc12345\nforged", False),
    ('abc12345","event":"x', False),
    ("under_score_id", False),
])
def test_a_callers_request_id_is_kept_only_when_plainly_an_id(client, sent: str, kept: bool) -> None:  # type: ignore[no-untyped-def]
    answered = client.http.get("/", headers={"X-Request-Id": sent}).headers["X-Request-Id"]
    if kept:
        assert answered == sent
    else:
        assert answered != sent and GENERATED.fullmatch(answered)


def test_api_gateways_request_id_comes_first() -> None:
    from chalice.app import Request

    from chalicelib.web.http import correlation_id_for

    def request(context: dict[str, Any], headers: dict[str, str]) -> Request:
        return Request({"multiValueQueryStringParameters": None, "headers": headers,
                        "pathParameters": None, "stageVariables": None, "body": None,
                        "requestContext": {"httpMethod": "GET", "resourcePath": "/", **context}})

    gateway_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    both = request({"requestId": gateway_id}, {"x-request-id": "callers-id-1"})
    assert correlation_id_for(both) == gateway_id
    assert correlation_id_for(request({}, {"x-request-id": "callers-id-1"})) == "callers-id-1"
    assert GENERATED.fullmatch(correlation_id_for(request({"requestId": "no good"}, {})))
    assert GENERATED.fullmatch(correlation_id_for(None))


# --- what the member reads ------------------------------------------------------------------------

def _fail_landing(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    from chalicelib.services import auth

    def boom(*args):  # type: ignore[no-untyped-def]
        raise error

    monkeypatch.setattr(auth, "member_summary", boom)


@pytest.mark.parametrize(("transient", "status", "message"), [
    (True, 503, "tenemos muchas solicitudes"),
    (False, 500, "Tuvimos un problema"),
])
def test_the_error_page_shows_the_reference_support_can_find(  # type: ignore[no-untyped-def]
        browser: Browser, make_member, logs, monkeypatch, transient: bool, status: int, message: str) -> None:
    from botocore.exceptions import ClientError

    sign_in(browser, make_member)
    code = "ProvisionedThroughputExceededException" if transient else "ValidationException"
    _fail_landing(monkeypatch, ClientError({"Error": {"Code": code, "Message": "x"}}, "GetItem"))
    response = browser.get("/inicio")
    html = response.body.decode()
    request_id = response.headers["X-Request-Id"]
    assert response.status_code == status and message in html
    assert f"Código de referencia: <strong>{request_id}</strong>" in html
    assert "Traceback" not in html and "ClientError" not in html
    failure = next(r for r in logs.records if r.getMessage().startswith('{"ts"')
                   and '"unhandled_error"' in r.getMessage())
    assert json.loads(failure.getMessage())["correlation_id"] == request_id
    assert failure.exc_info is not None  # the trace is in the log record, next to the reference


def test_member_refusals_show_the_reference_too(browser: Browser, make_member) -> None:  # type: ignore[no-untyped-def]
    sign_in(browser, make_member)
    response = browser.get("/pagos/no-existe")
    assert response.status_code == 404
    reference = response.headers["X-Request-Id"]
    assert f"Código de referencia: <strong>{reference}</strong>" in response.body.decode()


def test_api_errors_keep_the_contract_and_carry_the_id_in_the_header(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.services import auth

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("no")

    monkeypatch.setattr(auth, "identify", boom)
    response = client.http.post("/api/v1/session/identify", headers=JSON,
                                body='{"document_number": "12345678"}')
    assert response.status_code == 500
    assert set(response.json_body) == {"error"} and set(response.json_body["error"]) == {"code", "message"}
    assert GENERATED.fullmatch(response.headers["X-Request-Id"])


# --- schedules and the S3 drop folder's event ---------------------------------------------------

def _event(**detail: Any) -> dict[str, Any]:
    return {"version": "0", "id": "ev-1", "detail-type": "Object Created", "source": "aws.s3",
            "account": "123456789012", "time": "2026-11-23T15:00:00Z", "region": "us-east-1",
            "resources": [], "detail": detail}


@pytest.mark.parametrize(("function", "payload"), [
    ("export_approved_payments", _event()),
    ("import_from_s3", _event(bucket={"name": "otro"}, object={"key": "fuera/x.csv"})),
])
def test_each_lambda_invocation_logs_under_its_aws_request_id(  # type: ignore[no-untyped-def]
        client, logs, function: str, payload: dict[str, Any]) -> None:
    from chalicelib.observability import correlation_id

    for _ in range(2):
        client.lambda_.invoke(function, payload)
    ids = [line.get("correlation_id") for line in log_lines(logs)]
    assert ids and all(isinstance(i, str) and UUID.fullmatch(i) for i in ids)
    assert len(set(ids)) == 2  # one per invocation
    assert correlation_id() is None


def test_the_local_runner_without_a_lambda_context_gets_a_generated_id(client, logs) -> None:  # type: ignore[no-untyped-def]
    from app import app

    app.handler_map["export_approved_payments"](_event(), None)
    ids = {line.get("correlation_id") for line in log_lines(logs)}
    assert len(ids) == 1 and GENERATED.fullmatch(ids.pop() or "")
