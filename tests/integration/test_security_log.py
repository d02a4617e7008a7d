"""Security events in the logs (SV-LOG-01): OWASP logging-vocabulary names, never a secret.

Walks login failures, lockout, recovery, password change, login, CSRF refusal, logout and use of the
ended session through the JSON API, then reads every log line written meanwhile.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import recovery_from_email, sent_emails
from tests.integration.test_recovery import NEW_PASSWORD, confirm, request
from tests.integration.test_session_api import DOC, PASSWORD, identify, login, post, session_cookie

#: OWASP Logging Vocabulary Cheat Sheet (cheatsheetseries.owasp.org), every event type it names.
OWASP_VOCABULARY = frozenset({
    "authn_login_success", "authn_login_successafterfail", "authn_login_fail", "authn_login_fail_max",
    "authn_login_lock", "authn_password_change", "authn_password_change_fail", "authn_impossible_travel",
    "authn_token_created", "authn_token_revoked", "authn_token_reuse", "authn_token_delete",
    "authz_fail", "authz_change", "authz_admin", "crypt_decrypt_fail", "crypt_encrypt_fail",
    "excess_rate_limit_exceeded", "upload_complete", "upload_stored", "upload_validation", "upload_delete",
    "input_validation_fail", "input_validation_discrete_fail", "malicious_excess_404",
    "malicious_extraneous", "malicious_attack_tool", "malicious_cors", "malicious_direct_reference",
    "privilege_permissions_changed", "sensitive_create", "sensitive_read", "sensitive_update",
    "sensitive_delete", "sequence_fail", "session_created", "session_renewed", "session_expired",
    "session_use_after_expire", "sys_startup", "sys_shutdown", "sys_restart", "sys_crash",
    "sys_monitor_disabled", "sys_monitor_enabled", "user_created", "user_updated", "user_archived",
    "user_deleted",
})
#: Named by ../shared/reference/security.md §1.8 with the vocabulary (a CSRF refusal).
PROJECT_SECURITY_EVENTS = frozenset({"malicious_csrf"})
#: Not security events: the access line, the terms acceptance record, a recovery nobody gets.
APPLICATION_EVENTS = frozenset({"http_request", "terms_accepted", "recovery_not_sent"})
SECURITY_PREFIXES = ("authn_", "authz_", "session_", "excess_", "input_", "malicious_", "sequence_",
                     "sensitive_", "user_", "sys_", "crypt_", "upload_", "privilege_")

STRANGER = "1122334455"
WRONG = "frase equivocada larga"
WEAK = "corta"
ATTACKER_IP = "10.9.9.9"
RATE_RECOVERY = 10  # RATE_RECOVERY's default: recovery calls per IP per window


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def _events(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_security_events_use_the_vocabulary_and_never_carry_secrets(  # type: ignore[no-untyped-def]
        client, make_member, clock, caplog) -> None:
    caplog.set_level(logging.INFO)
    make_member(DOC, password=PASSWORD)
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, WRONG, DOC, STRANGER]

    assert login(client, WRONG, STRANGER).status_code == 401                 # unknown document
    for _ in range(5):
        assert login(client, WRONG).status_code == 401                       # ... the 5th locks
    assert login(client).status_code == 401                                  # locked
    assert request(client).status_code == 202                                # recovery
    assert request(client, STRANGER).status_code == 202
    token, key = recovery_from_email(sent_emails()[0])
    secrets += [token, key]
    assert confirm(client, token, "ABCDEFGHJK").status_code == 400            # wrong key
    assert confirm(client, token, key, WEAK).status_code == 400               # weak password
    assert confirm(client, token, key).status_code == 204                     # changed
    assert confirm(client, token, key).status_code == 400                     # used link
    ticket = identify(client)
    secrets.append(ticket)
    signed_in = login(client, NEW_PASSWORD)
    assert signed_in.status_code == 201
    cookie = session_cookie(signed_in)
    csrf = signed_in.json_body["csrf_token"]
    secrets += [cookie.split("=", 1)[1], csrf]
    assert client.http.delete("/api/v1/session", headers={"Cookie": cookie}).status_code == 403
    out = client.http.delete("/api/v1/session", headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert client.http.get("/api/v1/me", headers={"Cookie": cookie}).status_code == 401
    statuses = [post(client, "/api/v1/recovery", {"document_number": STRANGER},
                     **{"X-Forwarded-For": ATTACKER_IP}).status_code for _ in range(RATE_RECOVERY + 1)]
    assert statuses[-1] == 429

    lines = _lines(caplog)
    events = _events(lines)
    names = [e["event"] for e in events]
    assert set(names) <= OWASP_VOCABULARY | PROJECT_SECURITY_EVENTS | APPLICATION_EVENTS, (
        sorted(set(names) - OWASP_VOCABULARY - PROJECT_SECURITY_EVENTS - APPLICATION_EVENTS))
    assert not [n for n in names if n.startswith(SECURITY_PREFIXES) and n not in OWASP_VOCABULARY
                and n not in PROJECT_SECURITY_EVENTS]
    assert {
        "authn_login_fail", "authn_login_lock", "authn_login_fail_max", "authn_token_created",
        "authn_password_change_fail", "authn_password_change", "authn_token_reuse", "authn_login_success",
        "session_created", "session_expired", "session_use_after_expire", "malicious_csrf",
        "excess_rate_limit_exceeded",
    } <= set(names)
    ended = {e.get("reason") for e in events if e["event"] == "session_expired"}
    assert {"password_change", "logout"} <= ended
    leaked = [(secret, line) for secret in secrets for line in lines if secret in line]
    assert not leaked
    assert all(e.get("correlation_id") for e in events)  # every line can be traced to its request


def test_the_login_and_password_pages_log_alike(browser, make_member, caplog) -> None:  # type: ignore[no-untyped-def]
    """The form flows share the services: a wrong password and a refused CSRF token on the pages."""
    caplog.set_level(logging.INFO)
    make_member(DOC, password=PASSWORD)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": WRONG}, csrf_from="/ingresar/clave")
    browser.post("/ingresar", {"document_number": DOC})
    events = _events(_lines(caplog))
    assert {"authn_login_fail", "malicious_csrf"} <= {e["event"] for e in events}
    assert not [line for line in _lines(caplog) if DOC in line or WRONG in line]
