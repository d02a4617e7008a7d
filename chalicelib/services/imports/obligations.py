"""``obligations.csv``: obligations upserted under the cut-off rule, and the closing (SPEC §4).

Rows go in bounded batches of :data:`limits.BATCH_SIZE`: one consistent read of the batch's
members (keys only, through a bounded cache) and one of its obligations, new obligations
batch-written, changed ones updated in parallel (:data:`limits.UPDATE_WORKERS` threads).

* **The cut-off rule** (:func:`chalicelib.domain.imports.apply_cutoff_rule`): an older cut-off
  never overwrites a newer one (the row is rejected as stale); the portal payments the core knows
  at the row's cut-off are dropped and marked "Aplicado en la cooperativa" (once, with an audit
  entry) *before* the obligation is written, so a crash in between never loses the confirmation;
  the others are subtracted; an open payment's lock (``pending_payment_id``) is never touched.
  The write is conditioned on the portal payments read, so a payment applied meanwhile makes the
  import re-read and decide again (:data:`limits.CONFLICT_RETRIES` times) instead of resurrecting
  a balance. Every write stores the obligation's next version (see ``ImportStorage``).
* Optional columns ``late_interest``, ``fees``, ``insurance``, ``interest``, ``capital`` give the
  parts of a CREDITO row's instalment; they must add up to the row's ``amount_due`` and are stored
  as given (``Obligation.instalment_parts``, zeros dropped; ``domain/allocation`` applies the
  portal payments to them when shown).
* Optional column ``opening_date`` (``AAAA-MM-DD``): when the product was opened; PSE's anti-fraud
  rules for financial-services merchants ask for it (Wompi's ``reference_two``).
* Re-sending the same file changes nothing: those rows count as ``unchanged`` (each is still
  stamped with the import's batch id, the bookkeeping the closing needs).
* **Closing** (a full file, the default): every obligation a row names is stamped with the batch
  id (``import_batch``; ``open_shard`` while OPEN). Once the file is read, the OPEN obligations
  stamped by another batch are the ones the file did not list: found through the sparse index of
  open obligations (never a scan) and closed (CLOSED, never deleted) unless a payment holds one
  (reported, closed by a later import). A rejected row whose document and obligation id are
  readable still stamps its obligation (a typo must not close it); when some row could not be
  read at all, or the file failed, nothing is closed. A file that would close more obligations
  than it lists (and more than :data:`limits.CLOSE_GUARD_MIN`) closes nothing unless
  ``force_close`` (a truncated export must not empty the portal). One obligations import runs at
  a time (:mod:`.lock`).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO

from chalicelib.context import Context, Runtime, get_context
from chalicelib.domain import allocation, text
from chalicelib.domain.audit import AuditEntry
from chalicelib.domain.imports import (
    ObligationRow,
    apply_cutoff_rule,
    new_obligation,
    payments_to_look_up,
)
from chalicelib.domain.obligations import Obligation
from chalicelib.observability import log_event
from chalicelib.services.imports import limits
from chalicelib.services.imports.lock import ImportLock
from chalicelib.services.imports.report import (
    IMPORT_ACTOR,
    ImportReport,
    log_finished,
    new_batch_id,
    record_run,
)
from chalicelib.services.imports.rows import (
    FileError,
    Progress,
    Row,
    amount,
    document_number,
    free_text,
    identifier,
    is_document_number,
    one_of,
    read_rows,
)
from chalicelib.services.repositories import ImportStorage

OBLIGATION_TYPES = ("APORTE", "CREDITO", "AHORRO", "CONVENIO")
DEFAULT_DESCRIPTIONS = {
    "APORTE": "Aportes sociales",
    "CREDITO": "Crédito",
    "AHORRO": "Ahorro programado",
    "CONVENIO": "Convenio",
}
#: Optional columns: the parts of a loan instalment, in pesos, adding up to amount_due.
PART_COLUMNS = allocation.PARTS
OBLIGATION_COLUMNS = ("document_number", "obligation_id", "type", "product_number", "description",
                      "due_date", "amount_due", "minimum_amount", "maximum_amount", "cutoff",
                      *PART_COLUMNS, "opening_date")
OBLIGATION_REQUIRED = ("document_number", "obligation_id", "type", "product_number", "due_date",
                       "amount_due", "minimum_amount", "maximum_amount", "cutoff")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Key = tuple[str, str]


# --- a row ---------------------------------------------------------------------------------------

def parse_parts(values: dict[str, str], kind: str, amount_due: int,
                problems: list[str]) -> dict[str, int] | None:
    """The optional part columns: None when the row fills none of them; an empty cell next to
    filled ones counts as 0 (the sum must still match amount_due)."""
    given = [name for name in PART_COLUMNS if values.get(name, "")]
    if not given:
        return None
    if kind != "CREDITO":
        problems.append(f"solo las obligaciones CREDITO llevan el detalle de la cuota "
                        f"({', '.join(given)}); esta fila es {kind or 'de otro tipo'}")
        return None
    amounts = {name: amount(values, name, problems) for name in given}
    if min(amounts.values()) < 0:
        return None
    total = sum(amounts.values())
    if amount_due >= 0 and total != amount_due:
        problems.append(f"la suma del detalle de la cuota ({' + '.join(given)} = {total}) debe ser "
                        f"igual a amount_due ({amount_due})")
    return {name: pesos for name, pesos in amounts.items() if pesos}


def check_date(raw: str, column: str, problems: list[str]) -> None:
    try:
        if not DATE.fullmatch(raw):
            raise ValueError
        date.fromisoformat(raw)
    except ValueError:
        problems.append(f"{column} debe ser una fecha AAAA-MM-DD, se recibió '{text.shown(raw)}'")


def parse_cutoff(raw: str, problems: list[str]) -> datetime | None:
    try:
        if not raw.isascii():
            raise ValueError
        moment = datetime.fromisoformat(raw)
    except ValueError:
        problems.append(f"cutoff debe ser una fecha y hora ISO 8601 con zona horaria "
                        f"(p. ej. 2026-11-20T18:00:00-05:00), se recibió '{text.shown(raw)}'")
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        problems.append(f"cutoff debe incluir la zona horaria (p. ej. 2026-11-20T18:00:00-05:00), "
                        f"se recibió '{text.shown(raw)}'")
        return None
    return moment


def parse_obligation(row: Row, report: ImportReport, now: datetime) -> ObligationRow | None:
    values, problems = row.values, list[str]()
    number = document_number(values, problems)
    obligation_id = identifier(values, "obligation_id", 64, problems)
    kind = one_of(values, "type", OBLIGATION_TYPES, problems)
    product_number = identifier(values, "product_number", 40, problems)
    description = free_text(values, "description", 200, problems)
    due_date = values.get("due_date", "")
    check_date(due_date, "due_date", problems)
    opened_on = values.get("opening_date", "") or None
    if opened_on is not None:
        check_date(opened_on, "opening_date", problems)
    amount_due = amount(values, "amount_due", problems)
    minimum = amount(values, "minimum_amount", problems)
    maximum = amount(values, "maximum_amount", problems)
    if min(amount_due, minimum, maximum) >= 0:
        if minimum > amount_due:
            problems.append(f"minimum_amount ({minimum}) no puede ser mayor que amount_due "
                            f"({amount_due})")
        if amount_due > maximum:
            problems.append(f"amount_due ({amount_due}) no puede ser mayor que maximum_amount "
                            f"({maximum})")
    parts = parse_parts(values, kind, amount_due, problems)
    cutoff_text = values.get("cutoff", "")
    cutoff = parse_cutoff(cutoff_text, problems)
    if cutoff is not None and cutoff > now + limits.FUTURE_CUTOFF_SLACK:
        problems.append(f"cutoff '{text.shown(cutoff_text)}' está en el futuro")
    if problems or cutoff is None:  # no cutoff always came with a problem
        report.reject(row.line, "; ".join(problems))
        return None
    return ObligationRow(row.line, number, obligation_id, kind, product_number,
                         description or DEFAULT_DESCRIPTIONS[kind], due_date, amount_due, minimum,
                         maximum, cutoff, cutoff_text, parts, opened_on)


@dataclass
class ListedKey:
    """A rejected row whose document and obligation id are readable: the file lists it, so its
    obligation is stamped (not closed) though nothing else of the row is written."""

    line: int
    document_number: str
    obligation_id: str

    @property
    def key(self) -> Key:
        return self.document_number, self.obligation_id


def listed_key(row: Row) -> ListedKey | None:
    document = row.values.get("document_number", "")
    obligation_id = row.values.get("obligation_id", "")
    if is_document_number(document) and 0 < len(obligation_id) <= 64:
        return ListedKey(row.line, document, obligation_id)
    return None


@dataclass
class Outcome:
    status: str  # inserted | updated | unchanged | rejected
    reason: str = ""
    warning: str = ""


# --- the import ----------------------------------------------------------------------------------

class ObligationImporter:
    """One import run: bounded batches, a bounded member cache, parallel updates, the closing."""

    def __init__(self, storage: ImportStorage, report: ImportReport, now: datetime, workers: int,
                 batch_id: str | None = None) -> None:
        self.storage = storage
        self.report = report
        self.now = now
        self.batch_id = batch_id or report.batch_id or new_batch_id(now)
        report.batch_id = self.batch_id
        self.unreadable = 0  # rejected rows whose obligation cannot be told: closing is unsafe
        self._counting = threading.Lock()  # the pool's threads count confirmations
        self._members: OrderedDict[str, bool] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # --- the rows --------------------------------------------------------------------------------

    def _known_members(self, documents: set[str]) -> set[str]:
        missing = [d for d in documents if d not in self._members]
        if missing:
            found = self.storage.existing_members(missing)
            for document in missing:
                self._members[document] = document in found
        for document in documents:
            self._members.move_to_end(document)
        while len(self._members) > limits.MEMBER_CACHE:
            self._members.popitem(last=False)
        return {d for d in documents if self._members.get(d)}

    def _repeated(self, row: ObligationRow, first: int) -> None:
        self.report.reject(row.line, f"la obligación {row.obligation_id} del documento "
                                     f"{row.document_number} ya apareció en la línea {first}; se "
                                     "rechaza la repetición")

    def write(self, batch: list[ObligationRow | ListedKey]) -> None:
        """One batch: repeated keys, unknown members, one batch read, then the writes."""
        report = self.report
        rows: dict[Key, ObligationRow] = {}
        listed: dict[Key, ListedKey] = {}
        for item in batch:
            if isinstance(item, ListedKey):
                listed.setdefault(item.key, item)
            elif item.key in rows:
                self._repeated(item, rows[item.key].line)
            else:
                rows[item.key] = item
        known = self._known_members({row.document_number for row in rows.values()})
        for key, row in list(rows.items()):
            if row.document_number not in known:
                report.reject(row.line, f"no existe un asociado con documento "
                                        f"{row.document_number}; cargue primero el archivo de "
                                        "asociados")
                del rows[key]
        for key in rows:
            listed.pop(key, None)  # the valid row stamps it
        if not rows and not listed:
            return
        stored = self.storage.obligations([*rows, *listed])
        updates: list[tuple[ObligationRow, Obligation]] = []
        new: list[Obligation] = []
        for key, row in rows.items():
            current = stored.get(key)
            if current is None:
                new.append(new_obligation(row, batch_id=self.batch_id, now=self.now))
            elif current.import_batch == self.batch_id and (current.import_line or 0) > 0:
                self._repeated(row, int(current.import_line or 0))  # a row of an earlier batch
            else:
                updates.append((row, current))
        if new:
            self.storage.add_obligations(new)
        report.inserted += len(new)
        stamps = [item for key, item in listed.items()
                  if (current := stored.get(key)) is not None
                  and current.import_batch != self.batch_id]
        outcomes = self._pool.map(lambda u: self.upsert(*u), updates)
        for (row, _), outcome in zip(updates, outcomes, strict=True):
            if outcome.status == "rejected":
                report.reject(row.line, outcome.reason)
            else:
                setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            if outcome.warning:
                report.warn(row.line, outcome.warning)
        list(self._pool.map(self._stamp_listed, stamps))

    def _stamp_listed(self, item: ListedKey | ObligationRow) -> None:
        """A rejected row's obligation: listed by the file (negative line: not a valid row);
        one that does not exist has nothing to keep open."""
        self.storage.stamp(item.key, batch_id=self.batch_id, line=-item.line)

    def upsert(self, row: ObligationRow, current: Obligation | None) -> Outcome:
        """Apply one row to a stored obligation, re-reading when a portal payment lands meanwhile."""
        for _ in range(limits.CONFLICT_RETRIES + 1):
            if current is None:  # deleted meanwhile: store it again
                self.storage.add_obligations([new_obligation(row, batch_id=self.batch_id,
                                                             now=self.now)])
                return Outcome("inserted")
            outcome = self.apply(row, current)
            if outcome is not None:
                return outcome
            current = self.storage.obligation(row.document_number, row.obligation_id)
        self._stamp_listed(row)
        return Outcome("rejected", "la obligación cambió varias veces mientras se importaba "
                                   "(pagos en curso); reenvíe el archivo")

    def apply(self, row: ObligationRow, current: Obligation) -> Outcome | None:
        """The cut-off rule for one row; None when the obligation changed since it was read."""
        lookups = payments_to_look_up(row, current)
        decision = apply_cutoff_rule(row, current,
                                     self.storage.export_times(lookups) if lookups else {})
        if decision.stale:
            self._stamp_listed(row)
            return Outcome("rejected", f"el corte {row.cutoff_text} es anterior al ya cargado "
                                       f"({current.cutoff.isoformat()}); se conserva el saldo "
                                       "más reciente")
        warning = (f"el pago del portal {decision.undated[-1]} no tiene una hora válida; se sigue "
                   "descontando") if decision.undated else ""
        if not decision.changes and not decision.payments_dropped:  # only the stamp
            if not self.storage.stamp(row.key, batch_id=self.batch_id, line=row.line):
                return None  # deleted meanwhile
            return Outcome("unchanged", warning=warning)
        self._confirm_applied(row, decision.confirmed)
        if not self.storage.update_obligation(
                row.key, decision.changes, portal_payments_read=current.portal_payments or {},
                kept=decision.kept, reopen=decision.reopens, batch_id=self.batch_id,
                line=row.line, now=self.now):
            return None
        return Outcome(decision.outcome, warning=warning)

    # --- "Aplicado en la cooperativa" -----------------------------------------------------------

    def _confirm_applied(self, row: ObligationRow, payments: dict[str, dict[str, object]]) -> None:
        """Set ``core_applied_at`` once (conditional) with its audit entry, one write each."""
        for payment_id, entry in payments.items():
            audit = AuditEntry(
                subject=row.document_number, event="payment_applied_in_core", actor=IMPORT_ACTOR,
                at=self.now, suffix=Runtime.token(6), payment_id=payment_id,
                details={"reference": str(entry.get("reference") or ""),
                         "obligation_id": row.obligation_id, "cutoff": row.cutoff.isoformat(),
                         "batch_id": self.batch_id})
            if not self.storage.confirm_applied_in_core(payment_id, cutoff=row.cutoff,
                                                        at=self.now, entry=audit):
                continue  # confirmed by an earlier import, or a payment loaded by hand
            with self._counting:
                self.report.applied_in_core += 1
            log_event("payment_applied_in_core", document_number=row.document_number,
                      payment_id=payment_id, batch_id=self.batch_id)

    # --- closing the obligations the file does not list -----------------------------------------

    def _absent(self) -> Iterator[Key]:
        return self.storage.open_obligations_of_other_imports(self.batch_id)

    def close_absent(self, *, full: bool, force: bool) -> None:
        report = self.report
        if not full:
            report.closing = "partial"
        elif report.file_error is not None:
            report.closing = "file_error"
        elif self.unreadable:
            report.closing = "unreadable_rows"
        elif report.present == 0:
            report.closing = "empty"
        else:
            report.absent = sum(1 for _ in self._absent())
            if not force and report.absent > max(limits.CLOSE_GUARD_MIN, report.present):
                report.closing = "guard"
            else:
                report.closing = "done"
        if report.closing != "done":
            if full:
                log_event("import_closing_skipped", level=30, batch_id=self.batch_id,
                          reason=report.closing, absent=report.absent)
            return
        page: list[Key] = []
        for key in self._absent():
            page.append(key)
            if len(page) >= limits.BATCH_SIZE:
                self._close_page(page)
                page = []
        if page:
            self._close_page(page)

    def _close_page(self, page: list[Key]) -> None:
        for outcome in self._pool.map(self._close_one, page):
            if outcome == "closed":
                self.report.closed += 1
            elif outcome:
                self.report.keep_open(outcome)

    def _close_one(self, key: Key) -> str:
        """CLOSED, never deleted; refused while a payment holds it. ``closed``, a note, or ""."""
        if self.storage.close(key, batch_id=self.batch_id, now=self.now):
            return "closed"
        current = self.storage.obligation(*key)
        if current is not None and current.status == "OPEN" \
                and current.import_batch != self.batch_id and current.pending_payment_id:
            return (f"documento {current.document_number}, obligación "
                    f"{current.obligation_id}: tiene un pago en curso (referencia "
                    f"{current.pending_reference or current.pending_payment_id}); sigue "
                    "abierta y se cerrará en una próxima importación")
        return ""  # listed meanwhile, or already closed


def import_obligations(stream: BinaryIO, *, now: datetime, progress: Progress | None = None,
                       workers: int = limits.UPDATE_WORKERS, full: bool = True,
                       force_close: bool = False, source: str | None = None,
                       ctx: Context | None = None) -> ImportReport:
    """Upsert the obligations of an ``obligations.csv`` stream and, for a ``full`` file, close the
    OPEN ones it does not list; see the module docstring. Raises :class:`ImportBusy` when another
    obligations import is running (nothing was read or written then)."""
    ctx = ctx or get_context()
    report = ImportReport("obligations", batch_id=new_batch_id(now), source=source, full=full)
    with ctx.unit_of_work() as uow:
        storage = uow.imports
        lock = ImportLock(storage, report.batch_id or "", now, source, monotonic=ctx.monotonic)
        lock.acquire()
        started = ctx.monotonic()
        importer = ObligationImporter(storage, report, now, workers)
        try:
            read_obligations(stream, report, importer, lock, now, progress)
            lock.renew()
            importer.close_absent(full=full, force=force_close)
        finally:
            importer.close()
            lock.release()
            record_run(storage, report, now, ctx.monotonic() - started)
    log_finished(report)
    return report.finish()


def read_obligations(stream: BinaryIO, report: ImportReport, importer: ObligationImporter,
                     lock: ImportLock, now: datetime, progress: Progress | None) -> None:
    batch: list[ObligationRow | ListedKey] = []
    before = report.rejected
    try:
        for row in read_rows(stream, report, OBLIGATION_COLUMNS, OBLIGATION_REQUIRED, progress):
            # Rows read_rows() rejected itself (CSV, encoding, field count) name no obligation surely.
            importer.unreadable += report.rejected - before
            obligation = parse_obligation(row, report, now)
            item = obligation if obligation is not None else listed_key(row)
            if item is None:
                importer.unreadable += 1
            else:
                batch.append(item)
            if len(batch) >= limits.BATCH_SIZE:
                importer.write(batch)
                batch = []
                lock.renew()
            before = report.rejected
        importer.unreadable += report.rejected - before
    except FileError as exc:
        report.file_error = str(exc)
    if batch:
        importer.write(batch)
