"""Server-side sessions of members and staff, and credential-recovery requests.

Each is keyed by the SHA-256 of a random secret the browser (or the email) holds: the store never
sees the secret itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


def session_end(now: datetime, *, last_seen_at: datetime, expires_at: datetime,
                idle: timedelta) -> str | None:
    """Why a session is over at ``now`` ("absolute" or "idle"), None while it is live."""
    if now >= expires_at:
        return "absolute"
    if now >= last_seen_at + idle:
        return "idle"
    return None


@dataclass
class Session:
    """A signed-in member's browser or API client."""

    session_hash: str
    document_number: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute end
    ip: str | None = None

    def end_reason(self, now: datetime, idle: timedelta) -> str | None:
        return session_end(now, last_seen_at=self.last_seen_at, expires_at=self.expires_at, idle=idle)


@dataclass
class Recovery:
    """A credential-recovery request: the link token and the temporary key stored hashed."""

    token_hash: str
    document_number: str
    key_hash: str
    created_at: datetime
    expires_at: datetime
    attempts: int = 0  # wrong temporary keys so far
    used_at: datetime | None = None

    def stale_reason(self, now: datetime, max_attempts: int) -> str | None:
        """Why the request can no longer change a password, None while it can."""
        if self.used_at is not None:
            return "used"
        if now >= self.expires_at:
            return "expired"
        if self.attempts >= max_attempts:
            return "too_many_attempts"
        return None


@dataclass
class StaffSession:
    """A staff browser. ``stage`` is ``ACTIVE`` for a signed-in session, else the Cognito challenge
    the sign-in waits for: a pending sign-in opens no page."""

    session_hash: str
    username: str
    stage: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute end (a pending sign-in: a few minutes)
    groups: list[str] | None = None
    ip: str | None = None
    challenge_session: str | None = None  # Cognito's Session while a challenge is open
    access_token: str | None = None  # only while setting up TOTP without a challenge
    totp_secret: str | None = None  # only while setting up TOTP (shown to the user)

    def end_reason(self, now: datetime, idle: timedelta) -> str | None:
        return session_end(now, last_seen_at=self.last_seen_at, expires_at=self.expires_at, idle=idle)
