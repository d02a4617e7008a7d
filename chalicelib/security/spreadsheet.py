"""Every CSV the product writes goes through here: cells that a spreadsheet cannot run.

Following OWASP's CSV injection guidance, a text cell that starts (after any spaces) with ``=``,
``+``, ``-``, ``@``, a tab, a carriage return, a line feed or NUL is a formula to Excel,
LibreOffice or Google Sheets (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``, ``@SUM(...)``): it is
prefixed with a single quote (shown as text, never evaluated) and quoted. A cell holding the
delimiter, a comma, a quote, a tab or a line break is quoted too, quotes doubled (RFC 4180), so
read with the file's delimiter its content can never start a new cell (where a payload would be
at the start of a cell again). Integers are numbers, written as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

FORMULA_STARTS = frozenset("=+-@\t\r\n\0")
_QUOTED_IF_HELD = frozenset(';,"\t\r\n')

Cell = str | int | None


def cell(value: Cell, delimiter: str = ";") -> str:
    """One cell as it goes in the file (see the module)."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if text[:1] in FORMULA_STARTS or text.lstrip()[:1] in FORMULA_STARTS:
        text = "'" + text
    elif delimiter not in text and not _QUOTED_IF_HELD.intersection(text):
        return text
    return '"' + text.replace('"', '""') + '"'


class CsvWriter:
    """Rows of cells into a text stream: ``;`` delimited and CRLF line ends unless told."""

    def __init__(self, out: TextIO, *, delimiter: str = ";", line_end: str = "\r\n") -> None:
        self._out, self._delimiter, self._line_end = out, delimiter, line_end

    def writerow(self, cells: Iterable[Cell]) -> None:
        line = self._delimiter.join(cell(value, self._delimiter) for value in cells)
        self._out.write(line + self._line_end)

    def writerows(self, rows: Iterable[Iterable[Cell]]) -> None:
        for row in rows:
            self.writerow(row)
