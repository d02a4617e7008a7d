"""Security headers and cookie flags on every GET route of the app (SPEC §2.4, SV-WEB-02, SV-SES-02).

The routes come from the Chalice app itself, so a route added later is checked without editing this
file. Each is requested anonymously and in the state its callers have (a signed-in member; staff with
the local API key; a console user signed in on Cognito), with ``COOKIE_SECURE`` on as in every deployed stage.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.integration.test_observability import sign_in
from tests.page_support import Browser

#: A value for each path parameter (unknown ids are fine: refusals need the headers too).
SAMPLES = {"payment_id": "pago-inexistente", "export_id": "20261123-000000-abcdef",
           "document_number": "1020304050", "name": "app.css"}
#: Queries that make a GET set a cookie (the recovery link moves its token into one).
QUERIES = {"/cambiar-clave": "?token=" + "t" * 43}
REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
STAFF_KEY = {"X-Api-Key": "local-staff-key"}


def _get_routes() -> list[str]:
    from app import app

    return sorted(path for path, methods in app.routes.items() if "GET" in methods)


def _cases() -> list[tuple[str, str]]:
    cases = []
    for route in _get_routes():
        signed = ("staff" if route.startswith("/staff/")
                  else "console" if route.startswith("/backoffice") else "member")
        cases += [(route, "anonymous"), (route, signed)]
    return cases


def _url(route: str) -> str:
    path = re.sub(r"\{(\w+)\}", lambda m: quote(SAMPLES[m.group(1)]), route)
    return path + QUERIES.get(route, "")


@pytest.fixture
def secure_cookies(monkeypatch: pytest.MonkeyPatch) -> None:
    """COOKIE_SECURE=true (the local stage turns it off for plain HTTP)."""
    from chalicelib.config import Settings

    from_env = Settings.from_env.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(Settings, "from_env",
                        classmethod(lambda cls, env: from_env(cls, {**env, "COOKIE_SECURE": "true"})))


def _cookies(headers) -> list[str]:  # type: ignore[no-untyped-def]
    value = headers.get("Set-Cookie") or []
    return [value] if isinstance(value, str) else list(value)


def _directives(csp: str) -> dict[str, list[str]]:
    parts = [d.split() for d in csp.split(";") if d.strip()]
    return {p[0].lower(): p[1:] for p in parts}


def test_the_route_list_comes_from_the_app() -> None:
    routes = _get_routes()
    assert {"/", "/inicio", "/api/v1/me", "/static/{name}", "/staff/v1/review"} <= set(routes)
    assert all(param in SAMPLES for route in routes for param in re.findall(r"\{(\w+)\}", route))


@pytest.mark.parametrize(("route", "state"), _cases())
def test_every_get_route_sends_the_security_headers_and_safe_cookies(  # type: ignore[no-untyped-def]
        browser: Browser, make_member, gateway, secure_cookies, request, route: str, state: str) -> None:
    headers = {"Accept": "text/html,application/json,application/pdf"}
    if state == "console":  # a signed-in staff user of the console (administrador: every page)
        from tests.staff_support import staff_sign_in

        staff_sign_in(browser, request.getfixturevalue("staff_pool"), "administrador", "administrador")
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in browser.jar.items())
    elif state == "member":
        sign_in(browser, make_member)
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in browser.jar.items())
    elif state == "staff":
        headers.update(STAFF_KEY)
    response = browser.client.http.get(_url(route), headers=headers)
    got = response.headers
    assert response.status_code < 500, (route, state, response.status_code)

    csp = _directives(got["Content-Security-Policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    scripts = csp.get("script-src", csp.get("default-src", []))
    assert scripts and not {"'unsafe-inline'", "'unsafe-eval'", "*"} & set(scripts)
    assert csp["object-src"] == ["'none'"] and "default-src" in csp
    hsts = got["Strict-Transport-Security"]
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31536000 and "includeSubDomains" in hsts
    assert got["X-Content-Type-Options"] == "nosniff"
    assert got["X-Frame-Options"] == "DENY"
    assert got["Referrer-Policy"] in REFERRER_POLICIES
    if route.startswith("/cambiar-clave"):
        assert got["Referrer-Policy"] == "no-referrer"  # the recovery link's page
    if "Permissions-Policy" in got:
        assert got["Permissions-Policy"].strip()
    if not route.startswith("/static/"):  # anything else may show a member's data
        assert "no-store" in got["Cache-Control"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", got["X-Request-Id"])

    for cookie in _cookies(got):
        _assert_safe(cookie)


def _assert_safe(cookie: str) -> None:
    name, _, _ = cookie.partition("=")
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert "httponly" in attributes and "secure" in attributes, cookie
    assert attributes.get("samesite", "").lower() in ("samesite=lax", "samesite=strict"), cookie
    assert attributes.get("path") == "Path=/" and "domain" not in attributes, cookie
    assert name.startswith("__Host-"), cookie


def test_cookies_set_by_the_login_and_logout_posts_are_safe_too(  # type: ignore[no-untyped-def]
        browser: Browser, make_member, secure_cookies, monkeypatch) -> None:
    seen: list[str] = []
    remember = browser._remember

    def spy(response):  # type: ignore[no-untyped-def]
        seen.extend(_cookies(response.headers))
        remember(response)

    monkeypatch.setattr(browser, "_remember", spy)
    sign_in(browser, make_member)
    browser.post("/salir", {}, csrf_from="/inicio")
    names = {cookie.partition("=")[0] for cookie in seen}
    assert {"__Host-sv_csrf", "__Host-sv_ticket", "__Host-sv_session"} <= names
    for cookie in seen:
        _assert_safe(cookie)
