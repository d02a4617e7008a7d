"""Staff sign-in on Cognito (moto's cognito-idp, TOTP codes checked): MFA is always demanded."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Forbidden, InvalidCredentials, InvalidInput
from chalicelib.services import staff_auth
from tests.staff_support import NEW_PASSWORD, PASSWORD, totp_code

IP = "203.0.113.9"


def _token(step: staff_auth.SignInStep) -> str:
    assert step.token
    return step.token


def _first_sign_in(ctx, username: str = "tesoreria") -> staff_auth.SignInStep:  # type: ignore[no-untyped-def]
    step = staff_auth.begin(ctx, username, PASSWORD, ip=IP)
    assert step.stage == staff_auth.NEW_PASSWORD
    item = staff_auth.pending(ctx, _token(step))
    step = staff_auth.set_new_password(ctx, item, NEW_PASSWORD, NEW_PASSWORD, ip=IP)
    assert step.stage == staff_auth.MFA_SETUP  # the pool requires MFA: set-up before any session
    item = staff_auth.pending(ctx, _token(step))
    assert item.totp_secret
    assert staff_auth.current(ctx, step.token) is None  # a pending sign-in is no session
    return staff_auth.submit_code(ctx, item, totp_code(item.totp_secret), ip=IP)


def test_first_sign_in_sets_password_and_totp_then_every_sign_in_asks_the_code(staff_pool, ctx) -> None:  # type: ignore[no-untyped-def]
    staff_pool("tesoreria", "tesoreria")
    step = _first_sign_in(ctx)
    assert step.stage == staff_auth.ACTIVE
    session = staff_auth.current(ctx, _token(step))
    assert session.username == "tesoreria" and session.groups == ("tesoreria",)
    assert session.can("tesoreria") and not session.can("administrador")

    again = staff_auth.begin(ctx, "tesoreria", NEW_PASSWORD, ip=IP)
    assert again.stage == staff_auth.MFA_CODE  # the challenge is demanded on every sign-in
    assert staff_auth.current(ctx, again.token) is None
    item = staff_auth.pending(ctx, _token(again))
    with pytest.raises(InvalidInput) as wrong:
        staff_auth.submit_code(ctx, item, "000000" if totp_code() != "000000" else "111111", ip=IP)
    assert wrong.value.field == "code"
    signed = staff_auth.submit_code(ctx, staff_auth.pending(ctx, _token(again)), totp_code(), ip=IP)
    assert signed.stage == staff_auth.ACTIVE and signed.token != again.token  # a fresh id


def test_a_user_without_mfa_gets_no_session_until_totp_is_set_up(staff_pool, ctx) -> None:  # type: ignore[no-untyped-def]
    import boto3

    staff_pool("consulta", "consulta")
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    cognito.admin_set_user_password(UserPoolId=staff_pool.pool_id, Username="consulta",
                                    Password=NEW_PASSWORD, Permanent=True)
    step = staff_auth.begin(ctx, "consulta", NEW_PASSWORD, ip=IP)
    # moto answers a confirmed user without MFA with tokens: the app still gives no session.
    assert step.stage in (staff_auth.TOKEN_SETUP, staff_auth.MFA_SETUP)
    assert staff_auth.current(ctx, step.token) is None
    item = staff_auth.pending(ctx, _token(step))
    done = staff_auth.submit_code(ctx, item, totp_code(item.totp_secret), ip=IP)
    if step.stage == staff_auth.TOKEN_SETUP:
        assert done.stage == "DONE" and done.token is None  # set up: now sign in with the code
        assert staff_auth.begin(ctx, "consulta", NEW_PASSWORD, ip=IP).stage == staff_auth.MFA_CODE


def test_wrong_password_unknown_user_and_no_role_are_refused(staff_pool, ctx) -> None:  # type: ignore[no-untyped-def]
    import boto3

    staff_pool("tesoreria", "tesoreria")
    for username, password in (("tesoreria", "incorrecta-clave-1"), ("nadie", PASSWORD)):
        with pytest.raises(InvalidCredentials) as refused:
            staff_auth.begin(ctx, username, password, ip=IP)
        assert refused.value.message == staff_auth.GENERIC_FAILURE
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    cognito.admin_remove_user_from_group(UserPoolId=staff_pool.pool_id, Username="tesoreria",
                                         GroupName="tesoreria")
    with pytest.raises(Forbidden):
        _first_sign_in(ctx)


def test_staff_sessions_end_after_15_idle_minutes_and_8_hours(staff_pool, ctx, clock) -> None:  # type: ignore[no-untyped-def]
    staff_pool("tesoreria", "tesoreria")
    token = _token(_first_sign_in(ctx))
    clock.advance(minutes=14)
    assert staff_auth.current(ctx, token) is not None
    clock.advance(minutes=15, seconds=1)
    assert staff_auth.current(ctx, token) is None

    token = _token(staff_auth.submit_code(
        ctx, staff_auth.pending(ctx, _token(staff_auth.begin(ctx, "tesoreria", NEW_PASSWORD, ip=IP))),
        totp_code(), ip=IP))
    for _ in range(34):  # 34 × 14 min = 7 h 56 min of activity
        clock.advance(minutes=14)
        assert staff_auth.current(ctx, token) is not None
    clock.advance(minutes=5)
    assert staff_auth.current(ctx, token) is None  # active all along, but 8 h have passed


def test_a_pending_sign_in_expires(staff_pool, ctx, clock) -> None:  # type: ignore[no-untyped-def]
    staff_pool("tesoreria", "tesoreria")
    step = staff_auth.begin(ctx, "tesoreria", PASSWORD, ip=IP)
    clock.advance(seconds=ctx.settings.staff_signin_seconds + 1)
    assert staff_auth.pending(ctx, step.token) is None


def test_sign_in_is_throttled_per_ip(staff_pool, monkeypatch, ctx) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.context import reset_contexts
    from chalicelib.domain.errors import Throttled

    monkeypatch.setenv("RATE_STAFF_LOGIN", "2")
    reset_contexts()
    from chalicelib.context import get_context

    ctx = get_context()
    staff_pool("tesoreria", "tesoreria")
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            staff_auth.begin(ctx, "tesoreria", "incorrecta-clave-1", ip=IP)
    with pytest.raises(Throttled):
        staff_auth.begin(ctx, "tesoreria", PASSWORD, ip=IP)
