"""Members' sessions, recovery requests and rate counters in DynamoDB.

Sessions and recoveries stage their writes in the unit of work's transaction; the two conditional
counters (a recovery's tries, a rate window's hits) and ending all of a member's sessions write at
once, as their ports explain.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.mapping import absent, entity_from_item, item_from_entity
from chalicelib.adapters.dynamo.repositories import aws_error_code, delete_member_sessions
from chalicelib.adapters.dynamo.transaction import Tx
from chalicelib.domain.sessions import Recovery, Session
from chalicelib.services.repositories import RateCounters, RecoveryRepository, SessionRepository


def condition_failed(exc: UpdateError) -> bool:
    return aws_error_code(exc) == "ConditionalCheckFailedException"


class DynamoSessions(SessionRepository):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def get(self, session_hash: str) -> Session | None:
        try:
            return entity_from_item(Session, models.Session.get(session_hash))
        except DoesNotExist:
            return None

    def add(self, session: Session) -> None:
        item = item_from_entity(models.Session, session, ttl=session.expires_at)
        self.tx.put("session", item, absent(models.Session))

    def touch(self, session: Session, at: datetime) -> None:
        self.tx.update("session", models.Session(session_hash=session.session_hash),
                       [models.Session.last_seen_at.set(at)], models.Session.session_hash.exists())

    def delete(self, session_hash: str) -> None:
        self.tx.delete("session", models.Session(session_hash=session_hash))

    def delete_of_member(self, document_number: str, *, keep: str | None = None) -> int:
        return delete_member_sessions(document_number, keep=keep)


class DynamoRecoveries(RecoveryRepository):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def get(self, token_hash: str) -> Recovery | None:
        try:
            return entity_from_item(Recovery, models.Recovery.get(token_hash, consistent_read=True))
        except DoesNotExist:
            return None

    def add(self, recovery: Recovery) -> None:
        item = item_from_entity(models.Recovery, recovery, ttl=recovery.expires_at)
        self.tx.put("recovery", item, absent(models.Recovery))

    def mark_used(self, recovery: Recovery, at: datetime) -> None:
        self.tx.update("recovery", models.Recovery(token_hash=recovery.token_hash),
                       [models.Recovery.used_at.set(at)],
                       models.Recovery.token_hash.exists() & models.Recovery.used_at.does_not_exist())

    def count_attempt(self, recovery: Recovery, max_attempts: int) -> int:
        item = models.Recovery(token_hash=recovery.token_hash)
        try:
            item.update(actions=[models.Recovery.attempts.add(1)],
                        condition=models.Recovery.attempts < max_attempts)
        except UpdateError as exc:
            if condition_failed(exc):
                return 0
            raise
        recovery.attempts = int(item.attempts)
        return max(0, max_attempts - recovery.attempts)


class DynamoRateCounters(RateCounters):
    def hit(self, key: str, *, limit: int, expires_at: datetime) -> bool:
        counter = models.RateCounter(counter_key=key)
        try:
            counter.update(
                actions=[models.RateCounter.hits.add(1), models.RateCounter.ttl.set(expires_at)],
                condition=models.RateCounter.hits.does_not_exist() | (models.RateCounter.hits < limit),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True
