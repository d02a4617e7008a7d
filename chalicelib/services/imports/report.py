"""What an import did (the report staff read, in Spanish) and its record in storage."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.context import Runtime
from chalicelib.observability import log_event
from chalicelib.services.imports import limits
from chalicelib.services.repositories import ImportRunRecord, ImportStorage

IMPORT_ACTOR = "system:import"


def new_batch_id(now: datetime) -> str:
    """``20261123T150000Z-Ab3dE9fG``: when the import started (UTC), then 48 random bits."""
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{Runtime.token(6)}"


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
    # --- obligations ---
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
        if len(self.errors) < limits.MAX_MESSAGES:
            self.errors.append((line, reason))
        else:
            self.errors_omitted += 1

    def finish(self) -> ImportReport:
        """Order the messages by line (batched checks report after later rows were read)."""
        self.errors.sort()
        self.warnings.sort()
        return self

    def warn(self, line: int, reason: str) -> None:
        if len(self.warnings) < limits.MAX_MESSAGES:
            self.warnings.append((line, reason))
        else:
            self.warnings_omitted += 1

    def keep_open(self, note: str) -> None:
        if len(self.not_closed) < limits.MAX_MESSAGES:
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


def log_finished(report: ImportReport) -> None:
    counts: dict[str, Any] = report.counts()
    log_event("import_finished", kind=report.kind, batch_id=report.batch_id, source=report.source,
              **counts)


def record_run(storage: ImportStorage, report: ImportReport, now: datetime, seconds: float) -> None:
    """What the import did and how long it took, in the imports table (best effort: the import
    itself is done)."""
    try:
        storage.record_run(ImportRunRecord(
            batch_id=report.batch_id or new_batch_id(now), kind=report.kind, source=report.source,
            started_at=now, finished_at=now + timedelta(seconds=seconds),
            summary=json.dumps({**report.counts(), "closing": report.closing,
                                "file_error": report.file_error})))
    except Exception as exc:
        log_event("import_record_failed", level=30, batch_id=report.batch_id, error=str(exc)[:200])
