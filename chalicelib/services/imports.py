"""Import of the core system's CSV files (SPEC §4): ``members.csv`` and ``obligations.csv``.

The file is streamed: physical lines are read in chunks and decoded one by one, rows are validated
as they come and written in bounded batches of :data:`BATCH_SIZE` (one ``BatchGetItem`` per batch
to compare with what is stored, ``BatchWriteItem`` for new items, a conditional ``UpdateItem`` for
changed ones). Memory does not hold the file; only a small digest per key is kept to reject
repeated keys (about 100 bytes per row).

Rules worth knowing:

* A member's password and security fields are never written here: existing members are changed
  with ``UpdateItem`` on the core-system fields only.
* Obligations follow the cut-off rule. ``Obligation.portal_payments`` maps a payment id to
  ``{"amount": int, "at": ISO time}`` for payments applied in the portal. A row with cut-off ``C``
  stores ``max(0, file amount - sum of portal payments with at > C)`` (amount due, minimum and
  maximum alike) and drops the portal payments with ``at <= C`` (the core already knows them).
  The update is conditioned on the portal payments read, so a payment applied meanwhile makes the
  import re-read and recompute instead of resurrecting a balance. ``pending_payment_id`` is never
  touched. A row whose cut-off is older than the stored one is rejected (stale file).
* Re-sending the same file writes nothing: those rows are counted as ``unchanged``.

Closing obligations absent from a newer full file is not done here yet; the keys seen in the
file are kept in :attr:`_ObligationImporter.seen` for that step.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, BinaryIO, Callable, Iterator, Sequence

from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.condition import Condition, size

from chalicelib.adapters.dynamo.models import Member, Obligation

BATCH_SIZE = 100  # BatchGetItem takes at most 100 keys
MAX_MESSAGES = 1000  # errors and warnings kept in a report (the rest are only counted)
MAX_LINE_BYTES = 1 << 20
CHUNK_BYTES = 1 << 16
PROGRESS_EVERY = 10_000
UPDATE_WORKERS = 8
CONFLICT_RETRIES = 3
FUTURE_CUTOFF_SLACK = timedelta(minutes=10)
MAX_AMOUNT_DIGITS = 15

DOCUMENT_TYPES = ("CC", "CE", "TI", "PP", "NIT")
MEMBER_STATUSES = ("ACTIVO", "INACTIVO", "BLOQUEADO")
OBLIGATION_TYPES = ("APORTE", "CREDITO", "AHORRO", "CONVENIO")
DEFAULT_DESCRIPTIONS = {
    "APORTE": "Aportes sociales",
    "CREDITO": "Crédito",
    "AHORRO": "Ahorro programado",
    "CONVENIO": "Convenio",
}

MEMBER_COLUMNS = ("document_type", "document_number", "full_name", "email", "phone", "status")
MEMBER_REQUIRED = ("document_type", "document_number", "full_name", "email", "status")
OBLIGATION_COLUMNS = ("document_number", "obligation_id", "type", "product_number", "description",
                      "due_date", "amount_due", "minimum_amount", "maximum_amount", "cutoff")
OBLIGATION_REQUIRED = ("document_number", "obligation_id", "type", "product_number", "due_date",
                       "amount_due", "minimum_amount", "maximum_amount", "cutoff")

_DIGITS = re.compile(r"[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
_PHONE = re.compile(r"[0-9+() -]{7,20}")

Progress = Callable[[int], None]


# --- report ----------------------------------------------------------------------------------

@dataclass
class ImportReport:
    """What an import did. ``errors``/``warnings`` are ``(line, reason)``; reasons are Spanish."""

    kind: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    errors_omitted: int = 0
    warnings_omitted: int = 0
    file_error: str | None = None

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_MESSAGES:
            self.errors.append((line, reason))
        else:
            self.errors_omitted += 1

    def finish(self) -> "ImportReport":
        """Order the messages by line (batched checks report after later rows were read)."""
        self.errors.sort()
        self.warnings.sort()
        return self

    def warn(self, line: int, reason: str) -> None:
        if len(self.warnings) < MAX_MESSAGES:
            self.warnings.append((line, reason))
        else:
            self.warnings_omitted += 1

    @property
    def ok(self) -> bool:
        """True when the whole file went in (warnings allowed)."""
        return self.file_error is None and self.rejected == 0

    @property
    def exit_code(self) -> int:
        """0 everything in, 1 some rows rejected, 2 the file itself could not be read."""
        if self.file_error is not None:
            return 2
        return 1 if self.rejected else 0

    def to_text(self) -> str:
        """A human summary in Spanish."""
        title = {"members": "asociados", "obligations": "obligaciones"}.get(self.kind, self.kind)
        lines = [f"Importación de {title}"]
        if self.file_error:
            lines.append(f"ERROR DEL ARCHIVO: {self.file_error}")
        lines.append(f"  filas leídas:   {self.rows}")
        lines.append(f"  nuevas:         {self.inserted}")
        lines.append(f"  actualizadas:   {self.updated}")
        lines.append(f"  sin cambios:    {self.unchanged}")
        lines.append(f"  rechazadas:     {self.rejected}")
        if self.errors:
            lines.append("Filas rechazadas:")
            lines.extend(f"  línea {line}: {reason}" for line, reason in self.errors)
            if self.errors_omitted:
                lines.append(f"  ... y {self.errors_omitted} filas rechazadas más")
        if self.warnings:
            lines.append("Advertencias:")
            lines.extend(f"  línea {line}: {reason}" for line, reason in self.warnings)
            if self.warnings_omitted:
                lines.append(f"  ... y {self.warnings_omitted} advertencias más")
        if self.ok:
            lines.append("Resultado: todas las filas fueron cargadas.")
        elif self.file_error is None:
            lines.append("Resultado: se cargaron las filas válidas; corrija las rechazadas y "
                         "reenvíe el archivo.")
        return "\n".join(lines)


# --- reading ---------------------------------------------------------------------------------

class FileError(Exception):
    """The file as a whole cannot be imported (encoding, header, a broken line)."""


class _Lines:
    """The physical lines of a binary stream as text; remembers the ones that were not UTF-8."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.number = 0
        self.bad: dict[int, str] = {}

    def _decode(self, raw: bytes) -> str:
        self.number += 1
        if self.number == 1:
            if raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise FileError("el archivo está en UTF-16; guárdelo como UTF-8 (CSV UTF-8)")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.bad[self.number] = (f"el texto no es UTF-8 válido (byte 0x{raw[exc.start]:02X} "
                                     f"en la posición {exc.start + 1}); guarde el archivo como UTF-8")
            return raw.decode("utf-8", errors="replace")

    def __iter__(self) -> Iterator[str]:
        buffer = bytearray()
        while True:
            chunk = self._stream.read(CHUNK_BYTES)
            if not chunk:
                break
            buffer += chunk
            start = 0
            while True:
                end = buffer.find(b"\n", start)
                if end < 0:
                    break
                yield self._decode(bytes(buffer[start:end + 1]))
                start = end + 1
            del buffer[:start]
            if len(buffer) > MAX_LINE_BYTES:
                raise FileError(f"la línea {self.number + 1} supera {MAX_LINE_BYTES} bytes")
        if buffer:
            yield self._decode(bytes(buffer))


