"""What the use cases need from storage, in domain words (the ports; adapters implement them).

Reads answer at once (consistent where a decision depends on them). Writes are only staged: the
unit of work's ``commit()`` sends every staged write of a use case in one atomic write, each
conditioned on what was read (an entity's ``version``, a key's absence), and raises
:class:`~chalicelib.domain.errors.Conflict` naming what changed meanwhile.

A fake of each, in memory, lives in ``tests/fakes.py``; the DynamoDB one in
``chalicelib/adapters/dynamo/``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.backoffice import (
    Export,
    GatewayNotice,
    MemberSession,
    PaymentFigures,
    ReminderClaim,
)
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import Payment


class MemberRepository(ABC):
    @abstractmethod
    def get(self, document_number: str) -> Member | None:
        """The member as stored now (a consistent read)."""

    @abstractmethod
    def add(self, member: Member) -> None:
        """Stage a new member (conflicts if one with that document number exists by then)."""

    @abstractmethod
    def update(self, member: Member) -> None:
        """Stage the member's new state (conflicts if it changed since it was read)."""


class AuditLog(ABC):
    @abstractmethod
    def add(self, entry: AuditEntry) -> None:
        """Stage an entry, written with the change it records."""

    @abstractmethod
    def of(self, subject: str, *, limit: int = 100, newest_first: bool = True) -> list[AuditEntry]:
        """A subject's entries, newest first unless asked otherwise."""


# --- back office: staff reads, exports, reminder claims ---------------------------------------------
#
# Claims act at once, not at the commit: a conditional write whose answer the use case needs before
# it goes on (only one caller can win it), so a claim returns whether it was won.

T = TypeVar("T")
#: Where a page ended, to resume after it: opaque to the use cases (they sign it into a cursor).
ResumeKey = dict[str, Any]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    resume: ResumeKey | None  # None: this was the last page


@dataclass(frozen=True)
class PaymentFilter:
    """A staff search of payments; ``created`` is an aware ``created_at`` range (both included)."""

    reference: str | None = None
    cus: str | None = None
    document: str | None = None
    status: str | None = None
    created: tuple[datetime, datetime] | None = None

    @property
    def index(self) -> str:
        """The key searched by (the first given of reference, cus, document, status); the other
        filters narrow it."""
        if self.reference:
            return "by_reference"
        if self.cus:
            return "by_cus"
        return "by_member" if self.document else "by_status"


class BackOffice(ABC):
    """What the staff API and console read (each a query, never a scan), and signing out."""

    @abstractmethod
    def payment_page(self, search: PaymentFilter, *, limit: int,
                     start: ResumeKey | None) -> Page[Payment]:
        """Payments matching ``search``, newest first: one query a page."""

    @abstractmethod
    def review_page(self, *, limit: int, start: ResumeKey | None) -> Page[Payment]:
        """Payments flagged for review, oldest first: one query a page."""

    @abstractmethod
    def audit_page(self, subject: str, *, limit: int, start: ResumeKey | None) -> Page[AuditEntry]:
        """A subject's audit trail, newest first: one query a page."""

    @abstractmethod
    def payment_figures(self, status: str, *, since: datetime) -> Iterable[PaymentFigures]:
        """Payments in ``status`` created at or after ``since`` (only what a summary counts)."""

    @abstractmethod
    def count_in_status(self, status: str) -> int: ...

    @abstractmethod
    def count_flagged(self) -> int:
        """Payments waiting for a person's review."""

    @abstractmethod
    def gateway_notices(self, reference: str) -> list[GatewayNotice]:
        """Every notification the gateways sent about a payment reference, oldest first."""

    @abstractmethod
    def payment_audit(self, document_number: str, payment_id: str) -> list[AuditEntry]:
        """A payment's entries in its member's trail, newest first."""

    @abstractmethod
    def obligations_of(self, document_number: str) -> list[Obligation]: ...

    @abstractmethod
    def payments_of(self, document_number: str, *, limit: int) -> list[Payment]:
        """The member's most recent payments, newest first."""

    @abstractmethod
    def sessions_of(self, document_number: str) -> list[MemberSession]:
        """The member's stored sessions (expired ones too, until their TTL removes them)."""

    @abstractmethod
    def end_member_sessions(self, document_number: str) -> int:
        """Delete every session of the member at once; how many there were."""

    @abstractmethod
    def end_staff_sessions(self, username: str) -> int:
        """Delete every console session of a staff user at once; how many there were."""


class ExportRepository(ABC):
    """Export records, and the approved payments waiting for one."""

    @abstractmethod
    def add(self, export: Export) -> None:
        """Stage a new export (conflicts if its id is taken)."""

    @abstractmethod
    def complete(self, export: Export) -> None:
        """Stage the export's completion (conflicts, label ``export:<id>``, unless still OPEN)."""

    @abstractmethod
    def get(self, export_id: str) -> Export | None: ...

    @abstractmethod
    def get_many(self, export_ids: list[str]) -> list[Export]:
        """The exports of these ids that exist (at most 100), in no particular order."""

    @abstractmethod
    def open_before(self, older_than: datetime) -> list[Export]:
        """Exports still OPEN created before ``older_than`` (normally none)."""

    @abstractmethod
    def take_lease(self, export: Export, *, now: datetime, until: datetime) -> bool:
        """Claim an OPEN export whose lease ran out before ``now``, until ``until``."""

    @abstractmethod
    def queued(self, *, page_size: int) -> Iterator[str]:
        """Ids of approved payments no export has claimed yet, oldest approval first."""

    @abstractmethod
    def claim(self, payment_id: str, *, export_id: str, now: datetime) -> Payment | None:
        """Claim a queued approved payment for ``export_id`` (the whole payment), or None when
        another export claimed it first."""

    @abstractmethod
    def payments_of(self, export_id: str) -> list[Payment]:
        """Every payment an export claimed, oldest approval first."""

    @abstractmethod
    def exported_before(self, payment_ids: list[str], cutoff: datetime) -> set[str]:
        """Of these payments, those an export had claimed at or before ``cutoff``."""

    @abstractmethod
    def confirm_in_core(self, payment_id: str, *, cutoff: datetime, now: datetime) -> bool:
        """Claim the core system's confirmation of a payment exported at or before ``cutoff``
        (once: False if it was not exported by then or was confirmed already)."""


class ReminderRepository(ABC):
    """What the reminder emails read, and their claims (a reminder goes at most once)."""

    @abstractmethod
    def due_on(self, due_date: str) -> list[Obligation]:
        """OPEN obligations due on ``due_date`` (YYYY-MM-DD)."""

    @abstractmethod
    def members_of(self, document_numbers: list[str]) -> dict[str, Member]:
        """The members of these documents that exist, by document number."""

    @abstractmethod
    def pending_in(self, shard: str, *, created_before: datetime) -> list[Payment]:
        """PENDING payments of a poll shard created at or before ``created_before``."""

    @abstractmethod
    def claim(self, claim: ReminderClaim) -> bool:
        """Store the claim unless one with its key exists: True if this caller won it."""

    @abstractmethod
    def release(self, key: str) -> None:
        """Forget a claim (its email could not be sent: the next run tries again)."""
