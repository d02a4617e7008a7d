"""First access and credential recovery by email (SPEC §2.3), through the JSON API, on moto."""

from __future__ import annotations

import pytest

from chalicelib.adapters.dynamo.models import AuditEvent, Member, Recovery
from chalicelib.security.passwords import hash_token
from tests.conftest import recovery_from_email, sent_emails
from tests.integration.test_session_api import DOC, PASSWORD, login, post, session_cookie

NEW_PASSWORD = "mi nueva frase para la cooperativa"


def request(client, document: str = DOC):  # type: ignore[no-untyped-def]
    return post(client, "/api/v1/recovery", {"document_number": document})


def confirm(client, token: str, key: str, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
    return post(client, "/api/v1/recovery/confirm",
                 {"token": token, "temporary_key": key, "new_password": password})


def test_same_answer_for_everyone_and_mail_only_for_active_members(client, make_member) -> None:
    make_member(DOC)
    make_member("55555555", status="INACTIVO")
    make_member("66666666", email=None)
    answers = [request(client, d) for d in (DOC, "55555555", "66666666", "12121212")]
    assert {a.status_code for a in answers} == {202}
    assert len({a.body for a in answers}) == 1
    assert "Si el documento está registrado" in answers[0].json_body["message"]
    emails = sent_emails()
    assert len(emails) == 1
    assert emails[0].destinations["ToAddresses"] == ["ana.perez@correo.example"]


def test_recovery_email_has_key_link_and_policy(client, make_member) -> None:
    make_member(DOC)
    request(client)
    email = sent_emails()[0]
    token, key = recovery_from_email(email)
    assert email.subject.startswith("Clave temporal")
    assert f"http://localhost:8000/cambiar-clave?token={token}" in email.body
    assert len(key) == 10 and len(token) >= 43  # 256 random bits
    assert "Política de contraseñas" in email.body and "12" in email.body
    stored = Recovery.get(hash_token(token))
    assert stored.key_hash != key and key not in stored.key_hash and token not in stored.token_hash


def test_link_is_built_from_configuration_not_the_host_header(client, make_member) -> None:
    make_member(DOC)
    post(client, "/api/v1/recovery", {"document_number": DOC}, Host="evil.example",
         **{"X-Forwarded-Host": "evil.example"})
    assert "evil.example" not in sent_emails()[0].body


def test_first_access_sets_the_password_and_notifies(client, make_member) -> None:
    make_member(DOC)
    request(client)
    token, key = recovery_from_email(sent_emails()[0])
    assert confirm(client, token, key.lower()).status_code == 204  # keys are case-insensitive
    assert login(client, NEW_PASSWORD).status_code == 201
    notice = sent_emails()[-1]
    assert notice.subject.startswith("Su contraseña fue cambiada")
    assert NEW_PASSWORD not in notice.body
    assert "authn_password_change" in [e.event for e in AuditEvent.query(DOC)]


def test_key_and_link_are_single_use(client, make_member) -> None:
    make_member(DOC)
    request(client)
    token, key = recovery_from_email(sent_emails()[0])
    assert confirm(client, token, key).status_code == 204
    again = confirm(client, token, key, "otra frase distinta y larga")
    assert again.status_code == 400
    assert again.json_body["error"]["code"] == "invalid_recovery"


def test_expires_after_fifteen_minutes(client, make_member, clock) -> None:
    make_member(DOC)
    request(client)
    token, key = recovery_from_email(sent_emails()[0])
    clock.advance(minutes=15, seconds=1)
    response = confirm(client, token, key)
    assert response.status_code == 400
    assert response.json_body["error"]["code"] == "invalid_recovery"


def test_five_wrong_keys_void_the_request(client, make_member) -> None:
    make_member(DOC)
    request(client)
    token, key = recovery_from_email(sent_emails()[0])
    messages = [confirm(client, token, "ZZZZZZZZZZ").json_body["error"]["message"] for _ in range(5)]
    assert messages[0] == "La clave temporal no es correcta. Le quedan 4 intentos."
    assert "no son válidos" in messages[-1]
    assert confirm(client, token, key).json_body["error"]["code"] == "invalid_recovery"


def test_only_the_newest_request_is_valid(client, make_member, clock) -> None:
    make_member(DOC)
    request(client)
    old_token, old_key = recovery_from_email(sent_emails()[0])
    clock.advance(seconds=30)
    request(client)
    new_token, new_key = recovery_from_email(sent_emails()[1])
    assert confirm(client, old_token, old_key).status_code == 400
    assert confirm(client, new_token, new_key).status_code == 204


def test_weak_password_is_explained_and_the_link_stays_usable(client, make_member) -> None:
    make_member(DOC)
    request(client)
    token, key = recovery_from_email(sent_emails()[0])
    weak = confirm(client, token, key, f"clave{DOC}")
    assert weak.status_code == 400
    error = weak.json_body["error"]
    assert error["code"] == "weak_password"
    assert "No puede contener su número de documento." in error["reasons"]
    assert confirm(client, token, key).status_code == 204


def test_last_five_passwords_cannot_return(client, make_member, clock) -> None:
    make_member(DOC, password=PASSWORD)
    request(client)
    token, key = recovery_from_email(sent_emails()[-1])
    reused = confirm(client, token, key, PASSWORD)
    assert reused.status_code == 400
    assert "últimas 5" in reused.json_body["error"]["message"]


def test_password_change_ends_every_session_and_unlocks(client, make_member) -> None:
    make_member(DOC, password=PASSWORD)
    cookies = [session_cookie(login(client)) for _ in range(2)]
    for _ in range(5):
        login(client, "frase equivocada larga")
    assert Member.get(DOC).locked_until is not None
    request(client)  # recovery works while locked
    token, key = recovery_from_email(sent_emails()[-1])
    assert confirm(client, token, key).status_code == 204
    for cookie in cookies:
        assert client.http.get("/api/v1/me", headers={"Cookie": cookie}).status_code == 401
    assert login(client, NEW_PASSWORD).status_code == 201  # no auto-login; the lock is gone


def test_per_document_limit_stops_inbox_flooding_silently(client, make_member) -> None:
    make_member(DOC)
    answers = [request(client) for _ in range(5)]
    assert {a.status_code for a in answers} == {202}
    assert len(sent_emails()) == 3


@pytest.mark.parametrize("body", [
    {}, {"token": None, "temporary_key": "A", "new_password": NEW_PASSWORD},
    {"token": "corto", "temporary_key": "A", "new_password": NEW_PASSWORD},
    {"token": "x" * 43, "temporary_key": None, "new_password": NEW_PASSWORD},
    {"token": "x" * 43, "temporary_key": "ABC", "new_password": None},
    {"token": "x" * 43, "temporary_key": "ABC", "new_password": 123},
    "no es json", [1, 2],
])
def test_malformed_confirmations_are_clear_400s(client, body) -> None:
    response = post(client, "/api/v1/recovery/confirm", body)
    assert response.status_code == 400
    assert response.json_body["error"]["code"] in {"invalid_recovery", "invalid_request", "weak_password"}
    assert response.json_body["error"]["message"]
