"""The append-only audit trail of security events and payment transitions."""

from __future__ import annotations

from typing import Any

from chalicelib.context import Context
from chalicelib.domain.audit import AuditEntry
from chalicelib.observability import log_event


def audit_entry(ctx: Context, *, subject: str, event: str, actor: str = "member",
                ip: str | None = None, reason: str | None = None, payment_id: str | None = None,
                **details: Any) -> AuditEntry:
    """Log the event now and return its entry, for ``uow.audit.add`` with the change it records."""
    log_event(event, document_number=subject, actor=actor, ip=ip, reason=reason,
              payment_id=payment_id, **details)
    return AuditEntry(subject=subject, event=event, actor=actor, at=ctx.now(), suffix=ctx.token(6),
                      ip=ip, reason=reason, payment_id=payment_id,
                      details={k: str(v) for k, v in details.items()} or None)


def record(ctx: Context, **fields: Any) -> None:
    """Log and write an audit event on its own."""
    with ctx.unit_of_work() as uow:
        uow.audit.add(audit_entry(ctx, **fields))
        uow.commit()
