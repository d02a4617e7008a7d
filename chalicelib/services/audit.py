"""The append-only audit trail of security events and payment transitions."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamo import repositories as repo
from chalicelib.adapters.dynamo.models import AuditEvent
from chalicelib.context import Context
from chalicelib.observability import log_event


def audit_item(ctx: Context, *, subject: str, event: str, actor: str = "member",
               ip: str | None = None, reason: str | None = None, payment_id: str | None = None,
               **details: Any) -> AuditEvent:
    """Log the event now and return its audit item, to be written with the change it records."""
    log_event(event, document_number=subject, actor=actor, ip=ip, reason=reason,
              payment_id=payment_id, **details)
    return repo.audit_event(subject=subject, event=event, actor=actor, at=ctx.now(),
                            suffix=ctx.token(6), ip=ip, reason=reason, payment_id=payment_id,
                            details={k: str(v) for k, v in details.items()} or None)


def record(ctx: Context, **fields: Any) -> None:
    """Log and write an audit event on its own."""
    audit_item(ctx, **fields).save()
