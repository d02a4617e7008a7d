"""In-memory fakes of the ports: a unit of work whose commit checks what DynamoDB's conditions
would (an entity's version, a key's absence) and applies all or nothing.

    store = FakeStore()
    ctx = Context(settings, units_of_work=store.unit_of_work)
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.backoffice import (
    OPEN,
    Export,
    PaymentFigures,
    ReminderClaim,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.events import DomainEvent
from chalicelib.domain.members import Member
from chalicelib.domain.obligations import Obligation, ObligationChange
from chalicelib.domain.payments import (
    APPROVED,
    EXPORT_READY,
    PENDING,
    REVIEW_FLAG,
    Claim,
    GatewayEventRecord,
    Payment,
)
from chalicelib.domain.sessions import Recovery, Session, StaffSession
from chalicelib.services.repositories import (
    AuditLog,
    BackOffice,
    BankListCache,
    ClaimRepository,
    ExportRepository,
    GatewayEventLog,
    ImportLease,
    ImportRunRecord,
    ImportStorage,
    MemberRepository,
    ObligationRepository,
    Page,
    PaymentFilter,
    PaymentRepository,
    RateCounters,
    RecoveryRepository,
    ReminderRepository,
    ResumeKey,
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
        # back office
        self.backoffice = FakeBackOffice(self)
        self.exports = FakeExports(self)
        self.reminders = FakeReminders(self)
        # pay: the payment engine
        self.payments = FakePayments(self)
        self.obligations = FakeObligations(self)
        self.gateway_events = FakeGatewayEvents(self)
        self.claims = FakeClaims(self)
        self.bank_lists = FakeBankLists(self)
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


# --- back office ---------------------------------------------------------------------------------
#
# Tables: "payments" (Payment by id), "obligations" (Obligation by (document, id)), "exports",
# "reminders" (ReminderClaim by key), "gateway_events" (notifications by id),
# "sessions" (Session by hash, as FakeSessions keeps them).

def fake_page(items: list[Any], *, limit: int, start: ResumeKey | None) -> Page[Any]:
    """A page over an ordered list; the resume key is the position after the page."""
    offset = int(start["offset"]) if start else 0
    chunk = items[offset:offset + limit]
    more = offset + limit < len(items)
    return Page(copy.deepcopy(chunk), {"offset": offset + limit} if more else None)


class FakeBackOffice(BackOffice):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def payments(self) -> list[Payment]:
        return list(self.uow.store.tables["payments"].values())

    def payment_page(self, search: PaymentFilter, *, limit: int,
                     start: ResumeKey | None) -> Page[Payment]:
        def matches(p: Payment) -> bool:
            return all(wanted is None or wanted == value for wanted, value in (
                (search.reference, p.reference), (search.cus, p.cus),
                (search.document, p.document_number), (search.status, p.status))) and (
                search.created is None or search.created[0] <= p.created_at <= search.created[1])

        found = sorted(filter(matches, self.payments()), key=lambda p: p.created_at, reverse=True)
        return fake_page(found, limit=limit, start=start)

    def review_page(self, *, limit: int, start: ResumeKey | None) -> Page[Payment]:
        flagged = sorted((p for p in self.payments() if p.review_flag == REVIEW_FLAG),
                         key=lambda p: p.created_at)
        return fake_page(flagged, limit=limit, start=start)

    def audit_page(self, subject: str, *, limit: int, start: ResumeKey | None) -> Page[AuditEntry]:
        return fake_page(self.uow.audit.of(subject, limit=10**9), limit=limit, start=start)

    def payment_figures(self, status: str, *, since: datetime) -> list[PaymentFigures]:
        return [PaymentFigures(status=p.status, amount=p.amount, created_at=p.created_at,
                               paid=tuple((i.type, i.amount) for i in p.items))
                for p in self.payments() if p.status == status and p.created_at >= since]

    def count_in_status(self, status: str) -> int:
        return sum(p.status == status for p in self.payments())

    def count_flagged(self) -> int:
        return sum(p.review_flag == REVIEW_FLAG for p in self.payments())

    def gateway_notices(self, reference: str) -> list[GatewayEventRecord]:
        notices = [e for e in self.uow.store.tables["gateway_events"].values() if e.reference == reference]
        return copy.deepcopy(sorted(notices, key=lambda e: e.received_at))

    def payment_audit(self, document_number: str, payment_id: str) -> list[AuditEntry]:
        return [e for e in self.uow.audit.of(document_number, limit=10**9) if e.payment_id == payment_id]

    def sessions_of(self, document_number: str) -> list[Session]:
        return copy.deepcopy([s for s in self.uow.store.tables["sessions"].values()
                              if s.document_number == document_number])


class FakeExports(ExportRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    @property
    def payments(self) -> dict[Hashable, Payment]:
        return self.uow.store.tables["payments"]

    def add(self, export: Export) -> None:
        self.uow.stage(f"export:{export.export_id}", "exports", export.export_id, export, ABSENT)

    def complete(self, export: Export) -> None:
        self.uow.stage(f"export:{export.export_id}", "exports", export.export_id, export,
                       lambda stored: stored is not None and stored.status == OPEN)

    def get(self, export_id: str) -> Export | None:
        export: Export | None = self.uow.store.read("exports", export_id)
        return export

    def get_many(self, export_ids: list[str]) -> list[Export]:
        return [e for e in map(self.get, export_ids[:100]) if e is not None]

    def open_before(self, older_than: datetime) -> list[Export]:
        return copy.deepcopy([e for e in self.uow.store.tables["exports"].values()
                              if e.status == OPEN and e.created_at < older_than])

    def take_lease(self, export: Export, *, now: datetime, until: datetime) -> bool:
        stored = self.uow.store.tables["exports"].get(export.export_id)
        if stored is None or stored.status != OPEN or not (stored.lease_until and stored.lease_until < now):
            return False
        stored.lease_until = export.lease_until = until
        return True

    def queued(self, *, page_size: int) -> Iterator[str]:
        waiting = [p for p in self.payments.values()
                   if p.export_pending == EXPORT_READY and p.approved_at is not None]
        return iter([p.payment_id for p in sorted(waiting, key=lambda p: p.approved_at or p.created_at)])

    def claim(self, payment_id: str, *, export_id: str, now: datetime) -> Payment | None:
        stored = self.payments.get(payment_id)
        if stored is None or stored.export_pending is None or stored.status != APPROVED:
            return None
        claimed = replace(stored, export_pending=None, exported_at=now, export_id=export_id,
                          version=stored.version + 1)
        self.payments[payment_id] = claimed
        return copy.deepcopy(claimed)

    def payments_of(self, export_id: str) -> list[Payment]:
        mine = [p for p in self.payments.values() if p.export_id == export_id]
        return copy.deepcopy(sorted(mine, key=lambda p: (p.approved_at or p.created_at, p.reference)))

    def exported_before(self, payment_ids: list[str], cutoff: datetime) -> set[str]:
        return {i for i in payment_ids if (p := self.payments.get(i)) is not None
                and p.exported_at is not None and p.exported_at <= cutoff}

    def confirm_in_core(self, payment_id: str, *, cutoff: datetime, now: datetime) -> bool:
        stored = self.payments.get(payment_id)
        if (stored is None or stored.exported_at is None or stored.exported_at > cutoff
                or stored.core_applied_at is not None):
            return False
        self.payments[payment_id] = replace(stored, core_applied_at=now, version=stored.version + 1)
        return True


class FakeReminders(ReminderRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def due_on(self, due_date: str) -> list[Obligation]:
        return copy.deepcopy([o for o in self.uow.store.tables["obligations"].values()
                              if o.due_date == due_date and o.status == "OPEN"])

    def members_of(self, document_numbers: list[str]) -> dict[str, Member]:
        found = {d: self.uow.members.get(d) for d in document_numbers}
        return {d: m for d, m in found.items() if m is not None}

    def pending_in(self, shard: str, *, created_before: datetime) -> list[Payment]:
        return copy.deepcopy([p for p in self.uow.store.tables["payments"].values()
                              if p.poll_shard == shard and p.status == PENDING
                              and p.created_at <= created_before])

    def claim(self, claim: ReminderClaim) -> bool:
        claims = self.uow.store.tables["reminders"]
        if claim.key in claims:
            return False
        claims[claim.key] = claim
        return True

    def release(self, key: str) -> None:
        self.uow.store.tables["reminders"].pop(key, None)
# --- pay: the payment engine -------------------------------------------------------------------

class FakePayments(PaymentRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def all(self) -> list[Payment]:
        return copy.deepcopy(list(self.uow.store.tables["payments"].values()))

    def get(self, payment_id: str) -> Payment | None:
        payment: Payment | None = self.uow.store.read("payments", payment_id)
        return payment

    def by_reference(self, reference: str) -> Payment | None:
        return next((p for p in self.all() if p.reference == reference), None)

    def of_member(self, document_number: str, *, limit: int | None = None) -> list[Payment]:
        found = sorted((p for p in self.all() if p.document_number == document_number),
                       key=lambda p: p.created_at, reverse=True)
        return found[:limit] if limit is not None else found

    def due(self, shard: str, now: datetime, *, page_size: int) -> Iterator[Payment]:
        return iter(sorted((p for p in self.all() if p.poll_shard == shard
                            and p.next_poll_at is not None and p.next_poll_at <= now),
                           key=lambda p: p.next_poll_at or now))

    def add(self, payment: Payment) -> None:
        self.uow.stage("payment", "payments", payment.payment_id, payment, ABSENT)

    def update(self, payment: Payment) -> None:
        self.uow.stage("payment", "payments", payment.payment_id, payment, payment.version)


class FakeObligations(ObligationRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def member_and_obligations(self, document_number: str, obligation_ids: Sequence[str]
                               ) -> tuple[Member | None, dict[str, Obligation]]:
        member: Member | None = self.uow.store.read("members", document_number)
        found = {oid: self.uow.store.read("obligations", (document_number, oid)) for oid in obligation_ids}
        return member, {oid: o for oid, o in found.items() if o is not None}

    def of_member(self, document_number: str) -> list[Obligation]:
        return copy.deepcopy([o for (d, _), o in sorted(self.uow.store.tables["obligations"].items())
                              if d == document_number])

    def change(self, change: ObligationChange) -> None:
        key = (change.document_number, change.obligation_id)
        obligation: Obligation | None = self.uow.store.read("obligations", key)
        if obligation is not None:
            obligation.apply(change)
        self.uow.stage(change.label, "obligations", key, obligation, change.version)


class FakeGatewayEvents(GatewayEventLog):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def add(self, event: GatewayEventRecord) -> None:
        self.uow.stage("event", "gateway_events", event.event_id, event, ABSENT)


class FakeClaims(ClaimRepository):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def get(self, key: str, now: datetime) -> Claim | None:
        claim: Claim | None = self.uow.store.read("claims", key)
        return claim if claim is not None and claim.live(now) else None

    def add(self, claim: Claim, now: datetime) -> None:
        self.uow.stage(claim.label, "claims", claim.key, claim,
                       lambda current: current is None or not current.live(now))


class FakeBankLists(BankListCache):
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self.uow = uow

    def get(self, cache_key: str) -> tuple[list[tuple[str, str]], datetime] | None:
        cached: tuple[list[tuple[str, str]], datetime] | None = self.uow.store.read("bank_lists",
                                                                                    cache_key)
        return cached

    def put(self, cache_key: str, pairs: Sequence[tuple[str, str]], *, now: datetime,
            expires_at: datetime) -> None:
        self.uow.store.tables["bank_lists"][cache_key] = (list(pairs), expires_at)
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