@dataclass
class _Row:
    line: int
    values: dict[str, str]


def _detect_delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _rows(stream: BinaryIO, report: ImportReport, columns: Sequence[str],
          required: Sequence[str], progress: Progress | None) -> Iterator[_Row]:
    """Rows as ``{column: trimmed value}``; rejects unreadable rows itself. Raises FileError."""
    lines = _Lines(stream)
    physical = iter(lines)
    header_line = next(physical, None)
    if header_line is None or not header_line.strip():
        raise FileError("el archivo está vacío o la primera línea no es el encabezado")
    if 1 in lines.bad:
        raise FileError(f"encabezado (línea 1): {lines.bad[1]}")
    delimiter = _detect_delimiter(header_line)
    header = [name.strip().lower() for name in next(csv.reader([header_line], delimiter=delimiter))]
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise FileError(f"columnas repetidas en el encabezado: {', '.join(repeated)}")
    missing = [name for name in required if name not in header]
    if missing:
        raise FileError(f"faltan columnas obligatorias: {', '.join(missing)} "
                        f"(encabezado recibido: {'; '.join(header)}; delimitador '{delimiter}')")
    index = {name: header.index(name) for name in columns if name in header}
    reader = csv.reader(physical, delimiter=delimiter)
    last_line = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            _count_row(report, progress)
            report.reject(lines.number, f"no se pudo leer la fila CSV ({exc})")
            last_line = lines.number
            continue
        first, last_line = last_line + 1, lines.number
        if not any(value.strip() for value in fields):
            continue  # blank line
        _count_row(report, progress)
        bad = next((lines.bad.pop(n) for n in range(first, last_line + 1) if n in lines.bad), None)
        if bad is not None:
            report.reject(first, bad)
            continue
        if len(fields) < len(header) or any(v.strip() for v in fields[len(header):]):
            report.reject(first, f"la fila tiene {len(fields)} campos y el encabezado "
                                 f"{len(header)} (revise el delimitador '{delimiter}' y las comillas)")
            continue
        yield _Row(first, {name: fields[i].strip() for name, i in index.items()})


