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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.backoffice import Export, PaymentFigures, ReminderClaim
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation, ObligationChange
from chalicelib.domain.payments import Claim, GatewayEventRecord, Payment
from chalicelib.domain.sessions import Recovery, Session, StaffSession


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
    """What the staff API and console read: each a query, never a scan."""

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
    def gateway_notices(self, reference: str) -> list[GatewayEventRecord]:
        """Every notification the gateways sent about a payment reference, oldest first."""

    @abstractmethod
    def payment_audit(self, document_number: str, payment_id: str) -> list[AuditEntry]:
        """A payment's entries in its member's trail, newest first."""

    @abstractmethod
    def sessions_of(self, document_number: str) -> list[Session]:
        """The member's stored sessions (expired ones too, until their TTL removes them)."""


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
# --- pay: the payment engine -------------------------------------------------------------------

class PaymentRepository(ABC):
    @abstractmethod
    def get(self, payment_id: str) -> Payment | None:
        """The payment as stored now (a consistent read)."""

    @abstractmethod
    def by_reference(self, reference: str) -> Payment | None:
        """The payment of our reference (eventually consistent: writes are version-checked)."""

    @abstractmethod
    def of_member(self, document_number: str, *, limit: int | None = None) -> list[Payment]:
        """A member's payments, newest first (one query)."""

    @abstractmethod
    def due(self, shard: str, now: datetime, *, page_size: int) -> Iterator[Payment]:
        """Payments of the poller's ``shard`` whose ``next_poll_at`` has come (one query a page)."""

    @abstractmethod
    def add(self, payment: Payment) -> None:
        """Stage a new payment (label ``payment``)."""

    @abstractmethod
    def update(self, payment: Payment) -> None:
        """Stage the payment's new state over the version it was read at (label ``payment``)."""


class ObligationRepository(ABC):
    @abstractmethod
    def member_and_obligations(self, document_number: str, obligation_ids: Sequence[str]
                               ) -> tuple[Member | None, dict[str, Obligation]]:
        """The member and the named obligations, consistent, in one round trip."""

    @abstractmethod
    def of_member(self, document_number: str) -> list[Obligation]:
        """Every obligation of a member (a consistent query)."""

    @abstractmethod
    def change(self, change: ObligationChange) -> None:
        """Stage ``change`` over the version it was decided from (label ``obligation:<id>``)."""


class GatewayEventLog(ABC):
    @abstractmethod
    def add(self, event: GatewayEventRecord) -> None:
        """Stage a notification; conflicts (label ``event``) when it was stored before: a replay."""


class ClaimRepository(ABC):
    @abstractmethod
    def get(self, key: str, now: datetime) -> Claim | None:
        """A live claim (an expired one is absent)."""

    @abstractmethod
    def add(self, claim: Claim, now: datetime) -> None:
        """Stage a claim; conflicts (label ``claim.label``) while another live one holds the key."""


class BankListCache(ABC):
    """The gateway's bank list, kept a day (a cache: written at once, not with a unit of work)."""

    @abstractmethod
    def get(self, cache_key: str) -> tuple[list[tuple[str, str]], datetime] | None:
        """The cached ``(code, name)`` pairs and their expiry, even when expired (a fallback)."""

    @abstractmethod
    def put(self, cache_key: str, pairs: Sequence[tuple[str, str]], *, now: datetime,
            expires_at: datetime) -> None:
        """Replace the cached list now."""
# --- imports: the core system's files (services/imports) ------------------------------------------

class ImportStorage(ABC):
    """What an import of the core system's files needs from storage.

    Unlike the other repositories, its writes are **not staged**: an import writes tens of
    thousands of items, in bounded batches, and each write stands on its own (its own condition,
    its own round trip). It is safe to call from several threads at once.

    Versions: every member or obligation the import writes is stored at ``version + 1``. New
    items (absent at the consistent batch read just before) are batch-written unconditionally,
    at version 1, for speed; existing ones are updated attribute by attribute with an update
    that increments the stored version (``ADD version 1``: an absent version counts as 0) under
    the method's condition, so a payment engine's version-checked write that read the item
    before fails and re-reads instead of overwriting the import.
    """

    # --- members ---
    @abstractmethod
    def members(self, documents: list[str]) -> dict[str, Member]:
        """The stored members among ``documents`` (consistent reads), by document number."""

    @abstractmethod
    def existing_members(self, documents: list[str]) -> set[str]:
        """Which of ``documents`` are members (consistent reads of the keys only)."""

    @abstractmethod
    def add_members(self, members: list[Member]) -> None:
        """Write new members (absent when read), at version 1."""

    @abstractmethod
    def update_member_core_fields(self, member: Member, now: datetime) -> bool:
        """Set the core system's fields of a stored member (type, name, email, phone, status;
        ``imported_at``/``updated_at`` to ``now``), never its password or security state;
        False when it no longer exists."""

    # --- obligations ---
    @abstractmethod
    def obligations(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Obligation]:
        """The stored obligations among ``keys`` (document, obligation id), consistent reads."""

    @abstractmethod
    def obligation(self, document_number: str, obligation_id: str) -> Obligation | None:
        """One obligation as stored now (a consistent read)."""

    @abstractmethod
    def add_obligations(self, obligations: list[Obligation]) -> None:
        """Write new obligations (absent when read), at version 1."""

    @abstractmethod
    def stamp(self, key: tuple[str, str], *, batch_id: str, line: int) -> bool:
        """Record that import ``batch_id`` listed the obligation at ``line`` (negative: a rejected
        row); False when it does not exist."""

    @abstractmethod
    def update_obligation(self, key: tuple[str, str], changes: dict[str, Any], *,
                          portal_payments_read: dict[str, Any], kept: dict[str, Any],
                          reopen: bool, batch_id: str, line: int, now: datetime) -> bool:
        """Write ``changes`` (name → value, None removes it), ``updated_at``, the stamp; the
        portal payments become ``kept`` when they differ from those read; ``reopen`` removes
        ``closed_at``. Only if the item still has exactly the portal payments read (by id):
        False otherwise (re-read and decide again). ``pending_payment_id`` is never touched."""

    @abstractmethod
    def open_obligations_of_other_imports(self, batch_id: str) -> Iterator[tuple[str, str]]:
        """Keys of the OPEN obligations stamped by another import than ``batch_id`` (the sparse
        index, eventually consistent: :meth:`close` decides)."""

    @abstractmethod
    def close(self, key: tuple[str, str], *, batch_id: str, now: datetime) -> bool:
        """CLOSED (never deleted) if still OPEN, stamped by another import and not held by a
        payment; False otherwise."""

    # --- payments: "Aplicado en la cooperativa" ---
    @abstractmethod
    def export_times(self, payment_ids: list[str]) -> dict[str, datetime | None]:
        """``exported_at`` of the payments among ``payment_ids`` that have a record."""

    @abstractmethod
    def confirm_applied_in_core(self, payment_id: str, *, cutoff: datetime, at: datetime,
                                entry: AuditEntry) -> bool:
        """Set the payment's ``core_applied_at`` to ``at`` with its audit ``entry``, atomically,
        once, and only if it was exported at or before ``cutoff``; False when it was not set."""

    # --- the lock and the record of runs ---
    @abstractmethod
    def acquire_lock(self, lock_id: str, *, holder: str, kind: str, source: str | None,
                     now: datetime, lease_until: datetime) -> ImportLease | None:
        """Take the lock if free or its lease ran out (None); else the lease that holds it."""

    @abstractmethod
    def renew_lock(self, lock_id: str, *, holder: str, lease_until: datetime) -> bool:
        """Extend ``holder``'s lease; False when another import holds the lock."""

    @abstractmethod
    def release_lock(self, lock_id: str, *, holder: str) -> None:
        """Free the lock if ``holder`` still holds it."""

    @abstractmethod
    def record_run(self, run: ImportRunRecord) -> None:
        """Store what an import did."""


