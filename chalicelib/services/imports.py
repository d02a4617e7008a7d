"""Import of the core system's CSV files (SPEC §4): ``members.csv`` and ``obligations.csv``.

The file is streamed: physical lines are read in chunks and decoded one by one, rows are validated
as they come and written in bounded batches of :data:`BATCH_SIZE` (one ``BatchGetItem`` per batch
to compare with what is stored, ``BatchWriteItem`` for new items, a conditional ``UpdateItem`` for
changed ones). Memory does not grow with the file: an obligations import keeps one batch, a
bounded cache of known members and at most :data:`MAX_MESSAGES` messages (a members import still
keeps a small digest per document to name repeated rows, about 100 bytes per row).

Rules worth knowing:

* Hostile text is refused per row (``domain/text``): identifiers (``obligation_id``,
  ``product_number``) to a strict ASCII set, names and descriptions without control or direction
  characters (stored NFC), amounts, documents and dates in ASCII digits only. Values are trimmed
  of spaces only, never of control characters, and are quoted escaped in the report.
* A member's password and security fields are never written here: existing members are changed
  with ``UpdateItem`` on the core-system fields only.
* Obligations follow the cut-off rule. ``Obligation.portal_payments`` maps a payment id to
  ``{"amount": int, "at": ISO time, "reference"}`` for payments applied in the portal. A row with
  cut-off ``C`` drops the portal payments the core system already knows at ``C`` and subtracts the
  others: it stores ``max(0, file amount - sum of the portal payments kept)`` (amount due, minimum
  and maximum alike). The core knows a portal payment when an export had claimed it at or before
  ``C`` (``Payment.exported_at <= C``: the money may be approved before ``C`` and still not be in
  the core's balance until the export reaches it); an entry without a payment record (loaded by
  hand) falls back to its own time (``at <= C``). Dropping it marks the payment "Aplicado en la
  cooperativa" (``Payment.core_applied_at``, set once by a conditional write, with an audit event)
  before the obligation is written, so a crash in between never loses the confirmation.
  The update is conditioned on the portal payments read, so a payment applied meanwhile makes the
  import re-read and recompute instead of resurrecting a balance. ``pending_payment_id`` is never
  touched. A row whose cut-off is older than the stored one is rejected (stale file).
* Optional columns ``late_interest``, ``fees``, ``insurance``, ``interest``, ``capital`` (issue 6)
  give the parts of a CREDITO row's instalment; they must add up to the row's ``amount_due`` and
  are stored as given (``Obligation.instalment_parts``, zeros dropped). The portal payments the
  cut-off rule subtracts are applied to them in order when shown (``domain/allocation``).
* Re-sending the same file changes nothing: those rows are counted as ``unchanged`` (each one is
  still stamped with the import's batch id, a bookkeeping attribute, see below).
* **Closing** (a full obligations file, the default): every obligation a row names is stamped with
  the import's batch id (``import_batch``; ``open_shard`` while OPEN). Once the file is read, the
  OPEN obligations whose stamp is another batch's are the ones the file did not list; they are
  found through the sparse ``open_by_import`` index (16 shards, two range queries each, keys
  only, never a scan) and closed (``status`` CLOSED, never deleted) by a conditional write that
  refuses an obligation with a ``pending_payment_id`` (reported, closed by a later import).
  A rejected row whose document and obligation id are readable still stamps its obligation (a
  typo must not close it); when some row could not be read at all, or the file failed, nothing
  is closed. A file that would close more obligations than it lists (and more than
  :data:`CLOSE_GUARD_MIN`) closes nothing unless ``force_close`` (a truncated export must not
  empty the portal). Obligations imports hold a lock (:class:`ImportRun` ``lock#obligations``,
  with a lease) so two of them never stamp at the same time.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, BinaryIO

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition, size

from chalicelib.adapters.dynamo import payments_repo
from chalicelib.adapters.dynamo.models import ImportRun, Member, Obligation, Payment
from chalicelib.adapters.dynamo.repositories import audit_event, aws_error_code
from chalicelib.context import Runtime
from chalicelib.domain import allocation, text
from chalicelib.observability import log_event

BATCH_SIZE = 100  # BatchGetItem takes at most 100 keys
MAX_MESSAGES = 1000  # errors and warnings kept in a report (the rest are only counted)
MAX_LINE_BYTES = 1 << 20
CHUNK_BYTES = 1 << 16
PROGRESS_EVERY = 10_000
UPDATE_WORKERS = 8
CONFLICT_RETRIES = 3
FUTURE_CUTOFF_SLACK = timedelta(minutes=10)
MAX_AMOUNT_DIGITS = 15
MEMBER_CACHE = 1024  # documents known to exist (or not): bounded, so memory stays flat
OPEN_SHARDS = 16  # partitions of the open_by_import index (Obligation.open_shard "0".."15")
CLOSE_GUARD_MIN = 100  # a file may always close this many absent obligations
LOCK_ID = "lock#obligations"
LOCK_LEASE = timedelta(minutes=20)  # longer than a Lambda lives: a crashed import frees it
LOCK_RENEW_SECONDS = 120.0  # a long import (the command line) renews its lease this often
IMPORT_ACTOR = "system:import"

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
#: Optional columns (issue 6): the parts of a loan instalment, in pesos, adding up to amount_due.
PART_COLUMNS = allocation.PARTS
OBLIGATION_COLUMNS = ("document_number", "obligation_id", "type", "product_number", "description",
                      "due_date", "amount_due", "minimum_amount", "maximum_amount", "cutoff",
                      *PART_COLUMNS)
OBLIGATION_REQUIRED = ("document_number", "obligation_id", "type", "product_number", "due_date",
                       "amount_due", "minimum_amount", "maximum_amount", "cutoff")

_DIGITS = re.compile(r"[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
_PHONE = re.compile(r"[0-9+() -]{7,20}")

Progress = Callable[[int], None]


# --- report ----------------------------------------------------------------------------------

#: What happened to closing absent obligations (``ImportReport.closing``), in Spanish.
CLOSING_TEXT = {
    "done": "se cerraron {closed} de las {absent} obligaciones abiertas que el archivo no incluye",
    "none_absent": "ninguna obligación abierta falta en el archivo",
    "partial": "archivo parcial: no se cierra ninguna obligación",
    "file_error": "no se cerró ninguna obligación porque el archivo no se pudo leer completo",
    "unreadable_rows": "no se cerró ninguna obligación porque hay filas ilegibles (sin documento u "
                       "obligación reconocibles); corríjalas y reenvíe el archivo",
    "empty": "no se cerró ninguna obligación porque el archivo no tiene filas válidas",
    "guard": "no se cerró ninguna obligación: el archivo cerraría {absent} obligaciones y solo "
             "incluye {present}; si es correcto, cárguelo con --force-close",
}


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
    # --- obligations (issue 4) ---
    batch_id: str | None = None  # stamped on every obligation the file lists
    source: str | None = None  # the file (path or s3://bucket/key), for the report only
    full: bool = False  # a full file: closes the OPEN obligations it does not list
    closing: str = ""  # a key of CLOSING_TEXT ("" when not a full obligations import)
    closed: int = 0
    absent: int = 0  # OPEN obligations the file does not list (found before closing)
    not_closed: list[str] = field(default_factory=list)  # absent but with a payment in progress
    not_closed_omitted: int = 0
    applied_in_core: int = 0  # portal payments confirmed: "Aplicado en la cooperativa"

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_MESSAGES:
            self.errors.append((line, reason))
        else:
            self.errors_omitted += 1

    def finish(self) -> ImportReport:
        """Order the messages by line (batched checks report after later rows were read)."""
        self.errors.sort()
        self.warnings.sort()
        return self

    def warn(self, line: int, reason: str) -> None:
        if len(self.warnings) < MAX_MESSAGES:
            self.warnings.append((line, reason))
        else:
            self.warnings_omitted += 1

    def keep_open(self, note: str) -> None:
        if len(self.not_closed) < MAX_MESSAGES:
            self.not_closed.append(note)
        else:
            self.not_closed_omitted += 1

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

    @property
    def closing_text(self) -> str:
        key = "none_absent" if self.closing == "done" and not self.absent else self.closing
        return CLOSING_TEXT.get(key, key).format(absent=self.absent, present=self.present,
                                                 closed=self.closed)

    @property
    def present(self) -> int:
        """Obligations the file listed and that went in (new, updated or unchanged)."""
        return self.inserted + self.updated + self.unchanged

    def summary(self) -> str:
        """One line, for logs and the command line's last line."""
        text = (f"{self.rows} filas: {self.inserted} nuevas, {self.updated} actualizadas, "
                f"{self.unchanged} sin cambios, {self.rejected} rechazadas")
        if self.kind == "obligations" and self.full:
            text += f", {self.closed} cerradas"
        if self.file_error:
            text += " (ERROR DEL ARCHIVO)"
        return text

    def to_text(self) -> str:
        """A human summary in Spanish, then every rejected line with its reason."""
        title = {"members": "asociados", "obligations": "obligaciones"}.get(self.kind, self.kind)
        if self.kind == "obligations":
            title += " (archivo completo)" if self.full else " (archivo parcial)"
        lines = [f"Importación de {title}"]
        if self.source:
            lines.append(f"  archivo:        {self.source}")
        if self.batch_id:
            lines.append(f"  lote:           {self.batch_id}")
        if self.file_error:
            lines.append(f"ERROR DEL ARCHIVO: {self.file_error}")
        lines.append(f"  filas leídas:   {self.rows}")
        lines.append(f"  nuevas:         {self.inserted}")
        lines.append(f"  actualizadas:   {self.updated}")
        lines.append(f"  sin cambios:    {self.unchanged}")
        lines.append(f"  rechazadas:     {self.rejected}")
        if self.kind == "obligations":
            if self.full:
                lines.append(f"  cerradas:       {self.closed} (ausentes del archivo)")
            lines.append(f"  pagos del portal aplicados en la cooperativa: {self.applied_in_core}")
        if self.closing:
            lines.append(f"Cierre: {self.closing_text}.")
        if self.not_closed:
            lines.append("Ausentes del archivo que siguen abiertas (pago en curso):")
            lines.extend(f"  {note}" for note in self.not_closed)
            if self.not_closed_omitted:
                lines.append(f"  ... y {self.not_closed_omitted} más")
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

    def counts(self) -> dict[str, int]:
        return {"rows": self.rows, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected, "closed": self.closed,
                "absent": self.absent, "applied_in_core": self.applied_in_core}

    def to_json(self) -> dict[str, Any]:
        """The report as data (the ``.report.json`` next to an S3 file)."""
        return {
            "kind": self.kind, "source": self.source, "batch_id": self.batch_id,
            "full": self.full if self.kind == "obligations" else None,
            "ok": self.ok, "exit_code": self.exit_code, "file_error": self.file_error,
            **self.counts(),
            "closing": self.closing or None,
            "closing_text": self.closing_text if self.closing else None,
            "not_closed": self.not_closed, "not_closed_omitted": self.not_closed_omitted,
            "errors": [{"line": line, "reason": reason} for line, reason in self.errors],
            "errors_omitted": self.errors_omitted,
            "warnings": [{"line": line, "reason": reason} for line, reason in self.warnings],
            "warnings_omitted": self.warnings_omitted,
        }


