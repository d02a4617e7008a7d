"""The payment engine's repositories in DynamoDB: payments, obligations, gateway events, claims
and the bank list, each read one round trip, each write staged in the unit of work's :class:`Tx`
under a label naming what it guards (``payment``, ``obligation:<id>``, ``event``,
``idempotency``, ``reference``).

A payment or an obligation is written over the version it was read at (an ``UpdateItem`` of the
attributes that changed, conditioned on ``version``), so a repeated or concurrent notification
never applies a payment twice and another writer's attributes are never overwritten.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from pynamodb.attributes import Attribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import models
from chalicelib.adapters.dynamo.mapping import (
    absent,
    obligation_from_item,
    payment_from_item,
    payment_to_item,
    unchanged_since_read,
)
from chalicelib.adapters.dynamo.members import member_from_item
from chalicelib.adapters.dynamo.repositories import connection
from chalicelib.adapters.dynamo.transaction import Tx
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation, ObligationChange
from chalicelib.domain.payments import Claim, GatewayEventRecord, Payment
from chalicelib.services.repositories import (
    BankListCache,
    ClaimRepository,
    GatewayEventLog,
    ObligationRepository,
    PaymentRepository,
)

# --- payments --------------------------------------------------------------------------------

_PAYMENT_FIELDS = tuple(f.name for f in fields(Payment) if f.name not in ("payment_id", "version"))


class DynamoPayments(PaymentRepository):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.read: dict[str, Payment] = {}  # as read: an update writes only what changed

    def seen(self, payment: Payment) -> Payment:
        self.read[payment.payment_id] = copy.deepcopy(payment)
        return payment

    def get(self, payment_id: str) -> Payment | None:
        try:
            return self.seen(payment_from_item(models.Payment.get(payment_id, consistent_read=True)))
        except DoesNotExist:
            return None

    def by_reference(self, reference: str) -> Payment | None:
        for item in models.Payment.by_reference.query(reference, limit=1):
            return self.seen(payment_from_item(item))
        return None

    def of_member(self, document_number: str, *, limit: int | None = None) -> list[Payment]:
        return [self.seen(payment_from_item(item)) for item in
                models.Payment.by_member.query(document_number, scan_index_forward=False, limit=limit)]

    def due(self, shard: str, now: datetime, *, page_size: int) -> Iterator[Payment]:
        query = models.Payment.due_poll.query(shard, models.Payment.next_poll_at <= now,
                                              page_size=page_size)
        return (self.seen(payment_from_item(item)) for item in query)

    def add(self, payment: Payment) -> None:
        self.tx.put("payment", payment_to_item(payment), absent(models.Payment))
        self.tx.after_commit(lambda: self.committed(payment))

    def update(self, payment: Payment) -> None:
        before = self.read.get(payment.payment_id)
        written = payment_to_item(payment)
        actions: list[Action] = []
        for name in _PAYMENT_FIELDS:
            value = getattr(payment, name)
            if before is not None and getattr(before, name) == value:
                continue
            attribute: Attribute[Any] = getattr(models.Payment, name)
            actions.append(attribute.remove() if value is None else attribute.set(getattr(written, name)))
        actions.append(models.Payment.version.set(payment.version + 1))
        self.tx.update("payment", models.Payment(payment_id=payment.payment_id), actions,
                       unchanged_since_read(models.Payment, payment.version))
        self.tx.after_commit(lambda: self.committed(payment))

    def committed(self, payment: Payment) -> None:
        payment.version += 1
        self.seen(payment)


# --- obligations (and the member, in the same round trip) --------------------------------------

class DynamoObligations(ObligationRepository):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def member_and_obligations(self, document_number: str, obligation_ids: Sequence[str]
                               ) -> tuple[Member | None, dict[str, Obligation]]:
        """One consistent ``BatchGetItem`` (more only for keys DynamoDB leaves unprocessed)."""
        client: Any = connection().client  # botocore's low-level client (untyped here)
        members_table = models.Member.Meta.table_name
        obligations_table = models.Obligation.Meta.table_name
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
                member = member_from_item(models.Member.from_raw_data(raw))
            for raw in answer.get("Responses", {}).get(obligations_table, []):
                obligation = obligation_from_item(models.Obligation.from_raw_data(raw))
                obligations[obligation.obligation_id] = obligation
            request = answer.get("UnprocessedKeys") or {}
        return member, obligations

    def of_member(self, document_number: str) -> list[Obligation]:
        return [obligation_from_item(item)
                for item in models.Obligation.query(document_number, consistent_read=True)]

    def change(self, change: ObligationChange) -> None:
        o = models.Obligation
        actions: list[Action] = []
        if change.lock is not None:
            payment_id, reference = change.lock
            actions += [o.pending_payment_id.set(payment_id), o.pending_reference.set(reference),
                        o.portal_payments.set(o.portal_payments | {})]  # so an approval can add to it
        if change.balances is not None:
            due, minimum, maximum = change.balances
            actions += [o.amount_due.set(due), o.minimum_amount.set(minimum),
                        o.maximum_amount.set(maximum)]
        if change.portal_payment is not None:
            payment_id, entry = change.portal_payment
            actions.append(o.portal_payments[payment_id].set(entry) if change.has_portal_payments
                           else o.portal_payments.set({payment_id: entry}))
        if change.release:
            actions += [o.pending_payment_id.remove(), o.pending_reference.remove()]
        actions.append(o.version.set(change.version + 1))
        key = o(document_number=change.document_number, obligation_id=change.obligation_id)
        self.tx.update(change.label, key, actions, unchanged_since_read(o, change.version))


def obligations_of(document_number: str) -> list[models.Obligation]:
    """Until the console reads through the unit of work: a member's obligation items."""
    return list(models.Obligation.query(document_number, consistent_read=True))


