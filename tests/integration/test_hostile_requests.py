"""Hostile requests that once answered a 500, Chalice's English, or changed state cross-site:
recovery links with a forged token, JSON nested 5,000 deep, Chalice's own refusals, and logout.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest

from tests.integration.test_observability import log_lines, sign_in
from tests.page_support import Browser

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DEEP_ARRAY = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a": ' * 5000 + b"1" + b"}" * 5000
#: JSON routes that read their body, and the state that gets them that far.
JSON_ROUTES = [
    ("POST", "/api/v1/session/identify", "anonymous"), ("POST", "/api/v1/session", "anonymous"),
    ("POST", "/api/v1/recovery", "anonymous"), ("POST", "/api/v1/recovery/confirm", "anonymous"),
    ("POST", "/api/v1/payments", "member"), ("POST", "/webhooks/pse", "anonymous"),
    ("POST", "/staff/v1/exports", "staff"),
    ("POST", "/staff/v1/members/1020304050/block", "staff"),
    ("POST", "/staff/v1/review/pago-inexistente/resolve", "staff"),
]


def _signed_in(browser: Browser, make_member) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    sign_in(browser, make_member)
    page = browser.get("/inicio").body.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in browser.jar.items())}, csrf


def _spanish_error(response, status: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.body[:300]
    body = json.loads(response.body)
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    assert "Code" not in body and "internal server error" not in response.body.decode().lower()
    return body["error"]


# --- the recovery link's token: its exact shape before it goes near a header -------------------

@pytest.mark.parametrize("token", [
    "t" * 42 + "\r\nSet-Cookie: sv_session=atacante", "t" * 43 + "; Domain=atacante.example",
    "t" * 43 + ",x", "t" * 42, "t" * 44, "t" * 42 + "é", "", "t" * 300,
])
def test_a_recovery_link_with_a_forged_token_is_refused_before_any_cookie(  # type: ignore[no-untyped-def]
        browser: Browser, token: str) -> None:
    response = browser.client.http.get(f"/cambiar-clave?token={quote(token)}")
    assert response.status_code == 400
    assert "El enlace no es válido" in response.body.decode()
    cookies = response.headers.get("Set-Cookie") or []
    assert not any("sv_recovery" in c for c in ([cookies] if isinstance(cookies, str) else cookies))


def test_a_well_formed_token_still_moves_into_the_cookie(browser: Browser) -> None:
    response = browser.client.http.get("/cambiar-clave?token=" + "A1_-" * 10 + "xyz")
    assert response.status_code == 303 and response.headers["Location"] == "/cambiar-clave"
    assert "sv_recovery=" + "A1_-" * 10 + "xyz;" in str(response.headers["Set-Cookie"])


# --- JSON: bounded before any recursion -------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "state"), JSON_ROUTES)
@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_json_nested_5000_deep_is_a_spanish_400(  # type: ignore[no-untyped-def]
        browser: Browser, make_member, gateway, method: str, path: str, state: str, body: bytes) -> None:
    headers = dict(JSON)
    if state == "member":
        cookie, csrf = _signed_in(browser, make_member)
        headers.update({**cookie, "X-CSRF-Token": csrf})
    elif state == "staff":
        headers["X-Api-Key"] = "local-staff-key"
    error = _spanish_error(browser.client.http.request(method, path, headers=headers, body=body), 400)
    assert error["code"] in ("invalid_request", "invalid_event")
    if path != "/webhooks/pse":
        assert "niveles" in error["message"]


def test_json_nesting_within_the_bound_is_parsed() -> None:
    from chalicelib.security import bounded_json

    assert bounded_json.depth('{"a": [1, {"b": "[[[[{{{{"}], "c": "\\\\\\"]"}') == 3
    nested = "[" * bounded_json.MAX_DEPTH + "]" * bounded_json.MAX_DEPTH
    assert bounded_json.loads(nested, max_bytes=1000) == json.loads(nested)
    with pytest.raises(bounded_json.TooDeep):
        bounded_json.loads("[" + nested + "]", max_bytes=1000)
    with pytest.raises(bounded_json.TooLarge):
        bounded_json.loads(nested, max_bytes=10)


# --- Chalice's own refusals: our shape, in Spanish --------------------------------------------

def test_a_binary_answer_without_a_matching_accept_is_refused_in_spanish(  # type: ignore[no-untyped-def]
        browser: Browser, make_member, gateway, make_obligation, ctx) -> None:
    from tests.payment_support import start

    cookie, _ = _signed_in(browser, make_member)
    make_obligation()
    started = start(ctx)
    response = browser.client.http.get(f"/pagos/{started.id}/comprobante.pdf",
                                       headers={**cookie, "Accept": "text/html"})
    _spanish_error(response, 400)


@pytest.mark.parametrize(("raised", "status"), [("BadRequestError", 400), ("NotFoundError", 404),
                                                ("RuntimeError", 500)])
def test_an_error_chalice_answers_itself_is_in_spanish(  # type: ignore[no-untyped-def]
        client, monkeypatch: pytest.MonkeyPatch, raised: str, status: int) -> None:
    import chalice

    from chalicelib.web import static

    error = getattr(chalice, raised, None) or RuntimeError

    def broken() -> None:
        raise error("something went wrong")

    monkeypatch.setattr(static, "openapi", broken)
    _spanish_error(client.http.get("/api/v1/openapi.json"), status)


def test_unsupported_media_type_and_method_are_in_spanish(client) -> None:  # type: ignore[no-untyped-def]
    assert _spanish_error(client.http.post("/webhooks/pse", headers={"Content-Type": "text/xml"},
                                           body=b"<x/>"), 415)["code"] == "unsupported_media_type"
    assert _spanish_error(client.http.request("PUT", "/api/v1/me", headers=JSON, body=b"{}"),
                          405)["code"] == "method_not_allowed"


# --- logout: a state change like any other ----------------------------------------------------

@pytest.mark.parametrize("cross_site", [{"Sec-Fetch-Site": "cross-site"},
                                        {"Origin": "https://atacante.example"}])
def test_a_cross_site_logout_changes_nothing(  # type: ignore[no-untyped-def]
        browser: Browser, make_member, cross_site: dict[str, str]) -> None:
    cookie, _ = _signed_in(browser, make_member)
    response = browser.client.http.post("/salir", headers={**FORM, **cookie, **cross_site}, body=b"")
    assert response.status_code == 403
    assert "Set-Cookie" not in response.headers and "Clear-Site-Data" not in response.headers
    assert browser.client.http.get("/inicio", headers=cookie).status_code == 200


def test_a_same_origin_logout_from_a_stale_page_still_signs_out(  # type: ignore[no-untyped-def]
        browser: Browser, make_member) -> None:
    cookie, _ = _signed_in(browser, make_member)
    response = browser.client.http.post("/salir", headers={**FORM, **cookie, "Sec-Fetch-Site": "same-origin"},
                                        body=b"csrf_token=de-una-pagina-vieja")
    assert response.status_code == 303 and response.headers["Location"] == "/salida"
    assert "Max-Age=0" in str(response.headers["Set-Cookie"])
    assert browser.client.http.get("/inicio", headers=cookie).status_code == 303  # ended server-side


def test_a_cross_site_api_logout_changes_nothing_even_with_the_token(  # type: ignore[no-untyped-def]
        browser: Browser, make_member) -> None:
    cookie, csrf = _signed_in(browser, make_member)
    refused = browser.client.http.delete("/api/v1/session", headers={
        **cookie, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"})
    assert _spanish_error(refused, 403)["code"] == "cross_site"
    assert "Set-Cookie" not in refused.headers
    assert browser.client.http.get("/api/v1/me", headers=cookie).status_code == 200


def test_a_header_that_bypassed_the_builders_is_never_sent(  # type: ignore[no-untyped-def]
        client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from chalice import Response

    from chalicelib.web import static

    monkeypatch.setattr(static, "openapi", lambda: Response(body="{}", headers={
        "Set-Cookie": ["sv_session=x; Path=/", "sv_session=atacante; Domain=atacante.example"]}))
    response = client.http.get("/api/v1/openapi.json")
    _spanish_error(response, 500)
    assert "atacante" not in str(response.headers)
    assert "unsafe_header" in {line["event"] for line in log_lines(caplog)}
