"""Staff sessions and pending sign-ins in DynamoDB (the staff console's own table)."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import DoesNotExist

from chalicelib.adapters.dynamo.mapping import absent, entity_from_item, item_from_entity
from chalicelib.adapters.dynamo.models import StaffSession as StaffSessionItem
from chalicelib.adapters.dynamo.repositories import delete_items
from chalicelib.adapters.dynamo.transaction import Tx
from chalicelib.domain.sessions import StaffSession
from chalicelib.services.repositories import StaffSessionRepository


def delete_of_user(username: str) -> int:
    """End every session of a staff user (index by_username, keys only)."""
    return delete_items(list(StaffSessionItem.by_username.query(username)))


class DynamoStaffSessions(StaffSessionRepository):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def get(self, session_hash: str) -> StaffSession | None:
        try:
            item = StaffSessionItem.get(session_hash, consistent_read=True)
        except DoesNotExist:
            return None
        return entity_from_item(StaffSession, item)

    def add(self, session: StaffSession) -> None:
        item = item_from_entity(StaffSessionItem, session, ttl=session.expires_at)
        self.tx.put("staff_session", item, absent(StaffSessionItem))

    def touch(self, session: StaffSession, at: datetime) -> None:
        self.tx.update("staff_session", StaffSessionItem(session_hash=session.session_hash),
                       [StaffSessionItem.last_seen_at.set(at)], StaffSessionItem.session_hash.exists())

    def delete(self, session_hash: str) -> None:
        self.tx.delete("staff_session", StaffSessionItem(session_hash=session_hash))

    def delete_of_user(self, username: str) -> int:
        return delete_of_user(username)
