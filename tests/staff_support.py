"""Staff console fixtures: the staff user pool in moto (TOTP codes checked), signed-in staff."""

from __future__ import annotations

import re

import pytest

from devtools.staff_pool import MOTO_TOTP_ENV, MOTO_TOTP_SECRET, create_pool, create_staff_user

PASSWORD = "Temporal-del-personal-1"
NEW_PASSWORD = "Nueva clave del personal 2026"


#: moto checks a code against the current 30-second step only: a code made in the last seconds
#: of a step may be checked in the next one, so those seconds are waited out first.
TOTP_STEP_SECONDS, TOTP_MARGIN_SECONDS = 30, 4


def totp_code(secret: str = MOTO_TOTP_SECRET) -> str:
    """The current code, computed as moto checks it (RFC 6238 through ``cryptography``), with
    enough of its step left for the request that carries it."""
    import time

    from moto.cognitoidp.utils import cognito_totp

    left = TOTP_STEP_SECONDS - time.time() % TOTP_STEP_SECONDS
    if left < TOTP_MARGIN_SECONDS:
        time.sleep(left + 0.05)
    return cognito_totp(secret).generate(int(time.time())).decode()


@pytest.fixture
def staff_pool(aws: None, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fresh pool (MFA required) with the app's settings pointing at it; returns a user factory."""
    from chalicelib.context import reset_contexts

    for name, value in MOTO_TOTP_ENV.items():
        monkeypatch.setenv(name, value)
    pool_id, client_id = create_pool("us-east-1")
    monkeypatch.setenv("STAFF_USER_POOL_ID", pool_id)
    monkeypatch.setenv("STAFF_CLIENT_ID", client_id)
    reset_contexts()

    def make(username: str = "tesoreria", role: str = "tesoreria", password: str = PASSWORD) -> str:
        create_staff_user("us-east-1", pool_id, username, role, password)
        return username

    make.pool_id = pool_id  # type: ignore[attr-defined]
    return make


def _csrf(body: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)


def staff_sign_in(browser, staff_pool, username: str = "tesoreria", role: str = "tesoreria"):  # type: ignore[no-untyped-def]
    """First sign-in through the pages: password, new password, TOTP set-up; then a real sign-in."""
    staff_pool(username, role)
    page = browser.get("/backoffice/ingresar").body.decode()
    browser.post("/backoffice/ingresar", {"csrf_token": _csrf(page), "username": username,
                                          "password": PASSWORD})
    page = browser.get("/backoffice/ingresar/nueva-clave").body.decode()
    browser.post("/backoffice/ingresar/nueva-clave", {"csrf_token": _csrf(page),
                                                      "new_password": NEW_PASSWORD,
                                                      "confirmation": NEW_PASSWORD})
    page = browser.get("/backoffice/ingresar/autenticador").body.decode()
    response = browser.post("/backoffice/ingresar/autenticador",
                            {"csrf_token": _csrf(page), "code": totp_code()})
    assert response.status_code == 303, response.body
    return response
