"""The append-only audit trail's entries: security events and payment transitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AuditEntry:
    """One event about ``subject`` (a document number, or "system"); ``actor`` is "member",
    "staff:<identity>", "gateway" or "system". ``suffix`` (random) keeps same-millisecond
    entries apart."""

    subject: str
    event: str
    actor: str
    at: datetime
    suffix: str
    ip: str | None = None
    reason: str | None = None
    payment_id: str | None = None
    details: dict[str, str] | None = None

    @property
    def key(self) -> str:
        """Orders a subject's entries by time, and is unique."""
        return f"{self.at.isoformat(timespec='milliseconds')}#{self.suffix}"
