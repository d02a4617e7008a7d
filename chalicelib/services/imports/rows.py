"""Reading a core-system CSV file: physical lines streamed in chunks, decoded one by one, rows
as ``{column: value}``, and the checks of single values (Spanish reasons, hostile text refused).

Values are trimmed of spaces only, never of control characters (``domain/text``), and are shown
quoted and escaped in the reasons.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from chalicelib.domain import text
from chalicelib.services.imports import limits
from chalicelib.services.imports.report import ImportReport

DIGITS = re.compile(r"[0-9]+")

Progress = Callable[[int], None]


def is_document_number(value: str) -> bool:
    return bool(DIGITS.fullmatch(value)) and 5 <= len(value) <= 15


class FileError(Exception):
    """The file as a whole cannot be imported (encoding, header, a broken line)."""


class Lines:
    """The physical lines of a binary stream as text; remembers the ones that were not UTF-8."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.number = 0
        self.bad: dict[int, str] = {}

    def decode(self, raw: bytes) -> str:
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
            chunk = self._stream.read(limits.CHUNK_BYTES)
            if not chunk:
                break
            buffer += chunk
            start = 0
            while True:
                end = buffer.find(b"\n", start)
                if end < 0:
                    break
                yield self.decode(bytes(buffer[start:end + 1]))
                start = end + 1
            del buffer[:start]
            if len(buffer) > limits.MAX_LINE_BYTES:
                raise FileError(f"la línea {self.number + 1} supera {limits.MAX_LINE_BYTES} bytes")
        if buffer:
            yield self.decode(bytes(buffer))


@dataclass
class Row:
    line: int
    values: dict[str, str]


def detect_delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def read_rows(stream: BinaryIO, report: ImportReport, columns: Sequence[str],
          required: Sequence[str], progress: Progress | None) -> Iterator[Row]:
    """Rows as ``{column: trimmed value}``; rejects unreadable rows itself. Raises FileError."""
    lines = Lines(stream)
    physical = iter(lines)
    header_line = next(physical, None)
    if header_line is None or not header_line.strip():
        raise FileError("el archivo está vacío o la primera línea no es el encabezado")
    if 1 in lines.bad:
        raise FileError(f"encabezado (línea 1): {lines.bad[1]}")
    delimiter = detect_delimiter(header_line)
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
            count_row(report, progress)
            report.reject(lines.number, f"no se pudo leer la fila CSV ({exc})")
            last_line = lines.number
            continue
        first, last_line = last_line + 1, lines.number
        if not any(value.strip() for value in fields):
            continue  # blank line
        count_row(report, progress)
        bad = next((lines.bad.pop(n) for n in range(first, last_line + 1) if n in lines.bad), None)
        if bad is not None:
            report.reject(first, bad)
            continue
        if len(fields) < len(header) or any(v.strip() for v in fields[len(header):]):
            report.reject(first, f"la fila tiene {len(fields)} campos y el encabezado "
                                 f"{len(header)} (revise el delimitador '{delimiter}' y las comillas)")
            continue
        yield Row(first, {name: fields[i].strip(text.SPACES) for name, i in index.items()})


def count_row(report: ImportReport, progress: Progress | None) -> None:
    report.rows += 1
    if progress is not None and report.rows % limits.PROGRESS_EVERY == 0:
        progress(report.rows)


def document_number(values: dict[str, str], problems: list[str]) -> str:
    number = values.get("document_number", "")
    if not is_document_number(number):
        problems.append(f"document_number debe tener entre 5 y 15 dígitos, se recibió "
                        f"'{text.shown(number)}'")
    return number


def one_of(values: dict[str, str], name: str, allowed: Sequence[str],
            problems: list[str]) -> str:
    raw = values.get(name, "")
    value = raw.upper() if raw.isascii() else ""
    if value not in allowed:
        options = ", ".join(allowed[:-1]) + " o " + allowed[-1]
        problems.append(f"{name} debe ser {options}, se recibió '{text.shown(values.get(name, ''))}'")
    return value


def amount(values: dict[str, str], name: str, problems: list[str]) -> int:
    raw = values.get(name, "")
    if not (DIGITS.fullmatch(raw) and len(raw) <= limits.MAX_AMOUNT_DIGITS):
        problems.append(f"{name} debe ser un entero de pesos no negativo, se recibió '{text.shown(raw)}'")
        return -1
    return int(raw)


def free_text(values: dict[str, str], name: str, limit: int, problems: list[str], *,
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


def identifier(values: dict[str, str], name: str, limit: int, problems: list[str]) -> str:
    """An id of the core system, to a strict character set (see :func:`text.is_identifier`)."""
    value = values.get(name, "")
    if not value:
        problems.append(f"{name} está vacío")
    elif not text.is_identifier(value):
        problems.append(f"{name} solo admite letras sin tilde (A-Z), dígitos (0-9), '-', '_', '.' "
                        f"y '/', y empieza por letra o dígito; se recibió '{text.shown(value)}'")
    elif len(value) > limit:
        problems.append(f"{name} supera {limit} caracteres")
    return value
