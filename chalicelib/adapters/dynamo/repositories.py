"""Reads and writes the services need, each in as few DynamoDB round trips as the rule allows.

Writes that must happen together go in one ``TransactWriteItems`` (one round trip, all or nothing).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from botocore.exceptions import ConnectionError as NetworkError
from botocore.exceptions import HTTPClientError
from pynamodb.connection import Connection

from chalicelib.adapters.dynamo.models import AuditEvent, Session
from chalicelib.config import get_settings

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


# --- sessions --------------------------------------------------------------------------------

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


# --- audit -----------------------------------------------------------------------------------

def audit_event(*, subject: str, event: str, actor: str, at: datetime, suffix: str,
                ip: str | None = None, reason: str | None = None, payment_id: str | None = None,
                details: dict[str, Any] | None = None) -> AuditEvent:
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