def _count_row(report: ImportReport, progress: Progress | None) -> None:
    report.rows += 1
    if progress is not None and report.rows % PROGRESS_EVERY == 0:
        progress(report.rows)


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."


def _key_digest(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _document_number(values: dict[str, str], problems: list[str]) -> str:
    number = values.get("document_number", "")
    if not (_DIGITS.fullmatch(number) and 5 <= len(number) <= 15):
        problems.append(f"document_number debe tener entre 5 y 15 dígitos, se recibió "
                        f"'{_shown(number)}'")
    return number


def _one_of(values: dict[str, str], name: str, allowed: Sequence[str],
            problems: list[str]) -> str:
    value = values.get(name, "").upper()
    if value not in allowed:
        options = ", ".join(allowed[:-1]) + " o " + allowed[-1]
        problems.append(f"{name} debe ser {options}, se recibió '{_shown(values.get(name, ''))}'")
    return value


def _amount(values: dict[str, str], name: str, problems: list[str]) -> int:
    raw = values.get(name, "")
    if not (_DIGITS.fullmatch(raw) and len(raw) <= MAX_AMOUNT_DIGITS):
        problems.append(f"{name} debe ser un entero de pesos no negativo, se recibió '{_shown(raw)}'")
        return -1
    return int(raw)


# --- members ---------------------------------------------------------------------------------

@dataclass
class _MemberRow:
    line: int
    document_number: str
    document_type: str
    full_name: str
    email: str | None
    phone: str | None
    status: str

    def same_as(self, member: Member) -> bool:
        return (member.document_type, member.full_name, member.email, member.phone,
                member.status) == (self.document_type, self.full_name, self.email, self.phone,
                                   self.status)


def _parse_member(row: _Row, report: ImportReport) -> _MemberRow | None:
    values, problems = row.values, []
    document_type = _one_of(values, "document_type", DOCUMENT_TYPES, problems)
    number = _document_number(values, problems)
    full_name = " ".join(values.get("full_name", "").split())
    if not full_name:
        problems.append("full_name está vacío")
    elif len(full_name) > 200:
        problems.append("full_name supera 200 caracteres")
    status = _one_of(values, "status", MEMBER_STATUSES, problems)
    if problems:
        report.reject(row.line, "; ".join(problems))
        return None
    email: str | None = values.get("email", "")
    if not email:
        report.warn(row.line, f"el asociado {number} no tiene correo electrónico: no podrá "
                              "recuperar su contraseña")
        email = None
    elif len(email) > 254 or not _EMAIL.fullmatch(email):
        report.warn(row.line, f"email '{_shown(email)}' no es una dirección válida: el asociado "
                              f"{number} queda sin correo y no podrá recuperar su contraseña")
        email = None
    phone: str | None = values.get("phone", "") or None
    if phone is not None and not _PHONE.fullmatch(phone):
        report.warn(row.line, f"phone '{_shown(phone)}' no es un teléfono válido; se omite")
        phone = None
    return _MemberRow(row.line, number, document_type, full_name, email, phone, status)


def _write_members(batch: list[_MemberRow], report: ImportReport, now: datetime) -> None:
    stored = {m.document_number: m for m in
              Member.batch_get([r.document_number for r in batch], consistent_read=True)}
    with Member.batch_write() as writer:
        for row in batch:
            member = stored.get(row.document_number)
            if member is None:  # new: no password, the first access is the recovery flow
                writer.save(Member(row.document_number, document_type=row.document_type,
                                   full_name=row.full_name, email=row.email, phone=row.phone,
                                   status=row.status, imported_at=now, updated_at=now))
                report.inserted += 1
            elif row.same_as(member):
                report.unchanged += 1
            else:
                _update_member(member, row, now)
                report.updated += 1


def _update_member(member: Member, row: _MemberRow, now: datetime) -> None:
    """Only the core system's fields: never the password or the security state."""
    actions = [
        Member.document_type.set(row.document_type),
        Member.full_name.set(row.full_name),
        Member.email.set(row.email) if row.email else Member.email.remove(),
        Member.phone.set(row.phone) if row.phone else Member.phone.remove(),
        Member.status.set(row.status),
        Member.imported_at.set(now),
        Member.updated_at.set(now),
    ]
    _update_quietly(Member, (member.document_number,), actions, Member.document_number.exists())


def import_members(stream: BinaryIO, *, now: datetime,
                   progress: Progress | None = None) -> ImportReport:
    """Upsert the members of a ``members.csv`` stream; see the module docstring."""
    report = ImportReport("members")
    seen: dict[int, int] = {}
    batch: list[_MemberRow] = []
    try:
        for row in _rows(stream, report, MEMBER_COLUMNS, MEMBER_REQUIRED, progress):
            member = _parse_member(row, report)
            if member is None:
                continue
            digest = _key_digest(member.document_number)
            if digest in seen:
                report.reject(row.line, f"el documento {member.document_number} ya apareció en la "
                                        f"línea {seen[digest]}; se rechaza la repetición")
                continue
            seen[digest] = row.line
            batch.append(member)
            if len(batch) >= BATCH_SIZE:
                _write_members(batch, report, now)
                batch = []
    except FileError as exc:
        report.file_error = str(exc)
    if batch:
        _write_members(batch, report, now)
    return report.finish()


# --- obligations -----------------------------------------------------------------------------

@dataclass
class _ObligationRow:
    line: int
    document_number: str
    obligation_id: str
    type: str
    product_number: str
    description: str
    due_date: str
    amount_due: int
    minimum_amount: int
    maximum_amount: int
    cutoff: datetime
    cutoff_text: str

    @property
    def key(self) -> tuple[str, str]:
        return self.document_number, self.obligation_id


def _parse_cutoff(raw: str, problems: list[str]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        problems.append(f"cutoff debe ser una fecha y hora ISO 8601 con zona horaria "
                        f"(p. ej. 2026-11-20T18:00:00-05:00), se recibió '{_shown(raw)}'")
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        problems.append(f"cutoff debe incluir la zona horaria (p. ej. 2026-11-20T18:00:00-05:00), "
                        f"se recibió '{_shown(raw)}'")
        return None
    return moment


def _parse_obligation(row: _Row, report: ImportReport, now: datetime) -> _ObligationRow | None:
    values, problems = row.values, []
    number = _document_number(values, problems)
    obligation_id = values.get("obligation_id", "")
    if not obligation_id:
        problems.append("obligation_id está vacío")
    elif len(obligation_id) > 64:
        problems.append("obligation_id supera 64 caracteres")
    kind = _one_of(values, "type", OBLIGATION_TYPES, problems)
    product_number = values.get("product_number", "")
    if not product_number:
        problems.append("product_number está vacío")
    elif len(product_number) > 40:
        problems.append("product_number supera 40 caracteres")
    description = " ".join(values.get("description", "").split())
    if len(description) > 200:
        problems.append("description supera 200 caracteres")
    due_date = values.get("due_date", "")
    try:
        if not _DATE.fullmatch(due_date):
            raise ValueError
        date.fromisoformat(due_date)
    except ValueError:
        problems.append(f"due_date debe ser una fecha AAAA-MM-DD, se recibió '{_shown(due_date)}'")
    amount_due = _amount(values, "amount_due", problems)
    minimum = _amount(values, "minimum_amount", problems)
    maximum = _amount(values, "maximum_amount", problems)
    if min(amount_due, minimum, maximum) >= 0:
        if minimum > amount_due:
            problems.append(f"minimum_amount ({minimum}) no puede ser mayor que amount_due "
                            f"({amount_due})")
        if amount_due > maximum:
            problems.append(f"amount_due ({amount_due}) no puede ser mayor que maximum_amount "
                            f"({maximum})")
    cutoff_text = values.get("cutoff", "")
    cutoff = _parse_cutoff(cutoff_text, problems)
    if cutoff is not None and cutoff > now + FUTURE_CUTOFF_SLACK:
        problems.append(f"cutoff '{_shown(cutoff_text)}' está en el futuro")
    if problems:
        report.reject(row.line, "; ".join(problems))
        return None
    assert cutoff is not None
    return _ObligationRow(row.line, number, obligation_id, kind, product_number,
                          description or DEFAULT_DESCRIPTIONS[kind], due_date, amount_due, minimum,
                          maximum, cutoff, cutoff_text)


def _payment_time(payment: dict) -> datetime | None:  # type: ignore[type-arg]
    try:
        moment = datetime.fromisoformat(str(payment.get("at")))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass
class _Outcome:
    status: str  # inserted | updated | unchanged | rejected
    reason: str = ""
    warning: str = ""


class _ObligationImporter:
    """One import run: member existence cache, keys seen, bounded batches, parallel updates."""

    MEMBER_CACHE = 50_000

    def __init__(self, report: ImportReport, now: datetime, workers: int) -> None:
        self.report = report
        self.now = now
        self.seen: dict[int, int] = {}  # key digest -> first line (also for closing absent ones)
        self._members: OrderedDict[str, bool] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def accept(self, row: _ObligationRow) -> bool:
        digest = _key_digest(row.document_number, row.obligation_id)
        if digest in self.seen:
            self.report.reject(row.line, f"la obligación {row.obligation_id} del documento "
                                         f"{row.document_number} ya apareció en la línea "
                                         f"{self.seen[digest]}; se rechaza la repetición")
            return False
        self.seen[digest] = row.line
        return True

    def _known_members(self, documents: set[str]) -> set[str]:
        missing = [d for d in documents if d not in self._members]
        if missing:
            found = {m.document_number for m in Member.batch_get(
                missing, consistent_read=True, attributes_to_get=["document_number"])}
            for document in missing:
                self._members[document] = document in found
        for document in documents:
            self._members.move_to_end(document)
        while len(self._members) > self.MEMBER_CACHE:
            self._members.popitem(last=False)
        return {d for d in documents if self._members.get(d)}

    def write(self, batch: list[_ObligationRow]) -> None:
        report = self.report
        known = self._known_members({row.document_number for row in batch})
        rows = []
        for row in batch:
            if row.document_number in known:
                rows.append(row)
            else:
                report.reject(row.line, f"no existe un asociado con documento "
                                        f"{row.document_number}; cargue primero el archivo de "
                                        "asociados")
        if not rows:
            return
        stored = {(o.document_number, o.obligation_id): o for o in
                  Obligation.batch_get([row.key for row in rows], consistent_read=True)}
        updates = []
        with Obligation.batch_write() as writer:
            for row in rows:
                current = stored.get(row.key)
                if current is None:
                    writer.save(self._new_item(row))
                    report.inserted += 1
                else:
                    updates.append((row, current))
        for (row, _), outcome in zip(updates, self._pool.map(lambda u: self._upsert(*u), updates)):
            if outcome.status == "rejected":
                report.reject(row.line, outcome.reason)
            else:
                setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            if outcome.warning:
                report.warn(row.line, outcome.warning)

    def _new_item(self, row: _ObligationRow) -> Obligation:
        return Obligation(row.document_number, row.obligation_id, type=row.type,
                          product_number=row.product_number, description=row.description,
                          due_date=row.due_date, amount_due=row.amount_due,
                          minimum_amount=row.minimum_amount, maximum_amount=row.maximum_amount,
                          cutoff=row.cutoff, status="OPEN", updated_at=self.now)

    def _upsert(self, row: _ObligationRow, current: Obligation | None) -> _Outcome:
        """Apply one row to a stored obligation, re-reading when a portal payment lands meanwhile."""
        for _ in range(CONFLICT_RETRIES + 1):
            if current is None:  # deleted meanwhile: store it again
                self._new_item(row).save()
                return _Outcome("inserted")
            try:
                return self._apply(row, current)
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise
            try:
                current = Obligation.get(row.document_number, row.obligation_id,
                                         consistent_read=True)
            except DoesNotExist:
                current = None
        return _Outcome("rejected", "la obligación cambió varias veces mientras se importaba "
                                    "(pagos en curso); reenvíe el archivo")

    def _apply(self, row: _ObligationRow, current: Obligation) -> _Outcome:
        if current.cutoff is not None and row.cutoff < current.cutoff:
            return _Outcome("rejected", f"el corte {row.cutoff_text} es anterior al ya cargado "
                                        f"({current.cutoff.isoformat()}); se conserva el saldo "
                                        "más reciente")
        payments = current.portal_payments.as_dict() if current.portal_payments else {}
        kept, warning = {}, ""
        for payment_id, payment in payments.items():
            moment = _payment_time(payment)
            if moment is None:
                warning = (f"el pago del portal {payment_id} no tiene una hora válida; se sigue "
                           "descontando")
            if moment is None or moment > row.cutoff:
                kept[payment_id] = payment
        paid_after = sum(int(p.get("amount") or 0) for p in kept.values())
        wanted = {
            "type": row.type,
            "product_number": row.product_number,
            "description": row.description,
            "due_date": row.due_date,
            "amount_due": max(0, row.amount_due - paid_after),
            "minimum_amount": max(0, row.minimum_amount - paid_after),
            "maximum_amount": max(0, row.maximum_amount - paid_after),
            "cutoff": row.cutoff,
            "status": "OPEN",
        }
        changed = [name for name, value in wanted.items() if getattr(current, name) != value]
        if not changed and len(kept) == len(payments):
            return _Outcome("unchanged", warning=warning)
        actions = [getattr(Obligation, name).set(wanted[name]) for name in changed]
        actions.append(Obligation.updated_at.set(self.now))
        if len(kept) != len(payments):
            actions.append(Obligation.portal_payments.set(kept) if kept
                           else Obligation.portal_payments.remove())
        _update_quietly(Obligation, (row.document_number, row.obligation_id), actions,
                        _same_payments(payments))
        return _Outcome("updated", warning=warning)


def _update_quietly(model: type[Member] | type[Obligation], key: tuple[str, ...],
                    actions: list[Any], condition: Condition) -> None:
    """``UpdateItem`` without returning the item (``Model.update`` asks for ALL_NEW); UpdateError."""
    model._get_connection().update_item(*key, actions=actions, condition=condition)


def _same_payments(payments: dict) -> Condition:  # type: ignore[type-arg]
    """The item exists and still has exactly the portal payments that were read."""
    condition = Obligation.document_number.exists()
    if not payments:
        return condition & (Obligation.portal_payments.does_not_exist()
                            | (size(Obligation.portal_payments) == 0))
    # exists() first: moto cannot take size() of a missing attribute (DynamoDB says false).
    condition = condition & Obligation.portal_payments.exists()
    condition = condition & (size(Obligation.portal_payments) == len(payments))
    for payment_id in payments:
        condition = condition & Obligation.portal_payments[payment_id].exists()
    return condition


def import_obligations(stream: BinaryIO, *, now: datetime, progress: Progress | None = None,
                       workers: int = UPDATE_WORKERS) -> ImportReport:
    """Upsert the obligations of an ``obligations.csv`` stream; see the module docstring."""
    report = ImportReport("obligations")
    importer = _ObligationImporter(report, now, workers)
    batch: list[_ObligationRow] = []
    try:
        try:
            for row in _rows(stream, report, OBLIGATION_COLUMNS, OBLIGATION_REQUIRED, progress):
                obligation = _parse_obligation(row, report, now)
                if obligation is None or not importer.accept(obligation):
                    continue
                batch.append(obligation)
                if len(batch) >= BATCH_SIZE:
                    importer.write(batch)
                    batch = []
        except FileError as exc:
            report.file_error = str(exc)
        if batch:
            importer.write(batch)
    finally:
        importer.close()
    return report.finish()


