"""Lockout rules, document numbers and signed values, without AWS."""

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.lockout import FailureState, LockoutPolicy
from chalicelib.domain.members import mask_document, parse_document_number
from chalicelib.security.signing import BadSignature, Signer

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = LockoutPolicy(threshold=5, base=timedelta(seconds=60), maximum=timedelta(minutes=15),
                       max_per_hour=100)
NO_FAILURES = FailureState()  # frozen: safe to share as a default


def fail(times: int, state: FailureState = NO_FAILURES, at: datetime = T0) -> FailureState:
    for _ in range(times):
        state = POLICY.after_failure(state, at)
    return state


def test_four_failures_do_not_lock() -> None:
    assert not fail(4).is_locked(T0)


def test_fifth_failure_locks_for_the_base_time() -> None:
    state = fail(5)
    assert state.locked_until == T0 + timedelta(seconds=60)
    assert state.is_locked(T0 + timedelta(seconds=59))
    assert not state.is_locked(T0 + timedelta(seconds=60))


def test_lock_doubles_and_is_capped_at_fifteen_minutes() -> None:
    durations = []
    state = FailureState()
    at = T0
    for _ in range(12):
        state = POLICY.after_failure(state, at)
        if state.locked_until:
            durations.append(state.locked_until - at)
            at = state.locked_until  # the next try waits for the lock to pass
    assert durations[:5] == [timedelta(seconds=s) for s in (60, 120, 240, 480, 900)]
    assert max(durations) == timedelta(minutes=15)


def test_success_resets() -> None:
    assert POLICY.after_success() == FailureState()


def test_hourly_cap_locks_until_the_hour_ends() -> None:
    lenient = LockoutPolicy(threshold=1000, max_per_hour=100)
    state = FailureState()
    for i in range(100):
        state = lenient.after_failure(state, T0 + timedelta(seconds=i))
    assert state.locked_until == T0 + timedelta(hours=1)


@pytest.mark.parametrize("raw,expected", [("1020304050", "1020304050"), (" 10.203.040 ", "10203040"),
                                          ("12345", "12345"), ("1" * 15, "1" * 15)])
def test_document_numbers(raw: str, expected: str) -> None:
    assert parse_document_number(raw) == expected


@pytest.mark.parametrize("raw", ["", "1234", "1" * 16, "12a45", None, 12345, "١٢٣٤٥"])
def test_bad_document_numbers_say_why_in_spanish(raw: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_document_number(raw)
    assert "documento" in caught.value.message


def test_mask_document_keeps_three_digits() -> None:
    assert mask_document("1020304050") == "*******050"


def test_signed_values_expire_and_resist_tampering() -> None:
    signer = Signer("key", "login-ticket")
    token = signer.sign({"d": "123456"}, expires_at=1000)
    assert signer.unsign(token, now=999)["d"] == "123456"
    with pytest.raises(BadSignature):
        signer.unsign(token, now=1000)
    with pytest.raises(BadSignature):
        Signer("key", "other-purpose").unsign(token, now=1)
    body, mac = token.split(".")
    with pytest.raises(BadSignature):
        signer.unsign(body[:-2] + "AA." + mac, now=1)
    for junk in ("", "a.b.c", None, "x" * 5000, "....", "%%%.%%%", "abc.\u00e1\u00e9", "\u00e1.b"):
        with pytest.raises(BadSignature):
            signer.unsign(junk, now=1)
