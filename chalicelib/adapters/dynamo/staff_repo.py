"""DynamoDB reads and writes of staff sessions (the staff console's own table)."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo.models import StaffSession
from chalicelib.adapters.dynamo.repositories import delete_items


def get(session_hash: str) -> StaffSession | None:
    try:
        return StaffSession.get(session_hash, consistent_read=True)
    except DoesNotExist:
        return None


def delete(session_hash: str) -> None:
    StaffSession(session_hash=session_hash).delete()


def touch(session: StaffSession, now: datetime) -> None:
    session.update(actions=[StaffSession.last_seen_at.set(now)])


def delete_of_user(username: str) -> int:
    """End every session of a staff user (index by_username, keys only)."""
    return delete_items(list(StaffSession.by_username.query(username)))
