"""The staged login, sessions and logout through the JSON API (SPEC §2.2, §2.4, §6), on moto."""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.dynamo.models import AuditEvent, Member

PASSWORD = "caballo batería grapa correcta"
DOC = "1020304050"
JSON_HEADERS = {"Content-Type": "application/json"}


def post(client, path: str, body: object, **headers: str):  # type: ignore[no-untyped-def]
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.http.post(path, headers={**JSON_HEADERS, **headers}, body=raw)


def identify(client, document: str = DOC, ip: str = "10.0.0.1") -> str:  # type: ignore[no-untyped-def]
    response = post(client, "/api/v1/session/identify", {"document_number": document},
                    **{"X-Forwarded-For": ip})
    assert response.status_code == 200, response.body
    return response.json_body["login_ticket"]


def login(client, password: str = PASSWORD, document: str = DOC, ip: str = "10.0.0.1"):  # type: ignore[no-untyped-def]
    ticket = identify(client, document, ip)
    return post(client, "/api/v1/session", {"login_ticket": ticket, "password": password},
                **{"X-Forwarded-For": ip})


def session_cookie(response) -> str:  # type: ignore[no-untyped-def]
    header = response.headers["Set-Cookie"]
    return header.split(";")[0]


def test_identify_answers_alike_for_members_and_strangers(client, make_member) -> None:
    make_member(DOC, password=PASSWORD)
    known = post(client, "/api/v1/session/identify", {"document_number": DOC})
    unknown = post(client, "/api/v1/session/identify", {"document_number": "9999999999"})
    assert known.status_code == unknown.status_code == 200
    assert set(known.json_body) == set(unknown.json_body) == {"login_ticket", "next"}
    assert len(known.json_body["login_ticket"]) == len(unknown.json_body["login_ticket"])
    assert "Set-Cookie" not in known.headers and "Set-Cookie" not in unknown.headers


@pytest.mark.parametrize("body", [
    {"document_number": "12ab"}, {"document_number": ""}, {"document_number": None},
    {"document_number": 1020304050}, {}, [], "texto", b"\xff\xfe", b"{", {"document_number": "1" * 500},
])
def test_identify_refuses_malformed_input_in_spanish(client, body) -> None:
    response = post(client, "/api/v1/session/identify", body)
    assert response.status_code == 400
    assert response.json_body["error"]["message"]
    assert response.json_body["error"]["code"] == "invalid_request"


