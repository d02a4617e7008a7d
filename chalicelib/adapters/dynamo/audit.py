"""The audit trail in DynamoDB: entries put with the change they record, read per subject."""

from __future__ import annotations

from datetime import datetime

from chalicelib.adapters.dynamo.mapping import absent, plain
from chalicelib.adapters.dynamo.models import AuditEvent
from chalicelib.adapters.dynamo.transaction import Tx
from chalicelib.domain.audit import AuditEntry
from chalicelib.services.repositories import AuditLog


def audit_item(entry: AuditEntry) -> AuditEvent:
    return AuditEvent(subject=entry.subject, event_key=entry.key, event=entry.event, actor=entry.actor,
                      ip=entry.ip, reason=entry.reason, payment_id=entry.payment_id,
                      details=entry.details)


def entry_from_item(item: AuditEvent) -> AuditEntry:
    at, _, suffix = item.event_key.partition("#")
    details = plain(item.details) if item.details is not None else None
    return AuditEntry(subject=item.subject, event=item.event, actor=item.actor,
                      at=datetime.fromisoformat(at), suffix=suffix, ip=item.ip, reason=item.reason,
                      payment_id=item.payment_id,
                      details={str(k): str(v) for k, v in details.items()} if details else None)


class DynamoAuditLog(AuditLog):
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def add(self, entry: AuditEntry) -> None:
        self.tx.put("audit", audit_item(entry), absent(AuditEvent))

    def of(self, subject: str, *, limit: int = 100, newest_first: bool = True) -> list[AuditEntry]:
        return [entry_from_item(item) for item in
                AuditEvent.query(subject, scan_index_forward=not newest_first, limit=limit)]
