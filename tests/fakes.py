"""In-memory fakes of the ports: a unit of work whose commit checks what DynamoDB's conditions
would (an entity's version, a key's absence) and applies all or nothing.

    store = FakeStore()
    ctx = Context(settings, units_of_work=store.unit_of_work)
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import DomainEvent
from chalicelib.domain.members import Member
from chalicelib.domain.sessions import Recovery, Session, StaffSession
from chalicelib.services.repositories import (
    AuditLog,
    MemberRepository,
    RateCounters,
    RecoveryRepository,
    SessionRepository,
    StaffSessionRepository,
)
from chalicelib.services.unit_of_work import UnitOfWork

ABSENT = "absent"  # the expectation of an add: no value under the key yet
#: What a staged write expects of the stored value: ABSENT, a version, a predicate, or None (any).
Expectation = str | int | Callable[[Any], bool] | None


class FakeStore:
    """What the fakes store: per table, a deep copy of each entity by key; events as committed."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Hashable, Any]] = defaultdict(dict)
        self.events: list[DomainEvent] = []
        self.commits = 0

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def read(self, table: str, key: Hashable) -> Any:
        return copy.deepcopy(self.tables[table].get(key))


@dataclass
class Staged:
    label: str
    table: str
    key: Hashable
    entity: Any  # the caller's object (takes the new version), or None to delete
    expect: Expectation

    def __post_init__(self) -> None:
        self.value = copy.deepcopy(self.entity)  # as DynamoDB would: serialized when staged

    def holds(self, store: FakeStore) -> bool:
        current = store.tables[self.table].get(self.key)
        if self.expect is None:
            return True
        if self.expect == ABSENT:
            return current is None
        if isinstance(self.expect, int):
            return current is not None and getattr(current, "version", 0) == self.expect
        return bool(self.expect(copy.deepcopy(current)))  # type: ignore[operator]


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, store: FakeStore) -> None:
        super().__init__()
        self.store = store
        self.staged: list[Staged] = []
        self.members = FakeMembers(self)
        self.audit = FakeAuditLog(self)
        # access
        self.sessions = FakeSessions(self)
        self.recoveries = FakeRecoveries(self)
        self.rate_counters = FakeRateCounters(self)
        self.staff_sessions = FakeStaffSessions(self)

    def stage(self, label: str, table: str, key: Hashable, value: Any, expect: Expectation) -> None:
        self.staged.append(Staged(label, table, key, value, expect))

    def commit(self) -> None:
        staged, events = self.staged, self.events
        self.rollback()
        failed = {s.label for s in staged if not s.holds(self.store)}
        if failed:
            raise Conflict(changed=failed)
        for s in staged:
            if s.value is None:
                self.store.tables[s.table].pop(s.key, None)
                continue
            if hasattr(s.value, "version"):
                s.value.version += 1
                s.entity.version = s.value.version
            self.store.tables[s.table][s.key] = s.value
        self.store.events.extend(events)
        self.store.commits += 1

    def rollback(self) -> None:
        self.staged, self.events = [], []


class FakeMembers(MemberRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def get(self, document_number: str) -> Member | None:
        member: Member | None = self.uow.store.read("members", document_number)
        return member

    def add(self, member: Member) -> None:
        self.uow.stage(f"member:{member.document_number}", "members", member.document_number,
                       member, ABSENT)

    def update(self, member: Member) -> None:
        self.uow.stage(f"member:{member.document_number}", "members", member.document_number,
                       member, member.version)


class FakeAuditLog(AuditLog):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def add(self, entry: AuditEntry) -> None:
        self.uow.stage("audit", "audit", (entry.subject, entry.key), entry, ABSENT)

    def of(self, subject: str, *, limit: int = 100, newest_first: bool = True) -> list[AuditEntry]:
        entries = sorted((e for (s, _), e in self.uow.store.tables["audit"].items() if s == subject),
                         key=lambda e: e.key, reverse=newest_first)
        return copy.deepcopy(entries[:limit])


# --- access: member sessions, recoveries, rate counters, staff sessions --------------------------

def exists(current: Any) -> bool:
    return current is not None


class FakeSessions(SessionRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def get(self, session_hash: str) -> Session | None:
        session: Session | None = self.uow.store.read("sessions", session_hash)
        return session

    def add(self, session: Session) -> None:
        self.uow.stage("session", "sessions", session.session_hash, session, ABSENT)

    def touch(self, session: Session, at: datetime) -> None:
        self.uow.stage("session", "sessions", session.session_hash,
                       replace(session, last_seen_at=at), exists)

    def delete(self, session_hash: str) -> None:
        self.uow.stage("session", "sessions", session_hash, None, None)

    def delete_of_member(self, document_number: str, *, keep: str | None = None) -> int:
        table = self.uow.store.tables["sessions"]
        ended = [k for k, s in table.items() if s.document_number == document_number and k != keep]
        for key in ended:
            del table[key]
        return len(ended)


class FakeRecoveries(RecoveryRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def get(self, token_hash: str) -> Recovery | None:
        recovery: Recovery | None = self.uow.store.read("recoveries", token_hash)
        return recovery

    def add(self, recovery: Recovery) -> None:
        self.uow.stage("recovery", "recoveries", recovery.token_hash, recovery, ABSENT)

    def mark_used(self, recovery: Recovery, at: datetime) -> None:
        stored = self.uow.store.read("recoveries", recovery.token_hash)
        self.uow.stage("recovery", "recoveries", recovery.token_hash,
                       replace(stored or recovery, used_at=at),
                       lambda current: current is not None and current.used_at is None)

    def count_attempt(self, recovery: Recovery, max_attempts: int) -> int:
        stored = self.uow.store.tables["recoveries"].get(recovery.token_hash)
        if stored is None or stored.attempts >= max_attempts:
            return 0
        stored.attempts += 1
        attempts: int = stored.attempts
        recovery.attempts = attempts
        return max(0, max_attempts - attempts)


class FakeRateCounters(RateCounters):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def hit(self, key: str, *, limit: int, expires_at: datetime) -> bool:
        counters = self.uow.store.tables["rate_counters"]
        if counters.get(key, 0) >= limit:
            return False
        counters[key] = counters.get(key, 0) + 1
        return True


class FakeStaffSessions(StaffSessionRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def get(self, session_hash: str) -> StaffSession | None:
        session: StaffSession | None = self.uow.store.read("staff_sessions", session_hash)
        return session

    def add(self, session: StaffSession) -> None:
        self.uow.stage("staff_session", "staff_sessions", session.session_hash, session, ABSENT)

    def touch(self, session: StaffSession, at: datetime) -> None:
        self.uow.stage("staff_session", "staff_sessions", session.session_hash,
                       replace(session, last_seen_at=at), exists)

    def delete(self, session_hash: str) -> None:
        self.uow.stage("staff_session", "staff_sessions", session_hash, None, None)

    def delete_of_user(self, username: str) -> int:
        table = self.uow.store.tables["staff_sessions"]
        ended = [k for k, s in table.items() if s.username == username]
        for key in ended:
            del table[key]
        return len(ended)
