"""DynamoDB reads and writes of the payment engine, each one round trip.

:class:`Tx` builds one ``TransactWriteItems`` whose actions carry labels, so a cancellation says
which condition failed (a replayed event, a lost status race, a changed obligation...).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from chalicelib.adapters.dynamo.models import (
    BankListCache,
    IdempotencyRecord,
    Member,
    Obligation,
    Payment,
)
from chalicelib.adapters.dynamo.repositories import connection

# Until the engine uses the unit of work:
from chalicelib.adapters.dynamo.transaction import Cancelled as Cancelled
from chalicelib.adapters.dynamo.transaction import Tx as Tx

# --- payments --------------------------------------------------------------------------------

def get_payment(payment_id: str) -> Payment | None:
    try:
        return Payment.get(payment_id, consistent_read=True)
    except DoesNotExist:
        return None


def payment_by_reference(reference: str) -> Payment | None:
    """Through the by_reference index (eventually consistent; writes are conditional anyway)."""
    for payment in Payment.by_reference.query(reference, limit=1):
        return payment
    return None


def payments_of(document_number: str, *, limit: int | None = None) -> list[Payment]:
    """A member's payments, newest first (one query on by_member; more pages only past 1 MB)."""
    return list(Payment.by_member.query(document_number, scan_index_forward=False, limit=limit))


def due_payments(shard: str, now: datetime, *, page_size: int) -> Iterator[Payment]:
    """Payments whose ``next_poll_at`` has come, from the sparse due_poll index (one query a page)."""
    return iter(Payment.due_poll.query(shard, Payment.next_poll_at <= now, page_size=page_size))


# --- obligations (and the member, in the same round trip) --------------------------------------

def member_and_obligations(document_number: str,
                           obligation_ids: Sequence[str]) -> tuple[Member | None, dict[str, Obligation]]:
    """The member and the named obligations in one consistent ``BatchGetItem``."""
    client = connection().client
    members_table, obligations_table = Member.Meta.table_name, Obligation.Meta.table_name
    request: dict[str, Any] = {
        members_table: {"Keys": [{"document_number": {"S": document_number}}],
                        "ConsistentRead": True},
    }
    if obligation_ids:
        request[obligations_table] = {
            "Keys": [{"document_number": {"S": document_number}, "obligation_id": {"S": oid}}
                     for oid in dict.fromkeys(obligation_ids)],
            "ConsistentRead": True,
        }
    member: Member | None = None
    obligations: dict[str, Obligation] = {}
    while request:
        answer = client.batch_get_item(RequestItems=request)
        for raw in answer.get("Responses", {}).get(members_table, []):
            member = Member.from_raw_data(raw)
        for raw in answer.get("Responses", {}).get(obligations_table, []):
            obligation = Obligation.from_raw_data(raw)
            obligations[obligation.obligation_id] = obligation
        request = answer.get("UnprocessedKeys") or {}
    return member, obligations


def obligations_of(document_number: str) -> list[Obligation]:
    return list(Obligation.query(document_number, consistent_read=True))


# --- idempotency claims ----------------------------------------------------------------------

def idempotency_key(document_number: str, key: str) -> str:
    return f"{document_number}#{key}"


def reference_claim_key(reference: str) -> str:
    return f"reference#{reference}"


def get_claim(record_key: str, now: datetime) -> IdempotencyRecord | None:
    """A live claim (DynamoDB deletes expired items late, moto never: expiry is checked here)."""
    try:
        record = IdempotencyRecord.get(record_key, consistent_read=True)
    except DoesNotExist:
        return None
    if record.ttl is not None and record.ttl <= now:
        return None
    return record


def claim_condition(now: datetime) -> Condition:
    """A claim may be written when absent or expired."""
    return IdempotencyRecord.record_key.does_not_exist() | (IdempotencyRecord.ttl <= now)


# --- bank list cache -------------------------------------------------------------------------

def read_bank_list(cache_key: str) -> tuple[list[tuple[str, str]], datetime] | None:
    """The cached ``(code, name)`` pairs and their expiry, even when expired (a fallback)."""
    try:
        cached = BankListCache.get(cache_key)
    except DoesNotExist:
        return None
    try:
        pairs = [(str(code), str(name)) for code, name in json.loads(cached.banks)]
    except (ValueError, TypeError):
        return None
    return pairs, cached.expires_at


def write_bank_list(cache_key: str, pairs: Sequence[tuple[str, str]], *, now: datetime,
                    expires_at: datetime) -> None:
    BankListCache(cache_key=cache_key, banks=json.dumps([list(p) for p in pairs], ensure_ascii=False),
                  fetched_at=now, expires_at=expires_at).save()