class ImportBusy(Exception):
    """Another obligations import holds the lock: try again once it ends (or its lease runs out)."""

    def __init__(self, holder: str | None, lease_until: datetime | None) -> None:
        self.holder, self.lease_until = holder, lease_until
        until = f" (hasta {lease_until.isoformat(timespec='seconds')})" if lease_until else ""
        super().__init__(f"otra importación de obligaciones está en curso: lote {holder}{until}; "
                         "intente de nuevo cuando termine")


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
        yield _Row(first, {name: fields[i].strip(text.SPACES) for name, i in index.items()})


def _count_row(report: ImportReport, progress: Progress | None) -> None:
    report.rows += 1
    if progress is not None and report.rows % PROGRESS_EVERY == 0:
        progress(report.rows)


def _shown(value: str) -> str:
    return text.shown(value)


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
    raw = values.get(name, "")
    value = raw.upper() if raw.isascii() else ""
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


def _free_text(values: dict[str, str], name: str, limit: int, problems: list[str], *,
               required: bool = False) -> str:
    """A name or a description: no control or direction character (see ``domain/text``), NFC."""
    raw = values.get(name, "")
    found = text.first_forbidden(raw)
    if found is not None:
        position, char = found
        problems.append(f"{name} contiene un carácter no permitido ({text.code_point(char)}, en la "
                        f"posición {position}): no se aceptan caracteres de control ni de "
                        "dirección del texto; corríjalo en el sistema central")
        return ""
    value = text.normalized(raw)
    if required and not value:
        problems.append(f"{name} está vacío")
    elif len(value) > limit:
        problems.append(f"{name} supera {limit} caracteres")
    return value


