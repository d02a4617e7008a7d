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
from datetime import datetime

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.members import Member
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
