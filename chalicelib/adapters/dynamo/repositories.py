"""Reads and writes the services need, each in as few DynamoDB round trips as the rule allows.

Writes that must happen together go in one ``TransactWriteItems`` (one round trip, all or nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from botocore.exceptions import ConnectionError as NetworkError
from botocore.exceptions import HTTPClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamo.models import AuditEvent, Member, RateCounter, Recovery, Session
from chalicelib.config import get_settings
from chalicelib.domain.errors import Conflict


class ConcurrentUpdate(Conflict):
    """A conditional write lost a race; re-read and decide again."""


#: botocore's "no answer": read and connect timeouts, refused or dropped connections.
_NO_ANSWER = (HTTPClientError, NetworkError)
_TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException",
})


def aws_error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore or PynamoDB error (PynamoDB's ``cause_response_code``),
    None when no answer came: PynamoDB's own property raises AttributeError on a timeout."""
    cause = getattr(exc, "cause", None) or exc
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def is_transient(exc: BaseException) -> bool:
    """DynamoDB (or another AWS service) was busy or did not answer after botocore's retries
    (throttled, a timeout, a lost connection): worth trying later. An unanswered write may have
    been applied; every write that matters is conditional or idempotent, so a retry is safe."""
    seen: BaseException | None = exc
    while seen is not None:
        if aws_error_code(seen) in _TRANSIENT_CODES or isinstance(seen, _NO_ANSWER):
            return True
        seen = seen.__cause__ or getattr(seen, "cause", None)
    return False


@lru_cache(maxsize=4)
def _connection(region: str) -> Connection:
    return Connection(region=region)


def connection() -> Connection:
    """TransactWrite needs its own Connection (endpoint from AWS_ENDPOINT_URL* like the models').

    Built once per container: a new one reloads botocore's service model (~50 ms), which would
    also make known members' logins measurably slower than unknown ones.
    """
    return _connection(get_settings().region)


def transact(*, updates: Iterable[tuple] = (), saves: Iterable[object] = (),
             deletes: Iterable[object] = ()) -> None:
    """One atomic write. ``updates`` are ``(item, actions, condition)`` triples."""
    try:
        with TransactWrite(connection=connection()) as tx:
            for item, actions, condition in updates:
                tx.update(item, actions=actions, condition=condition)
            for item in saves:
                tx.save(item)  # type: ignore[arg-type]
            for item in deletes:
                tx.delete(item)  # type: ignore[arg-type]
    except TransactWriteError as exc:
        if aws_error_code(exc) == "TransactionCanceledException":
            raise ConcurrentUpdate(str(exc)) from exc
        raise


# --- members ---------------------------------------------------------------------------------

def get_member(document_number: str) -> Member | None:
    try:
        return Member.get(document_number, consistent_read=True)
    except DoesNotExist:
        return None


# --- rate counters ---------------------------------------------------------------------------

def hit_counter(key: str, *, limit: int, expires_at: datetime) -> bool:
    """Count one hit in a fixed window; False once ``limit`` hits were counted (one round trip)."""
    counter = RateCounter(counter_key=key)
    try:
        counter.update(
            actions=[RateCounter.hits.add(1), RateCounter.ttl.set(expires_at)],
            condition=RateCounter.hits.does_not_exist() | (RateCounter.hits < limit),
        )
    except UpdateError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


# --- sessions --------------------------------------------------------------------------------

def get_session(session_hash: str) -> Session | None:
    try:
        return Session.get(session_hash)
    except DoesNotExist:
        return None


def touch_session(session: Session, now: datetime) -> None:
    session.update(actions=[Session.last_seen_at.set(now)], condition=Session.session_hash.exists())


def delete_session(session_hash: str) -> None:
    Session(session_hash=session_hash).delete()


def delete_items(items: list[Any]) -> int:
    """Delete these items of one model (BatchWriteItem, 25 a request); how many."""
    if items:
        with type(items[0]).batch_write() as batch:
            for item in items:
                batch.delete(item)
    return len(items)


def delete_member_sessions(document_number: str, *, keep: str | None = None) -> int:
    """End every session of a member (after a password change or a staff block), but ``keep``."""
    return delete_items([s for s in Session.by_member.query(document_number) if s.session_hash != keep])


# --- recoveries ------------------------------------------------------------------------------

def get_recovery(token_hash: str) -> Recovery | None:
    try:
        return Recovery.get(token_hash, consistent_read=True)
    except DoesNotExist:
        return None


def count_recovery_attempt(recovery: Recovery, max_attempts: int) -> int:
    """Spend one try of the temporary key; returns the tries left (0 when exhausted)."""
    try:
        recovery.update(
            actions=[Recovery.attempts.add(1)],
            condition=Recovery.attempts < max_attempts,
        )
    except UpdateError as exc:
        if aws_error_code(exc) == "ConditionalCheckFailedException":
            return 0
        raise
    return max(0, max_attempts - recovery.attempts)


# --- audit -----------------------------------------------------------------------------------

def audit_event(*, subject: str, event: str, actor: str, at: datetime, suffix: str,
                ip: str | None = None, reason: str | None = None, payment_id: str | None = None,
                details: dict | None = None) -> AuditEvent:
    """An audit item, to save alone or inside a transaction."""
    return AuditEvent(
        subject=subject,
        event_key=f"{at.isoformat(timespec='milliseconds')}#{suffix}",
        event=event,
        actor=actor,
        ip=ip,
        reason=reason,
        payment_id=payment_id,
        details=details,
    )


def list_audit(subject: str, *, limit: int = 100, newest_first: bool = True) -> list[AuditEvent]:
    return list(AuditEvent.query(subject, scan_index_forward=not newest_first, limit=limit))


def ttl_in(now: datetime, seconds: int) -> datetime:
    return now + timedelta(seconds=seconds)