def _identifier(values: dict[str, str], name: str, limit: int, problems: list[str]) -> str:
    """An id of the core system, to a strict character set (see :func:`text.is_identifier`)."""
    value = values.get(name, "")
    if not value:
        problems.append(f"{name} está vacío")
    elif not text.is_identifier(value):
        problems.append(f"{name} solo admite letras sin tilde (A-Z), dígitos (0-9), '-', '_', '.' "
                        f"y '/', y empieza por letra o dígito; se recibió '{_shown(value)}'")
    elif len(value) > limit:
        problems.append(f"{name} supera {limit} caracteres")
    return value


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
    full_name = _free_text(values, "full_name", 200, problems, required=True)
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


def import_members(stream: BinaryIO, *, now: datetime, progress: Progress | None = None,
                   source: str | None = None) -> ImportReport:
    """Upsert the members of a ``members.csv`` stream; see the module docstring."""
    report = ImportReport("members", batch_id=new_batch_id(now), source=source)
    started = time.monotonic()
    try:
        _import_members(stream, report, now, progress)
    finally:
        _record_run(report, now, started)
    log_event("import_finished", kind="members", batch_id=report.batch_id, source=source,
              **report.counts())
    return report.finish()


def _import_members(stream: BinaryIO, report: ImportReport, now: datetime,
                    progress: Progress | None) -> None:
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
    parts: dict[str, int] | None = None  # the instalment's non-zero parts; None: not given

    @property
    def key(self) -> tuple[str, str]:
        return self.document_number, self.obligation_id


