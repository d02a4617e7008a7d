"""The domain rules of sessions and recovery requests: when each is over, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.sessions import Recovery, session_end

AT = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
IDLE = timedelta(minutes=10)


@pytest.mark.parametrize(("later", "reason"), [
    (timedelta(minutes=9, seconds=59), None),
    (timedelta(minutes=10), "idle"),
    (timedelta(hours=2), "absolute"),  # past both: the absolute end is the reason
])
def test_a_session_ends_idle_or_at_its_absolute_end(later: timedelta, reason: str | None) -> None:
    assert session_end(AT + later, last_seen_at=AT, expires_at=AT + timedelta(hours=1),
                       idle=IDLE) == reason


def test_the_absolute_end_comes_first_even_for_an_active_session() -> None:
    end = AT + timedelta(minutes=5)
    assert session_end(end, last_seen_at=end - timedelta(seconds=1), expires_at=end,
                       idle=IDLE) == "absolute"


@pytest.mark.parametrize(("changes", "later", "reason"), [
    ({}, timedelta(minutes=14), None),
    ({}, timedelta(minutes=15), "expired"),
    ({"attempts": 5}, timedelta(0), "too_many_attempts"),
    ({"used_at": AT, "attempts": 5}, timedelta(minutes=20), "used"),
])
def test_a_recovery_is_stale_once_used_expired_or_out_of_tries(
        changes: dict[str, object], later: timedelta, reason: str | None) -> None:
    recovery = Recovery(token_hash="t", document_number="1020304050", key_hash="k", created_at=AT,
                        expires_at=AT + timedelta(minutes=15), **changes)  # type: ignore[arg-type]
    assert recovery.stale_reason(AT + later, max_attempts=5) == reason
