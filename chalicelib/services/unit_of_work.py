"""A use case's unit of work ("Architecture Patterns with Python", chapter 6).

One per use case (per attempt, when a use case retries after a :class:`Conflict`): it reads
through its repositories, stages writes and domain events, and ``commit()`` writes them all at
once or none. Leaving the ``with`` block without a commit forgets what was staged::

    with ctx.unit_of_work() as uow:
        member = uow.members.get(document_number)
        member.failed_consecutive = 0
        uow.members.update(member)
        uow.audit.add(entry)
        uow.commit()
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import DomainEvent
from chalicelib.services.repositories import (
    AuditLog,
    ImportStorage,
    MemberRepository,
    RateCounters,
    RecoveryRepository,
    SessionRepository,
    StaffSessionRepository,
)


class UnitOfWork(ABC):
    members: MemberRepository
    audit: AuditLog
    # --- imports: bulk writes of their own, never staged (see ImportStorage) ---
    imports: ImportStorage
    # access
    sessions: SessionRepository
    recoveries: RecoveryRepository
    rate_counters: RateCounters
    staff_sessions: StaffSessionRepository

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.rollback()

    def record(self, event: DomainEvent) -> None:
        """Stage a domain event: written with the change, handled after the commit."""
        self.events.append(event)

    @abstractmethod
    def commit(self) -> None:
        """Write every staged change and event atomically; raise ``Conflict`` if any condition
        no longer holds (then nothing was written). Staged state is cleared either way."""

    @abstractmethod
    def rollback(self) -> None:
        """Forget what is staged (nothing is written)."""


T = TypeVar("T")


def until_committed(units: Callable[[], UnitOfWork], decide: Callable[[UnitOfWork], T], *,
                    attempts: int = 5) -> T:
    """Run ``decide`` (read, decide, stage) in a new unit of work and commit what it staged; after a
    :class:`Conflict`, decide again on what is stored then, up to ``attempts`` times in all (then
    the last Conflict is raised). ``decide`` may raise to refuse: nothing is written then."""
    for attempt in range(1, attempts + 1):
        with units() as uow:
            result = decide(uow)
            try:
                uow.commit()
            except Conflict:
                if attempt == attempts:
                    raise
                continue
            return result
    raise ValueError("attempts must be at least 1")
