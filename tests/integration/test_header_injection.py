"""No request value reaches a response header: every route of ``app.routes``, every method, with
CR, LF, ``;`` and ``,`` in every path, query, form and JSON parameter the app reads.

The app is invoked with the event API Gateway would send (path parameters already URL-decoded,
which ``chalice.test.Client`` cannot do: ``urlsplit`` drops CR and LF from a URL), anonymously,
signed in (with the session's CSRF token, so the handlers go past their checks) and as staff.
Every header of every answer must be free of control characters, and every ``Set-Cookie`` must
be one of the app's cookies with only the attributes the app writes, each once.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.services.staff import SEARCH_PARAMS
from tests.integration.test_observability import sign_in
from tests.page_support import Browser

ROOT = Path(__file__).resolve().parents[2]
#: What an attacker puts in a value: header splitting (CR, LF, both), cookie attributes, lists.
PAYLOADS = (
    "x\r\nSet-Cookie: sv_session=atacante\r\nX-Inyectado: 1",
    "x\rX-Inyectado: 1",
    "x\nX-Inyectado: 1",
    "x; Domain=atacante.example; Max-Age=999999; SameSite=None",
    "x, sv_session=atacante",
)
#: Every field name the handlers read (a test below checks this list against the source).
FIELDS = ("accion", "action", "alto", "bank_code", "confirmation", "cursor", "cus", "document",
          "current_password", "document_number", "from", "idempotency_key", "item_0_amount", "item_0_id",
          "items", "js",
          "limit", "login_ticket", "motivo", "new_password", "nivel", "opcion_CR-0001",
          "otro_CR-0001", "password", "person_type", "reason", "reference", "status",
          "temporary_key", "to", "token", "volver",
          # consent and the return page's refresh
          "accepted_documents", "auto", "vez",
          # the staff console
          "bucket", "code", "documento", "email", "enabled", "formato", "key", "listo", "role",
          "salida", "username")
COOKIE_NAMES = {"sv_csrf", "sv_ticket", "sv_recovery", "sv_session", "sv_prefs", "sv_staff"}
ATTRIBUTES = {"path", "httponly", "samesite", "secure", "max-age"}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
STAFF_KEY = "local-staff-key"


def _routes() -> list[tuple[str, str]]:
    from app import app

    return sorted((path, method) for path, methods in app.routes.items() for method in methods)


def _event(route: str, method: str, value: str, headers: dict[str, str], csrf: str | None,
           content_types: list[str], names: tuple[str, ...]) -> dict[str, Any]:
    path = re.sub(r"\{\w+\}", "valor", route)
    fields = {name: value for name in names}
    body: str | None = None
    headers = {**headers, "x-request-id": value, "idempotency-key": value, "x-staff-user": value}
    if method != "GET":
        if "application/x-www-form-urlencoded" in content_types:
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = urlencode({**fields, **({"csrf_token": csrf} if csrf else {})})
        else:
            headers["content-type"] = "application/json"
            body = json.dumps(fields)
        if csrf:
            headers["x-csrf-token"] = csrf
    return {
        "resource": route, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": fields,
        "multiValueQueryStringParameters": {k: [v] for k, v in fields.items()},
        "pathParameters": {name: value for name in re.findall(r"\{(\w+)\}", route)},
        "stageVariables": {},
        "requestContext": {"httpMethod": method, "resourcePath": route, "path": path,
                           "identity": {"sourceIp": "127.0.0.1"}},
        "body": body, "isBase64Encoded": False,
    }


def _assert_clean(answer: dict[str, Any], case: tuple[Any, ...]) -> None:
    assert answer["statusCode"] < 500, (case, answer["statusCode"], answer["body"][:300])
    pairs = [(name, value) for name, value in (answer.get("headers") or {}).items()]
    pairs += [(name, value) for name, values in (answer.get("multiValueHeaders") or {}).items()
              for value in values]
    for name, value in pairs:
        assert not CONTROL.search(name) and not CONTROL.search(str(value)), (case, name, value)
        assert name.lower() != "x-inyectado", case
        if name.lower() == "set-cookie":
            first, *attributes = value.split("; ")
            cookie, _, content = first.partition("=")
            assert cookie.removeprefix("__Host-") in COOKIE_NAMES, (case, value)
            assert re.fullmatch(r"[A-Za-z0-9._~-]*", content), (case, value)
            keys = [attribute.partition("=")[0].lower() for attribute in attributes]
            assert set(keys) <= ATTRIBUTES and len(keys) == len(set(keys)), (case, value)


def test_the_field_list_covers_what_the_handlers_read() -> None:
    read = set()
    for source in (ROOT / "chalicelib" / "web").glob("*.py"):
        text = source.read_text("utf-8")
        read |= set(re.findall(r'(?:fields|query|params|body|body\(\))\.get\(\s*"(\w+)"', text))
        read |= set(re.findall(r"fields\.get\('(\w+)'", text))
    assert read - {"csrf_token"} <= set(FIELDS), sorted(read - set(FIELDS))


@pytest.mark.parametrize(("route", "method"), _routes())
def test_no_request_value_reaches_a_response_header(  # type: ignore[no-untyped-def]
        browser: Browser, make_member, gateway, make_obligation, request, route: str, method: str) -> None:
    from app import app

    sign_in(browser, make_member)
    make_obligation()
    page = browser.get("/inicio").body.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    member = {"cookie": "; ".join(f"{k}={v}" for k, v in browser.jar.items()),
              "sec-fetch-site": "same-origin"}
    states = {"anonymous": ({}, None), "member": (member, csrf),
              "staff": ({"x-api-key": STAFF_KEY}, None)}
    if route.startswith("/backoffice"):  # a console user signed in on Cognito (administrador)
        from tests.staff_support import staff_sign_in

        console = Browser(browser.client)
        staff_sign_in(console, request.getfixturevalue("staff_pool"), "administrador", "administrador")
        body = console.get("/backoffice").body.decode()
        states["console"] = ({"cookie": "; ".join(f"{k}={v}" for k, v in console.jar.items()),
                              "sec-fetch-site": "same-origin"},
                             re.search(r'name="csrf_token" value="([^"]+)"', body).group(1))
    content_types = app.routes[route][method].content_types
    # The staff search refuses unknown parameters: it also gets only the ones it reads.
    name_sets = [FIELDS, *([SEARCH_PARAMS] if route == "/staff/v1/payments" else [])]
    for state, (headers, token) in states.items():
        for value in PAYLOADS:
            for names in name_sets:
                event = _event(route, method, value, headers, token, content_types, tuple(names))
                _assert_clean(app(event, None), (route, method, state, value))