def payments_of(document_number: str, *, limit: int | None = None) -> list[models.Payment]:
    """Until the console reads through the unit of work: a member's payment items, newest first."""
    return list(models.Payment.by_member.query(document_number, scan_index_forward=False, limit=limit))


# --- gateway events and claims -----------------------------------------------------------------

class DynamoGatewayEvents(GatewayEventLog):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def add(self, event: GatewayEventRecord) -> None:
        item = models.GatewayEvent(event_id=event.event_id, gateway=event.gateway, body=event.body,
                                   received_at=event.received_at, reference=event.reference,
                                   payment_id=event.payment_id, outcome=event.outcome)
        self.tx.put("event", item, absent(models.GatewayEvent))


class DynamoClaims(ClaimRepository):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def get(self, key: str, now: datetime) -> Claim | None:
        """DynamoDB deletes expired items late, moto never: expiry is checked here."""
        try:
            record = models.IdempotencyRecord.get(key, consistent_read=True)
        except DoesNotExist:
            return None
        claim = Claim(key=record.record_key, payment_id=record.payment_id,
                      created_at=record.created_at, fingerprint=record.fingerprint,
                      expires_at=record.ttl)
        return claim if claim.live(now) else None

    def add(self, claim: Claim, now: datetime) -> None:
        r = models.IdempotencyRecord
        item = r(record_key=claim.key, payment_id=claim.payment_id, fingerprint=claim.fingerprint,
                 created_at=claim.created_at, ttl=claim.expires_at)
        self.tx.put(claim.label, item, r.record_key.does_not_exist() | (r.ttl <= now))


# --- bank list cache -------------------------------------------------------------------------

class DynamoBankLists(BankListCache):
    def get(self, cache_key: str) -> tuple[list[tuple[str, str]], datetime] | None:
        try:
            cached = models.BankListCache.get(cache_key)
        except DoesNotExist:
            return None
        try:
            pairs = [(str(code), str(name)) for code, name in json.loads(cached.banks)]
        except (ValueError, TypeError):
            return None
        return pairs, cached.expires_at

    def put(self, cache_key: str, pairs: Sequence[tuple[str, str]], *, now: datetime,
            expires_at: datetime) -> None:
        models.BankListCache(cache_key=cache_key, banks=json.dumps([list(p) for p in pairs],
                                                                   ensure_ascii=False),
                             fetched_at=now, expires_at=expires_at).save()
