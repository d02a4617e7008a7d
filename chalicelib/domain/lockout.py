"""Progressive lockout of an account after failed passwords (OWASP Authentication CS, Cognito-like).

After ``threshold`` consecutive failures the account locks for ``base``, doubling with every
further failure up to ``maximum``. Attempts while locked are not verified and do not extend the
lock. Independently, no more than ``max_per_hour`` failures are verified in a rolling hour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.domain.members import Member

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class FailureState:
    consecutive: int = 0
    locked_until: datetime | None = None
    window_start: datetime | None = None
    window_failures: int = 0

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = 5
    base: timedelta = timedelta(seconds=60)
    maximum: timedelta = timedelta(minutes=15)
    max_per_hour: int = 100

    def after_failure(self, state: FailureState, now: datetime) -> FailureState:
        consecutive = state.consecutive + 1
        if state.window_start is None or now - state.window_start >= HOUR:
            window_start, window_failures = now, 1
        else:
            window_start, window_failures = state.window_start, state.window_failures + 1
        locked_until = state.locked_until
        if consecutive >= self.threshold:
            duration = min(self.base * (2 ** (consecutive - self.threshold)), self.maximum)
            locked_until = now + duration
        if window_failures >= self.max_per_hour:
            locked_until = max(locked_until or now, window_start + HOUR)
        return replace(
            state,
            consecutive=consecutive,
            locked_until=locked_until,
            window_start=window_start,
            window_failures=window_failures,
        )

    @staticmethod
    def after_success() -> FailureState:
        return FailureState()


def failure_state(member: Member) -> FailureState:
    """The member's failed-password record, as the policy reads it."""
    return FailureState(consecutive=member.failed_consecutive or 0, locked_until=member.locked_until,
                        window_start=member.failure_window_start,
                        window_failures=member.failure_window_count or 0)


def record_failure_state(member: Member, state: FailureState) -> None:
    """Store ``state`` (what the policy decided after a failure) on the member."""
    member.failed_consecutive = state.consecutive
    member.locked_until = state.locked_until
    member.failure_window_start = state.window_start
    member.failure_window_count = state.window_failures


def clear_failures(member: Member) -> None:
    """A correct password ends the consecutive count and any lock; the hourly window stays."""
    member.failed_consecutive = 0
    member.locked_until = None