def _parse_parts(values: dict[str, str], kind: str, amount_due: int,
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
    amounts = {name: _amount(values, name, problems) for name in given}
    if min(amounts.values()) < 0:
        return None
    total = sum(amounts.values())
    if amount_due >= 0 and total != amount_due:
        problems.append(f"la suma del detalle de la cuota ({' + '.join(given)} = {total}) debe ser "
                        f"igual a amount_due ({amount_due})")
    return {name: pesos for name, pesos in amounts.items() if pesos}


def _parse_cutoff(raw: str, problems: list[str]) -> datetime | None:
    try:
        if not raw.isascii():
            raise ValueError
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
    obligation_id = _identifier(values, "obligation_id", 64, problems)
    kind = _one_of(values, "type", OBLIGATION_TYPES, problems)
    product_number = _identifier(values, "product_number", 40, problems)
    description = _free_text(values, "description", 200, problems)
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
    parts = _parse_parts(values, kind, amount_due, problems)
    cutoff_text = values.get("cutoff", "")
    cutoff = _parse_cutoff(cutoff_text, problems)
    if cutoff is not None and cutoff > now + FUTURE_CUTOFF_SLACK:
        problems.append(f"cutoff '{_shown(cutoff_text)}' está en el futuro")
    if problems or cutoff is None:  # no cutoff always came with a problem
        report.reject(row.line, "; ".join(problems))
        return None
    return _ObligationRow(row.line, number, obligation_id, kind, product_number,
                          description or DEFAULT_DESCRIPTIONS[kind], due_date, amount_due, minimum,
                          maximum, cutoff, cutoff_text, parts)


def _payment_time(payment: dict) -> datetime | None:  # type: ignore[type-arg]
    try:
        moment = datetime.fromisoformat(str(payment.get("at")))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def new_batch_id(now: datetime) -> str:
    """``20261123T150000Z-Ab3dE9fG``: when the import started (UTC), then 48 random bits."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{Runtime.token(6)}"


def open_shard(document_number: str, obligation_id: str) -> str:
    """The obligation's partition of the ``open_by_import`` index (stable: a hash of its key)."""
    return str(_key_digest(document_number, obligation_id) % OPEN_SHARDS)


@dataclass
class _ListedKey:
    """A rejected row whose document and obligation id are readable: the file lists it, so its
    obligation is stamped (not closed) though nothing else of the row is written."""

    line: int
    document_number: str
    obligation_id: str

    @property
    def key(self) -> tuple[str, str]:
        return self.document_number, self.obligation_id


def _listed_key(row: _Row) -> _ListedKey | None:
    document = row.values.get("document_number", "")
    obligation_id = row.values.get("obligation_id", "")
    if _DIGITS.fullmatch(document) and 5 <= len(document) <= 15 and 0 < len(obligation_id) <= 64:
        return _ListedKey(row.line, document, obligation_id)
    return None


@dataclass
class _Outcome:
    status: str  # inserted | updated | unchanged | rejected
    reason: str = ""
    warning: str = ""


class _Lock:
    """``lock#obligations`` in the imports table: one obligations import at a time, with a lease."""

    def __init__(self, batch_id: str, now: datetime, source: str | None) -> None:
        self.batch_id, self.now, self.source = batch_id, now, source
        self._started = self._renewed = time.monotonic()

    def _clock(self) -> datetime:
        return self.now + timedelta(seconds=time.monotonic() - self._started)

    def acquire(self) -> None:
        now = self._clock()
        lock = ImportRun(LOCK_ID, kind="obligations", source=self.source, started_at=now,
                         holder=self.batch_id, lease_until=now + LOCK_LEASE)
        try:
            lock.save(condition=ImportRun.run_id.does_not_exist() | (ImportRun.lease_until < now))
        except PutError as exc:
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise
            try:
                held = ImportRun.get(LOCK_ID, consistent_read=True)
            except DoesNotExist:  # released meanwhile
                return self.acquire()
            raise ImportBusy(held.holder, held.lease_until) from None

    def renew(self) -> None:
        """Extend the lease every LOCK_RENEW_SECONDS; ImportBusy if another import took it."""
        if time.monotonic() - self._renewed < LOCK_RENEW_SECONDS:
            return
        try:
            ImportRun(LOCK_ID).update(actions=[ImportRun.lease_until.set(self._clock() + LOCK_LEASE)],
                                      condition=ImportRun.holder == self.batch_id)
        except UpdateError as exc:
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise
            raise ImportBusy(None, None) from None
        self._renewed = time.monotonic()

    def release(self) -> None:
        try:
            ImportRun(LOCK_ID).delete(condition=ImportRun.holder == self.batch_id)
        except DeleteError as exc:
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise


class _ObligationImporter:
    """One import run: bounded batches, a bounded member cache, parallel updates, the closing."""

    def __init__(self, report: ImportReport, now: datetime, workers: int,
                 batch_id: str | None = None) -> None:
        self.report = report
        self.now = now
        self.batch_id = batch_id or report.batch_id or new_batch_id(now)
        report.batch_id = self.batch_id
        self.unreadable = 0  # rejected rows whose obligation cannot be told: closing is unsafe
        self._now_text = Obligation.updated_at.serialize(now)
        self._counting = threading.Lock()  # the pool's threads count confirmations
        self._members: OrderedDict[str, bool] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import")

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # --- the rows ------------------------------------------------------------------------------

    def _known_members(self, documents: set[str]) -> set[str]:
        missing = [d for d in documents if d not in self._members]
        if missing:
            found = _existing_members(missing)
            for document in missing:
                self._members[document] = document in found
        for document in documents:
            self._members.move_to_end(document)
        while len(self._members) > MEMBER_CACHE:
            self._members.popitem(last=False)
        return {d for d in documents if self._members.get(d)}

    def _repeated(self, row: _ObligationRow, first: int) -> None:
        self.report.reject(row.line, f"la obligación {row.obligation_id} del documento "
                                     f"{row.document_number} ya apareció en la línea {first}; se "
                                     "rechaza la repetición")

    def write(self, batch: list[_ObligationRow | _ListedKey]) -> None:
        """One batch: repeated keys, unknown members, one BatchGetItem, then the writes."""
        report = self.report
        rows: dict[tuple[str, str], _ObligationRow] = {}
        listed: dict[tuple[str, str], _ListedKey] = {}
        for item in batch:
            if isinstance(item, _ListedKey):
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
        stored = {(o.document_number, o.obligation_id): o for o in
                  Obligation.batch_get([*rows, *listed], consistent_read=True)}
        updates, stamps, new = [], [], []
        for key, row in rows.items():
            current = stored.get(key)
            if current is None:
                new.append(self._new_raw_item(row))
            elif current.import_batch == self.batch_id and (current.import_line or 0) > 0:
                self._repeated(row, int(current.import_line))  # a row of an earlier batch
            else:
                updates.append((row, current))
        _batch_put(Obligation, new)
        report.inserted += len(new)
        for key, item in listed.items():
            current = stored.get(key)
            if current is not None and current.import_batch != self.batch_id:
                stamps.append(item)
        outcomes = self._pool.map(lambda u: self._upsert(*u), updates)
        for (row, _), outcome in zip(updates, outcomes, strict=True):
            if outcome.status == "rejected":
                report.reject(row.line, outcome.reason)
            else:
                setattr(report, outcome.status, getattr(report, outcome.status) + 1)
            if outcome.warning:
                report.warn(row.line, outcome.warning)
        list(self._pool.map(self._stamp_listed, stamps))

    def _stamp(self, line: int) -> list[Any]:
        return [Obligation.import_batch.set(self.batch_id), Obligation.import_line.set(line)]

    def _stamp_listed(self, item: _ListedKey | _ObligationRow) -> None:
        """A rejected row's obligation: listed by the file (negative line: not a valid row)."""
        try:
            _update_quietly(Obligation, item.key, self._stamp(-item.line),
                            Obligation.document_number.exists())
        except UpdateError as exc:  # it does not exist: nothing to keep open
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _new_item(self, row: _ObligationRow) -> Obligation:
        return Obligation(row.document_number, row.obligation_id, type=row.type,
                          product_number=row.product_number, description=row.description,
                          due_date=row.due_date, amount_due=row.amount_due,
                          minimum_amount=row.minimum_amount, maximum_amount=row.maximum_amount,
                          cutoff=row.cutoff, status="OPEN", updated_at=self.now,
                          import_batch=self.batch_id, import_line=row.line,
                          open_shard=open_shard(row.document_number, row.obligation_id),
                          instalment_parts=row.parts)

    def _new_raw_item(self, row: _ObligationRow) -> dict[str, dict[str, str]]:
        """:meth:`_new_item` as DynamoDB JSON, without a model instance (most of the import's
        CPU time and allocations on big files went into building and serializing those)."""
        names = _OBLIGATION_NAMES
        item = {
            names["document_number"]: {"S": row.document_number},
            names["obligation_id"]: {"S": row.obligation_id},
            names["type"]: {"S": row.type},
            names["product_number"]: {"S": row.product_number},
            names["description"]: {"S": row.description},
            names["due_date"]: {"S": row.due_date},
            names["amount_due"]: {"N": str(row.amount_due)},
            names["minimum_amount"]: {"N": str(row.minimum_amount)},
            names["maximum_amount"]: {"N": str(row.maximum_amount)},
            names["cutoff"]: {"S": Obligation.cutoff.serialize(row.cutoff)},
            names["status"]: {"S": "OPEN"},
            names["updated_at"]: {"S": self._now_text},
            names["import_batch"]: {"S": self.batch_id},
            names["import_line"]: {"N": str(row.line)},
            names["open_shard"]: {"S": open_shard(row.document_number, row.obligation_id)},
        }
        if row.parts is not None:
            item[names["instalment_parts"]] = {"S": Obligation.instalment_parts.serialize(row.parts)}
        return item

    def _upsert(self, row: _ObligationRow, current: Obligation | None) -> _Outcome:
        """Apply one row to a stored obligation, re-reading when a portal payment lands meanwhile."""
        for _ in range(CONFLICT_RETRIES + 1):
            if current is None:  # deleted meanwhile: store it again
                self._new_item(row).save()
                return _Outcome("inserted")
            try:
                return self._apply(row, current)
            except UpdateError as exc:
                if aws_error_code(exc) != "ConditionalCheckFailedException":
                    raise
            try:
                current = Obligation.get(row.document_number, row.obligation_id,
                                         consistent_read=True)
            except DoesNotExist:
                current = None
        self._stamp_listed(row)
        return _Outcome("rejected", "la obligación cambió varias veces mientras se importaba "
                                    "(pagos en curso); reenvíe el archivo")

    def _apply(self, row: _ObligationRow, current: Obligation) -> _Outcome:
        if current.cutoff is not None and row.cutoff < current.cutoff:
            self._stamp_listed(row)
            return _Outcome("rejected", f"el corte {row.cutoff_text} es anterior al ya cargado "
                                        f"({current.cutoff.isoformat()}); se conserva el saldo "
                                        "más reciente")
        payments = current.portal_payments.as_dict() if current.portal_payments else {}
        known, warning = self._known_to_core(row, payments)
        kept = {pid: payment for pid, payment in payments.items() if pid not in known}
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
            "open_shard": open_shard(row.document_number, row.obligation_id),
            "instalment_parts": row.parts,
        }
        changed = [name for name, value in wanted.items() if getattr(current, name) != value]
        if not changed and len(kept) == len(payments):
            _update_quietly(Obligation, row.key, self._stamp(row.line),
                            Obligation.document_number.exists())
            return _Outcome("unchanged", warning=warning)
        self._confirm_applied(row, {pid: payments[pid] for pid in known})
        actions = [getattr(Obligation, name).remove() if wanted[name] is None
                   else getattr(Obligation, name).set(wanted[name]) for name in changed]
        actions += [Obligation.updated_at.set(self.now), *self._stamp(row.line)]
        if "status" in changed:
            actions.append(Obligation.closed_at.remove())
        if len(kept) != len(payments):
            actions.append(Obligation.portal_payments.set(kept) if kept
                           else Obligation.portal_payments.remove())
        _update_quietly(Obligation, row.key, actions, _same_payments(payments))
        only_stamp = not changed or changed == ["open_shard"]
        return _Outcome("unchanged" if only_stamp and len(kept) == len(payments) else "updated",
                        warning=warning)

    # --- "Aplicado en la cooperativa" -----------------------------------------------------------

    def _known_to_core(self, row: _ObligationRow,
                       payments: dict[str, Any]) -> tuple[set[str], str]:
        """The portal payments the core system knows at the row's cut-off (see the module)."""
        warning, before = "", []
        for payment_id, payment in payments.items():
            moment = _payment_time(payment)
            if moment is None:
                warning = (f"el pago del portal {payment_id} no tiene una hora válida; se sigue "
                           "descontando")
            elif moment <= row.cutoff:
                before.append(payment_id)
        if not before:
            return set(), warning
        records = {p.payment_id: p for p in Payment.batch_get(
            before, consistent_read=True, attributes_to_get=["payment_id", "exported_at"])}
        known = {pid for pid in before if pid not in records  # loaded by hand: its own time
                 or (records[pid].exported_at is not None and records[pid].exported_at <= row.cutoff)}
        return known, warning

    def _confirm_applied(self, row: _ObligationRow, payments: dict[str, Any]) -> None:
        """Set ``core_applied_at`` once (conditional) with its audit event, one transaction each."""
        for payment_id, entry in payments.items():
            tx = payments_repo.Tx()
            tx.update("payment", Payment(payment_id=payment_id),
                      [Payment.core_applied_at.set(self.now)],
                      Payment.exported_at.exists() & (Payment.exported_at <= row.cutoff)
                      & Payment.core_applied_at.does_not_exist())
            tx.put("audit", audit_event(
                subject=row.document_number, event="payment_applied_in_core", actor=IMPORT_ACTOR,
                at=self.now, suffix=Runtime.token(6), payment_id=payment_id,
                details={"reference": str(entry.get("reference") or ""),
                         "obligation_id": row.obligation_id, "cutoff": row.cutoff.isoformat(),
                         "batch_id": self.batch_id}))
            try:
                tx.commit()
            except payments_repo.Cancelled:
                continue  # confirmed by an earlier import, or a payment loaded by hand
            with self._counting:
                self.report.applied_in_core += 1
            log_event("payment_applied_in_core", document_number=row.document_number,
                      payment_id=payment_id, batch_id=self.batch_id)

    # --- closing the obligations the file does not list -----------------------------------------

    def _absent(self) -> Iterator[Obligation]:
        """OPEN obligations stamped by another import (index keys only; eventually consistent,
        so the conditional write decides)."""
        for shard in range(OPEN_SHARDS):
            for condition in (Obligation.import_batch < self.batch_id,
                              Obligation.import_batch > self.batch_id):
                yield from Obligation.open_by_import.query(str(shard), condition,
                                                           page_size=BATCH_SIZE)

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
            if not force and report.absent > max(CLOSE_GUARD_MIN, report.present):
                report.closing = "guard"
            else:
                report.closing = "done"
        if report.closing != "done":
            if full:
                log_event("import_closing_skipped", level=30, batch_id=self.batch_id,
                          reason=report.closing, absent=report.absent)
            return
        page: list[Obligation] = []
        for item in self._absent():
            page.append(item)
            if len(page) >= BATCH_SIZE:
                self._close_page(page)
                page = []
        if page:
            self._close_page(page)

    def _close_page(self, page: list[Obligation]) -> None:
        for outcome in self._pool.map(self._close_one, page):
            if outcome == "closed":
                self.report.closed += 1
            elif outcome:
                self.report.keep_open(outcome)

    def _close_one(self, item: Obligation) -> str:
        """CLOSED, never deleted; refused while a payment holds it. ``closed``, a note, or ""."""
        o = Obligation
        try:
            _update_quietly(o, (item.document_number, item.obligation_id),
                            [o.status.set("CLOSED"), o.closed_at.set(self.now),
                             o.updated_at.set(self.now), o.open_shard.remove()],
                            (o.status == "OPEN") & o.import_batch.exists()
                            & (o.import_batch != self.batch_id) & o.pending_payment_id.does_not_exist())
        except UpdateError as exc:
            if aws_error_code(exc) != "ConditionalCheckFailedException":
                raise
            try:
                current = o.get(item.document_number, item.obligation_id, consistent_read=True)
            except DoesNotExist:
                return ""
            if current.status == "OPEN" and current.import_batch != self.batch_id \
                    and current.pending_payment_id:
                return (f"documento {current.document_number}, obligación "
                        f"{current.obligation_id}: tiene un pago en curso (referencia "
                        f"{current.pending_reference or current.pending_payment_id}); sigue "
                        "abierta y se cerrará en una próxima importación")
            return ""  # listed meanwhile, or already closed
        return "closed"