@dataclass(frozen=True)
class ImportLease:
    """Who holds an import lock, until when (None: unknown, e.g. released meanwhile)."""

    holder: str | None
    lease_until: datetime | None


@dataclass(frozen=True)
class ImportRunRecord:
    batch_id: str
    kind: str
    source: str | None
    started_at: datetime
    finished_at: datetime
    summary: str  # JSON: the report's counts
# --- access: member sessions, recoveries, rate counters, staff sessions --------------------------

class SessionRepository(ABC):
    """Members' sessions. Ending all of a member's sessions writes at once (see there)."""

    @abstractmethod
    def get(self, session_hash: str) -> Session | None:
        """The session as stored (an eventually consistent read: sessions are read on every call)."""

    @abstractmethod
    def add(self, session: Session) -> None:
        """Stage a new session."""

    @abstractmethod
    def touch(self, session: Session, at: datetime) -> None:
        """Stage sliding the idle timeout to ``at`` (conflicts if the session ended meanwhile)."""

    @abstractmethod
    def delete(self, session_hash: str) -> None:
        """Stage ending the session (nothing to conflict with: ending twice is ending)."""

    @abstractmethod
    def delete_of_member(self, document_number: str, *, keep: str | None = None) -> int:
        """End every session of a member but ``keep`` now, not at the commit; how many ended.

        A member may hold more sessions than one transaction takes, and ending a session twice is
        harmless, so this runs after the change that calls for it (a password change, a block)
        was committed, in batches of its own."""


class RecoveryRepository(ABC):
    @abstractmethod
    def get(self, token_hash: str) -> Recovery | None:
        """The request as stored now (a consistent read)."""

    @abstractmethod
    def add(self, recovery: Recovery) -> None:
        """Stage a new request."""

    @abstractmethod
    def mark_used(self, recovery: Recovery, at: datetime) -> None:
        """Stage spending the request (conflicts if it was used meanwhile)."""

    @abstractmethod
    def count_attempt(self, recovery: Recovery, max_attempts: int) -> int:
        """Spend one try of the temporary key now; the tries left (0: none was left to spend).

        A conditional counter written at once, outside the commit: the answer is the tries left,
        which the use case needs before it answers, and a wrong key must count even though the
        use case then writes nothing else (concurrent guesses each spend one, never more than
        ``max_attempts`` in all)."""


class RateCounters(ABC):
    @abstractmethod
    def hit(self, key: str, *, limit: int, expires_at: datetime) -> bool:
        """Count one hit of ``key`` now; False (and nothing counted) once ``limit`` were counted.

        Written at once, as one conditional update of its own, not staged in the unit of work: the
        answer decides whether the use case runs at all, a hit must count even when the use case
        then fails or writes nothing, and staging it would let a full counter cancel the use
        case's whole transaction. One plain update costs half a transactional write."""


class StaffSessionRepository(ABC):
    @abstractmethod
    def get(self, session_hash: str) -> StaffSession | None:
        """The staff session or pending sign-in as stored now (a consistent read)."""

    @abstractmethod
    def add(self, session: StaffSession) -> None:
        """Stage a new session or pending sign-in."""

    @abstractmethod
    def touch(self, session: StaffSession, at: datetime) -> None:
        """Stage sliding the idle timeout to ``at`` (conflicts if the session ended meanwhile)."""

    @abstractmethod
    def delete(self, session_hash: str) -> None:
        """Stage ending the session or pending sign-in."""

    @abstractmethod
    def delete_of_user(self, username: str) -> int:
        """End every session of a staff user now (like ``SessionRepository.delete_of_member``)."""
