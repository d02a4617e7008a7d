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

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.members import Member


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