#: Obligation attribute name → its name in DynamoDB (the same unless the model says otherwise).
_OBLIGATION_NAMES = {name: attr.attr_name for name, attr in Obligation.get_attributes().items()}


def _existing_members(documents: list[str]) -> set[str]:
    """Which of these documents are members: consistent ``BatchGetItem``s of the key only
    (no model instances: this runs once per batch of a big file)."""
    client = Member._get_connection().connection.client
    table = Member.Meta.table_name
    name = Member.document_number.attr_name
    found: set[str] = set()
    for start in range(0, len(documents), BATCH_SIZE):
        request: dict[str, Any] = {table: {
            "Keys": [{name: {"S": d}} for d in documents[start:start + BATCH_SIZE]],
            "ConsistentRead": True, "ProjectionExpression": "#k",
            "ExpressionAttributeNames": {"#k": name}}}
        delay = 0.05
        while request:
            answer = client.batch_get_item(RequestItems=request)
            found.update(item[name]["S"] for item in answer.get("Responses", {}).get(table, []))
            request = answer.get("UnprocessedKeys") or {}
            if request:
                Runtime.sleep(delay)
                delay = min(delay * 2, 2.0)
    return found


def _batch_put(model: type[Obligation], items: list[dict[str, dict[str, Any]]]) -> None:
    """``BatchWriteItem`` of serialized items, 25 a call, unprocessed ones retried with backoff."""
    if not items:
        return
    client = model._get_connection().connection.client
    table = model.Meta.table_name
    for start in range(0, len(items), 25):
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}}
                                           for item in items[start:start + 25]]}
        delay = 0.05
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if pending:
                Runtime.sleep(delay)
                delay = min(delay * 2, 2.0)


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
                       workers: int = UPDATE_WORKERS, full: bool = True, force_close: bool = False,
                       source: str | None = None) -> ImportReport:
    """Upsert the obligations of an ``obligations.csv`` stream and, for a ``full`` file, close the
    OPEN ones it does not list; see the module docstring. Raises :class:`ImportBusy` when another
    obligations import is running (nothing was read or written then)."""
    report = ImportReport("obligations", batch_id=new_batch_id(now), source=source, full=full)
    lock = _Lock(report.batch_id or "", now, source)
    lock.acquire()
    started = time.monotonic()
    importer = _ObligationImporter(report, now, workers)
    try:
        _read_obligations(stream, report, importer, lock, now, progress)
        lock.renew()
        importer.close_absent(full=full, force=force_close)
    finally:
        importer.close()
        lock.release()
        _record_run(report, now, started)
    log_event("import_finished", kind="obligations", batch_id=report.batch_id,
              source=source, **report.counts())
    return report.finish()


