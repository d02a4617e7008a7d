"""In-memory fakes of the ports: a unit of work whose commit checks what DynamoDB's conditions
would (an entity's version, a key's absence) and applies all or nothing.

    store = FakeStore()
    ctx = Context(settings, units_of_work=store.unit_of_work)
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import DomainEvent
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation
from chalicelib.domain.sessions import Recovery, Session, StaffSession
from chalicelib.services.repositories import (
    AuditLog,
    ImportLease,
    ImportRunRecord,
    ImportStorage,
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
        # --- imports ---
        self.imports = FakeImportStorage(store)
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


# --- imports: written at once, as the DynamoDB one (not staged) -----------------------------------

class FakeImportStorage(ImportStorage):
    """Tables ``members``, ``obligations`` ((document, id) → Obligation), ``payments`` (id → any
    object with ``exported_at``/``core_applied_at``), ``audit`` and ``import_runs``."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.lock = threading.Lock()  # the importer's threads write at once

    def _table(self, name: str) -> dict[Hashable, Any]:
        return self.store.tables[name]

    def _write(self, table: str, key: Hashable, entity: Any) -> None:
        """Stored at the next version of what is stored (or of the entity, when new)."""
        current = self._table(table).get(key)
        stored = copy.deepcopy(entity)
        stored.version = (current.version if current is not None else entity.version) + 1
        self._table(table)[key] = stored

    # --- members ---
    def members(self, documents: list[str]) -> dict[str, Member]:
        return {d: self.store.read("members", d) for d in documents if d in self._table("members")}

    def existing_members(self, documents: list[str]) -> set[str]:
        return {d for d in documents if d in self._table("members")}

    def add_members(self, members: list[Member]) -> None:
        with self.lock:
            for member in members:
                self._write("members", member.document_number, member)

    def update_member_core_fields(self, member: Member, now: datetime) -> bool:
        with self.lock:
            current = self._table("members").get(member.document_number)
            if current is None:
                return False
            self._write("members", member.document_number, replace(
                current, document_type=member.document_type, full_name=member.full_name,
                email=member.email, phone=member.phone, status=member.status, imported_at=now,
                updated_at=now))
            return True

    # --- obligations ---
    def obligations(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Obligation]:
        return {k: self.store.read("obligations", k) for k in keys if k in self._table("obligations")}

    def obligation(self, document_number: str, obligation_id: str) -> Obligation | None:
        found: Obligation | None = self.store.read("obligations", (document_number, obligation_id))
        return found

    def add_obligations(self, obligations: list[Obligation]) -> None:
        with self.lock:
            for o in obligations:
                self._table("obligations").pop((o.document_number, o.obligation_id), None)
                self._write("obligations", (o.document_number, o.obligation_id), o)

    def _change(self, key: tuple[str, str], holds: Callable[[Obligation], bool],
                **values: Any) -> bool:
        with self.lock:
            current = self._table("obligations").get(key)
            if current is None or not holds(current):
                return False
            self._write("obligations", key, replace(current, **values))
            return True

    def stamp(self, key: tuple[str, str], *, batch_id: str, line: int) -> bool:
        return self._change(key, lambda o: True, import_batch=batch_id, import_line=line)

    def update_obligation(self, key: tuple[str, str], changes: dict[str, Any], *,
                          portal_payments_read: dict[str, Any], kept: dict[str, Any],
                          reopen: bool, batch_id: str, line: int, now: datetime) -> bool:
        values = {**changes, "updated_at": now, "import_batch": batch_id, "import_line": line}
        if reopen:
            values["closed_at"] = None
        if len(kept) != len(portal_payments_read):
            values["portal_payments"] = copy.deepcopy(kept) or None
        return self._change(key, lambda o: set(o.portal_payments or {}) == set(portal_payments_read),
                            **values)

    def open_obligations_of_other_imports(self, batch_id: str) -> Iterator[tuple[str, str]]:
        yield from sorted(k for k, o in list(self._table("obligations").items())
                          if o.open_shard is not None and o.import_batch not in (None, batch_id))

    def close(self, key: tuple[str, str], *, batch_id: str, now: datetime) -> bool:
        return self._change(
            key, lambda o: (o.status == "OPEN" and o.import_batch not in (None, batch_id)
                            and o.pending_payment_id is None),
            status="CLOSED", closed_at=now, updated_at=now, open_shard=None)

    # --- payments ---
    def export_times(self, payment_ids: list[str]) -> dict[str, datetime | None]:
        payments = self._table("payments")
        return {p: payments[p].exported_at for p in payment_ids if p in payments}

    def confirm_applied_in_core(self, payment_id: str, *, cutoff: datetime, at: datetime,
                                entry: AuditEntry) -> bool:
        with self.lock:
            payment = self._table("payments").get(payment_id)
            if payment is None or payment.exported_at is None or payment.exported_at > cutoff \
                    or payment.core_applied_at is not None:
                return False
            payment.core_applied_at = at
            self._table("audit")[(entry.subject, entry.key)] = entry
            return True

    # --- the lock and the runs ---
    def acquire_lock(self, lock_id: str, *, holder: str, kind: str, source: str | None,
                     now: datetime, lease_until: datetime) -> ImportLease | None:
        with self.lock:
            held = self._table("import_runs").get(lock_id)
            if held is not None and held.lease_until >= now:
                return held
            self._table("import_runs")[lock_id] = ImportLease(holder, lease_until)
            return None

    def renew_lock(self, lock_id: str, *, holder: str, lease_until: datetime) -> bool:
        with self.lock:
            held = self._table("import_runs").get(lock_id)
            if held is None or held.holder != holder:
                return False
            self._table("import_runs")[lock_id] = ImportLease(holder, lease_until)
            return True

    def release_lock(self, lock_id: str, *, holder: str) -> None:
        with self.lock:
            held = self._table("import_runs").get(lock_id)
            if held is not None and held.holder == holder:
                del self._table("import_runs")[lock_id]

    def record_run(self, run: ImportRunRecord) -> None:
        self._table("import_runs")[run.batch_id] = run
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
