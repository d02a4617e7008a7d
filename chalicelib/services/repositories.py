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
from collections.abc import Iterator, Sequence
from datetime import datetime

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation, ObligationChange
from chalicelib.domain.payments import Claim, GatewayEventRecord, Payment


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