def _read_obligations(stream: BinaryIO, report: ImportReport, importer: _ObligationImporter,
                      lock: _Lock, now: datetime, progress: Progress | None) -> None:
    batch: list[_ObligationRow | _ListedKey] = []
    before = report.rejected
    try:
        for row in _rows(stream, report, OBLIGATION_COLUMNS, OBLIGATION_REQUIRED, progress):
            # Rows _rows() rejected itself (CSV, encoding, field count) name no obligation surely.
            importer.unreadable += report.rejected - before
            obligation = _parse_obligation(row, report, now)
            item = obligation if obligation is not None else _listed_key(row)
            if item is None:
                importer.unreadable += 1
            else:
                batch.append(item)
            if len(batch) >= BATCH_SIZE:
                importer.write(batch)
                batch = []
                lock.renew()
            before = report.rejected
        importer.unreadable += report.rejected - before
    except FileError as exc:
        report.file_error = str(exc)
    if batch:
        importer.write(batch)


def _record_run(report: ImportReport, now: datetime, started: float) -> None:
    """What the import did, in the imports table (best effort: the import itself is done)."""
    try:
        ImportRun(report.batch_id or new_batch_id(now), kind=report.kind, source=report.source,
                  started_at=now, finished_at=now + timedelta(seconds=time.monotonic() - started),
                  summary=json.dumps({**report.counts(), "closing": report.closing,
                                      "file_error": report.file_error})).save()
    except Exception as exc:
        log_event("import_record_failed", level=30, batch_id=report.batch_id, error=str(exc)[:200])