def test_login_opens_a_session_with_strict_cookie(client, make_member) -> None:
    make_member(DOC, password=PASSWORD)
    response = login(client)
    assert response.status_code == 201, response.body
    body = response.json_body
    assert body["member"] == {"name": "Ana María Pérez", "last_login_at": None, "last_login_ip": None}
    assert len(body["csrf_token"]) >= 32
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("sv_session=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Secure" not in cookie  # the local stage is plain HTTP; other stages use __Host- + Secure
    me = client.http.get("/api/v1/me", headers={"Cookie": session_cookie(response)})
    assert me.status_code == 200
    assert me.json_body["name"] == "Ana María Pérez"
    assert me.headers["Cache-Control"] == "no-store"


def test_second_login_reports_the_previous_one(client, make_member, clock) -> None:
    make_member(DOC, password=PASSWORD)
    login(client, ip="10.1.1.1")
    clock.advance(hours=2)
    second = login(client, ip="10.2.2.2").json_body["member"]
    assert second["last_login_ip"] == "10.1.1.1"
    assert second["last_login_at"] == "2026-11-23T10:00:00-05:00"


@pytest.mark.parametrize("case", ["wrong_password", "unknown", "inactive", "blocked", "no_password",
                                  "portal_blocked"])
def test_every_failure_answers_the_same(client, make_member, case: str) -> None:
    make_member(DOC, password=PASSWORD)
    make_member("55555555", password=PASSWORD, status="INACTIVO")
    make_member("66666666", password=PASSWORD, status="BLOQUEADO")
    make_member("77777777")  # loaded by the cooperative, never activated
    staff_blocked = make_member("88888888", password=PASSWORD)
    staff_blocked.update(actions=[Member.portal_blocked.set(True)])
    document, password = {
        "wrong_password": (DOC, "otra frase equivocada"),
        "unknown": ("12312312", PASSWORD),
        "inactive": ("55555555", PASSWORD),
        "blocked": ("66666666", PASSWORD),
        "no_password": ("77777777", PASSWORD),
        "portal_blocked": ("88888888", PASSWORD),
    }[case]
    response = login(client, password, document)
    reference = login(client, "otra frase equivocada", "12312399")
    assert response.status_code == reference.status_code == 401
    assert response.json_body == reference.json_body
    assert response.json_body["error"]["code"] == "invalid_credentials"


def test_lockout_after_five_failures_then_unlocks(client, make_member, clock) -> None:
    make_member(DOC, password=PASSWORD)
    for _ in range(5):
        assert login(client, "frase equivocada larga").status_code == 401
    locked = login(client)  # the right password, but locked: same generic answer
    assert locked.status_code == 401
    assert locked.json_body["error"]["code"] == "invalid_credentials"
    clock.advance(seconds=61)
    assert login(client).status_code == 201
    member = Member.get(DOC)
    assert member.failed_consecutive == 0 and member.locked_until is None
    events = [e.event for e in AuditEvent.query(DOC)]
    assert "authn_login_lock" in events and "authn_login_fail_max" in events


def test_lock_doubles_on_each_further_failure(client, make_member, clock) -> None:
    make_member(DOC, password=PASSWORD)
    for _ in range(5):
        login(client, "frase equivocada larga")
    clock.advance(seconds=61)
    login(client, "frase equivocada larga")  # sixth failure: 2 minutes
    clock.advance(seconds=119)
    assert login(client).status_code == 401
    clock.advance(seconds=2)
    assert login(client).status_code == 201


def test_per_ip_throttle(client, make_member, monkeypatch) -> None:
    monkeypatch.setenv("RATE_IDENTIFY", "3")
    for _ in range(3):
        identify(client, ip="10.9.9.9")
    response = post(client, "/api/v1/session/identify", {"document_number": DOC},
                    **{"X-Forwarded-For": "10.9.9.9"})
    assert response.status_code == 429
    assert "demasiados intentos" in response.json_body["error"]["message"]
    identify(client, ip="10.9.9.10")  # another address is not affected


def test_login_ticket_expires(client, make_member, clock) -> None:
    make_member(DOC, password=PASSWORD)
    ticket = identify(client)
    clock.advance(minutes=6)
    response = post(client, "/api/v1/session", {"login_ticket": ticket, "password": PASSWORD})
    assert response.status_code == 401
    assert "documento" in response.json_body["error"]["message"]


@pytest.mark.parametrize("body", [
    {"login_ticket": "forjado.abc", "password": PASSWORD},
    {"login_ticket": None, "password": PASSWORD},
    {"login_ticket": ["x"], "password": PASSWORD},
])
def test_forged_tickets_are_refused(client, body) -> None:
    assert post(client, "/api/v1/session", body).status_code == 401


@pytest.mark.parametrize("password", [None, "", 12345, ["x"]])
def test_missing_password_is_a_clear_400(client, password) -> None:
    response = post(client, "/api/v1/session", {"login_ticket": identify(client), "password": password})
    assert response.status_code == 400
    assert response.json_body["error"]["message"] == "Ingrese su contraseña."


def test_huge_password_is_refused_without_work(client, make_member) -> None:
    make_member(DOC, password=PASSWORD)
    assert login(client, "x" * 5000).status_code == 401


def test_sessions_end_after_idle_and_absolute_timeouts(client, make_member, clock) -> None:
    make_member(DOC, password=PASSWORD)
    cookie = session_cookie(login(client))
    clock.advance(minutes=9)
    assert client.http.get("/api/v1/me", headers={"Cookie": cookie}).status_code == 200
    clock.advance(minutes=9)  # active: the idle timer slid
    assert client.http.get("/api/v1/me", headers={"Cookie": cookie}).status_code == 200
    clock.advance(minutes=10, seconds=1)
    assert client.http.get("/api/v1/me", headers={"Cookie": cookie}).status_code == 401

    cookie = session_cookie(login(client))
    for _ in range(7):
        clock.advance(minutes=8)
        assert client.http.get("/api/v1/me", headers={"Cookie": cookie}).status_code == 200
    clock.advance(minutes=5)  # 61 minutes after login
    assert client.http.get("/api/v1/me", headers={"Cookie": cookie}).status_code == 401


def test_logout_needs_the_csrf_header_and_ends_the_session(client, make_member) -> None:
    make_member(DOC, password=PASSWORD)
    response = login(client)
    cookie, csrf = session_cookie(response), response.json_body["csrf_token"]
    refused = client.http.delete("/api/v1/session", headers={"Cookie": cookie})
    assert refused.status_code == 403
    assert refused.json_body["error"]["code"] == "csrf_failed"
    done = client.http.delete("/api/v1/session", headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    assert done.status_code == 204
    assert "Max-Age=0" in done.headers["Set-Cookie"]
    assert client.http.get("/api/v1/me", headers={"Cookie": cookie}).status_code == 401


def test_cross_site_posts_are_refused(client, make_member) -> None:
    response = post(client, "/api/v1/session/identify", {"document_number": DOC},
                    Origin="https://phishing.example")
    assert response.status_code == 403
    assert response.json_body["error"]["code"] == "cross_site"


def test_me_without_session(client) -> None:
    response = client.http.get("/api/v1/me", headers={"Cookie": "sv_session=inventada"})
    assert response.status_code == 401
    assert response.json_body["error"]["message"] == "Debe iniciar sesión."


def test_terms_acceptance_is_stored_with_version_time_and_ip(client, make_member, clock) -> None:
    make_member(DOC, password=PASSWORD)
    login(client, ip="10.3.3.3")
    member = Member.get(DOC)
    assert member.terms_version == "2026-11"
    assert member.terms_accepted_ip == "10.3.3.3"
    assert member.terms_accepted_at == clock.now
    assert "terms_accepted" in [e.event for e in AuditEvent.query(DOC)]


def test_openapi_document_lists_the_session_calls(client) -> None:
    document = client.http.get("/api/v1/openapi.json").json_body
    for path in ("/api/v1/session/identify", "/api/v1/session", "/api/v1/recovery",
                 "/api/v1/recovery/confirm", "/api/v1/me"):
        assert path in document["paths"]
