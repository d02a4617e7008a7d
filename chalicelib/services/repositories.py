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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
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
