"""Import of the core system's CSV files (SPEC §4), on moto: formats, validation, upsert, cut-off."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.adapters.dynamo.imports import DynamoImportStorage
from chalicelib.adapters.dynamo.models import Member, Obligation
from chalicelib.adapters.dynamo.tables import create_all_tables
from chalicelib.config import get_settings
from chalicelib.services import imports
from chalicelib.services.imports import ImportReport, import_members, import_obligations
from devtools import demo_dates

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
DEMO = Path(__file__).resolve().parents[2] / "devtools" / "demo"


def demo_file(name: str) -> io.BytesIO:
    """A built-in demo file as the local runner loads it on NOW's day (its dates are offsets)."""
    return io.BytesIO(demo_dates.resolve((DEMO / name).read_text("utf-8-sig"), NOW).encode("utf-8"))
MEMBERS_HEADER = "document_type;document_number;full_name;email;phone;status"
OBLIGATIONS_HEADER = ("document_number,obligation_id,type,product_number,description,due_date,"
                      "amount_due,minimum_amount,maximum_amount,cutoff")
CUTOFF = "2026-11-21T00:00:00-05:00"


def stream(text: str, *, bom: bool = False) -> io.BytesIO:
    return io.BytesIO((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def members(*rows: str, header: str = MEMBERS_HEADER, bom: bool = False) -> ImportReport:
    return import_members(stream("\n".join([header, *rows]) + "\n", bom=bom), now=NOW)


def obligations(*rows: str, header: str = OBLIGATIONS_HEADER) -> ImportReport:
    """An obligations file; ``;``-delimited when the rows are."""
    if rows and ";" in rows[0]:
        header = header.replace(",", ";")
    return import_obligations(stream("\n".join([header, *rows]) + "\n"), now=NOW)


def obligation_row(document: str = "52345678", obligation_id: str = "CRE-1", *,
                   kind: str = "CREDITO", due: str = "850000", minimum: str = "850000",
                   maximum: str = "12400000", due_date: str = "2026-11-15",
                   cutoff: str = CUTOFF, sep: str = ",") -> str:
    return sep.join([document, obligation_id, kind, "0302024001876", "Crédito de libre inversión",
                     due_date, due, minimum, maximum, cutoff])


#: Bookkeeping of the closing of absent obligations: every import stamps the obligations it lists,
#: and each such write stores the next version (a payment that read the obligation must re-read).
STAMP = ("import_batch", "import_line", "version")


def snapshot(item: Obligation) -> dict[str, object]:
    """What the member and the payment engine see (the import's stamp left out)."""
    values = {k: v for k, v in item.attribute_values.items() if k not in STAMP}
    if item.portal_payments is not None:
        values["portal_payments"] = item.portal_payments.as_dict()
    return values


@pytest.fixture
def member(make_member) -> Member:  # type: ignore[no-untyped-def]
    return make_member("52345678", full_name="María Fernanda Gómez")


def counts(report: ImportReport) -> tuple[int, int, int, int, int]:
    return report.rows, report.inserted, report.updated, report.unchanged, report.rejected


# --- tables ------------------------------------------------------------------------------------

def test_create_all_tables_is_idempotent(aws: None) -> None:
    assert create_all_tables(get_settings()) == []  # the fixture already created them all


# --- formats -----------------------------------------------------------------------------------

def test_members_with_bom_semicolons_and_any_column_order(aws: None) -> None:
    header = " STATUS ;Full_Name;document_number;phone;email;document_type"
    report = members("ACTIVO;Ana María Pérez;1020304050;3001234567;ana@correo.example;CC",
                     "BLOQUEADO;José Núñez;79845123;;jose@correo.example;cc",
                     header=header, bom=True)
    assert counts(report) == (2, 2, 0, 0, 0)
    assert report.ok and report.exit_code == 0
    ana = Member.get("1020304050")
    assert (ana.full_name, ana.email, ana.phone, ana.status, ana.document_type) == (
        "Ana María Pérez", "ana@correo.example", "3001234567", "ACTIVO", "CC")
    assert ana.password_hash is None and ana.imported_at == NOW
    jose = Member.get("79845123")
    assert (jose.status, jose.document_type, jose.phone) == ("BLOQUEADO", "CC", None)


def test_obligations_with_commas_and_quoted_fields(aws: None, member: Member) -> None:
    row = ('52345678,CRE-1,CREDITO,0302024001876,"Crédito de libre inversión, cuota 23 de 48",'
           f"2026-11-15,850000,850000,12400000,{CUTOFF}")
    report = obligations(row)
    assert counts(report) == (1, 1, 0, 0, 0)
    item = Obligation.get("52345678", "CRE-1")
    assert item.description == "Crédito de libre inversión, cuota 23 de 48"
    assert (item.amount_due, item.minimum_amount, item.maximum_amount) == (850000, 850000, 12400000)
    assert item.cutoff == datetime(2026, 11, 21, 5, 0, tzinfo=UTC)
    assert item.status == "OPEN" and item.pending_payment_id is None


def test_obligations_with_semicolons_crlf_and_blank_lines(aws: None, member: Member) -> None:
    text = (OBLIGATIONS_HEADER.replace(",", ";") + "\r\n\r\n"
            + obligation_row().replace(",", ";") + "\r\n"
            + obligation_row(obligation_id="APO-1", kind="APORTE", due="85000", minimum="0",
                             maximum="85000").replace(",", ";") + "\r\n")
    report = import_obligations(stream(text), now=NOW)
    assert counts(report) == (2, 2, 0, 0, 0)
    assert Obligation.get("52345678", "APO-1").minimum_amount == 0


def test_demo_files_import_cleanly(aws: None) -> None:
    people = import_members(demo_file("members.csv"), now=NOW)
    owed = import_obligations(demo_file("obligations.csv"), now=NOW)
    assert people.ok and owed.ok and not people.warnings and not owed.warnings
    assert 6 <= people.inserted <= 8 and owed.inserted >= 10
    assert all(m.password_hash is None for m in Member.scan())
    statuses = {m.status for m in Member.scan()}
    assert {"ACTIVO", "INACTIVO", "BLOQUEADO"} <= statuses


def test_chunk_boundaries_do_not_matter(aws: None, member: Member,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports.limits, "CHUNK_BYTES", 7)  # splits lines and multi-byte characters
    report = obligations(obligation_row(), obligation_row(obligation_id="CRE-2"))
    assert counts(report) == (2, 2, 0, 0, 0)
    assert Obligation.get("52345678", "CRE-2").description == "Crédito de libre inversión"


# --- file-level errors -------------------------------------------------------------------------

def test_missing_columns_are_named(aws: None) -> None:
    report = members("CC;1020304050;Ana", header="document_type;document_number;full_name")
    assert report.file_error is not None
    assert "faltan columnas obligatorias: email, status" in report.file_error
    assert report.exit_code == 2 and report.rows == 0
    assert "ERROR DEL ARCHIVO" in report.to_text()


def test_empty_and_utf16_files_are_file_errors(aws: None) -> None:
    assert "vacío" in (import_members(io.BytesIO(b""), now=NOW).file_error or "")
    utf16 = ("\n".join([MEMBERS_HEADER, "CC;1020304050;Ana;a@b.example;;ACTIVO"])).encode("utf-16")
    assert "UTF-16" in (import_members(io.BytesIO(utf16), now=NOW).file_error or "")


def test_bad_encoding_is_reported_with_its_line(aws: None) -> None:
    good = "CC;1020304050;Ana Pérez;ana@correo.example;3001234567;ACTIVO\n"
    latin1 = "CC;52345678;José Gómez;jose@correo.example;3001234567;ACTIVO\n".encode("latin-1")
    raw = (MEMBERS_HEADER + "\n" + good).encode() + latin1 + good.replace("1020304050",
                                                                          "79845123").encode()
    report = import_members(io.BytesIO(raw), now=NOW)
    assert counts(report) == (3, 2, 0, 0, 1)
    assert report.errors == [(3, "el texto no es UTF-8 válido (byte 0xE9 en la posición 16); "
                                 "guarde el archivo como UTF-8")]
    assert report.exit_code == 1
    assert Member.count() == 2


# --- row validation ----------------------------------------------------------------------------

def test_member_rows_are_rejected_with_precise_reasons(aws: None) -> None:
    report = members(
        "XX;1020304050;Ana;ana@correo.example;;ACTIVO",          # line 2
        "CC;12-34;Ana;ana@correo.example;;ACTIVO",               # line 3
        "CC;1234;Ana;ana@correo.example;;ACTIVO",                # line 4
        "CC;1020304051;  ;ana@correo.example;;ACTIVO",           # line 5
        "CC;1020304052;Ana;ana@correo.example;;RETIRADO",        # line 6
        "CC;1020304053;Ana;ana@correo.example;;ACTIVO;extra",    # line 7
        "CC;1020304054;Ana Ruiz;ana@correo.example;;ACTIVO",     # line 8: fine
    )
    assert counts(report) == (7, 1, 0, 0, 6)
    assert report.errors == [
        (2, "document_type debe ser CC, CE, TI, PP o NIT, se recibió 'XX'"),
        (3, "document_number debe tener entre 5 y 15 dígitos, se recibió '12-34'"),
        (4, "document_number debe tener entre 5 y 15 dígitos, se recibió '1234'"),
        (5, "full_name está vacío"),
        (6, "status debe ser ACTIVO, INACTIVO o BLOQUEADO, se recibió 'RETIRADO'"),
        (7, "la fila tiene 7 campos y el encabezado 6 (revise el delimitador ';' y las comillas)"),
    ]
    assert "línea 6: status debe ser ACTIVO, INACTIVO o BLOQUEADO" in report.to_text()
    assert Member.get("1020304054").full_name == "Ana Ruiz"


def test_member_without_usable_email_goes_in_with_a_warning(aws: None) -> None:
    report = members("CC;1020304050;Ana;;3001234567;ACTIVO",
                     "CC;52345678;José;jose(at)correo;3001234567;ACTIVO")
    assert counts(report) == (2, 2, 0, 0, 0) and report.ok
    assert report.warnings == [
        (2, "el asociado 1020304050 no tiene correo electrónico: no podrá recuperar su "
            "contraseña"),
        (3, "email 'jose(at)correo' no es una dirección válida: el asociado 52345678 queda sin "
            "correo y no podrá recuperar su contraseña"),
    ]
    assert Member.get("52345678").email is None


def test_repeated_member_in_the_file_is_rejected(aws: None) -> None:
    report = members("CC;1020304050;Ana;ana@correo.example;;ACTIVO",
                     "CC;1020304050;Ana Otra;ana@correo.example;;ACTIVO")
    assert counts(report) == (2, 1, 0, 0, 1)
    assert report.errors == [(3, "el documento 1020304050 ya apareció en la línea 2; se rechaza "
                                 "la repetición")]
    assert Member.get("1020304050").full_name == "Ana"


def test_obligation_rows_are_rejected_with_precise_reasons(aws: None, member: Member) -> None:
    report = obligations(
        obligation_row(due="12,5", sep=";"),                                          # 2
        obligation_row(kind="PRESTAMO", sep=";"),                                     # 3
        obligation_row(due_date="2026-02-30", sep=";"),                               # 4
        obligation_row(due_date="23/11/2026", sep=";"),                               # 5
        obligation_row(minimum="900000", sep=";"),                                    # 6
        obligation_row(maximum="800000", sep=";"),                                    # 7
        obligation_row(cutoff="2026-11-21T00:00:00", sep=";"),                        # 8
        obligation_row(cutoff="ayer", sep=";"),                                       # 9
        obligation_row(cutoff="2026-12-31T00:00:00-05:00", sep=";"),                  # 10
        obligation_row(document="99999999", sep=";"),                                 # 11
        obligation_row(due="-5", sep=";"),                                            # 12
        obligation_row(obligation_id="CRE-9", sep=";"),                               # 13: fine
        obligation_row(obligation_id="CRE-9", due_date="2026-12-15", sep=";"),      # 14: repeated
    )
    assert counts(report) == (13, 1, 0, 0, 12)
    assert report.errors == [
        (2, "amount_due debe ser un entero de pesos no negativo, se recibió '12,5'"),
        (3, "type debe ser APORTE, CREDITO, AHORRO o CONVENIO, se recibió 'PRESTAMO'"),
        (4, "due_date debe ser una fecha AAAA-MM-DD, se recibió '2026-02-30'"),
        (5, "due_date debe ser una fecha AAAA-MM-DD, se recibió '23/11/2026'"),
        (6, "minimum_amount (900000) no puede ser mayor que amount_due (850000)"),
        (7, "amount_due (850000) no puede ser mayor que maximum_amount (800000)"),
        (8, "cutoff debe incluir la zona horaria (p. ej. 2026-11-20T18:00:00-05:00), se recibió "
            "'2026-11-21T00:00:00'"),
        (9, "cutoff debe ser una fecha y hora ISO 8601 con zona horaria (p. ej. "
            "2026-11-20T18:00:00-05:00), se recibió 'ayer'"),
        (10, "cutoff '2026-12-31T00:00:00-05:00' está en el futuro"),
        (11, "no existe un asociado con documento 99999999; cargue primero el archivo de "
             "asociados"),
        (12, "amount_due debe ser un entero de pesos no negativo, se recibió '-5'"),
        (14, "la obligación CRE-9 del documento 52345678 ya apareció en la línea 13; se rechaza "
             "la repetición"),
    ]
    assert [o.obligation_id for o in Obligation.query("52345678")] == ["CRE-9"]
    assert Obligation.get("52345678", "CRE-9").amount_due == 850000


def test_several_problems_of_one_row_are_reported_together(aws: None, member: Member) -> None:
    report = obligations(obligation_row(kind="X", due="1.000"))
    assert report.errors == [(2, "type debe ser APORTE, CREDITO, AHORRO o CONVENIO, se recibió "
                                 "'X'; amount_due debe ser un entero de pesos no negativo, se "
                                 "recibió '1.000'")]


def test_report_keeps_a_bounded_number_of_messages(aws: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports.limits, "MAX_MESSAGES", 2)
    report = members(*[f"ZZ;{1020304050 + i};Ana;a@correo.example;;ACTIVO" for i in range(5)])
    assert report.rejected == 5 and len(report.errors) == 2 and report.errors_omitted == 3
    assert "... y 3 filas rechazadas más" in report.to_text()


# --- upsert ------------------------------------------------------------------------------------

def test_upsert_never_touches_password_or_security_fields(aws: None, make_member) -> None:  # type: ignore[no-untyped-def]
    original = make_member("1020304050", password="una frase larga y secreta")
    locked = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    original.update(actions=[Member.failed_consecutive.set(3), Member.locked_until.set(locked),
                             Member.terms_version.set("2026-11"),
                             Member.active_recovery.set("abc"),
                             Member.password_history.set(["h1", "h2"])])
    report = members("CE;1020304050;Ana María Pérez Gil;ana.nueva@correo.example;;BLOQUEADO")
    assert counts(report) == (1, 0, 1, 0, 0)
    after = Member.get("1020304050")
    assert (after.document_type, after.full_name, after.email, after.phone, after.status) == (
        "CE", "Ana María Pérez Gil", "ana.nueva@correo.example", None, "BLOQUEADO")
    assert after.imported_at == NOW and after.updated_at == NOW
    assert after.password_hash == original.password_hash and after.password_hash
    assert (after.failed_consecutive, after.locked_until, after.terms_version,
            after.active_recovery, after.password_history) == (3, locked, "2026-11", "abc",
                                                               ["h1", "h2"])


def test_resending_the_same_files_changes_nothing(aws: None) -> None:
    import_members(demo_file("members.csv"), now=NOW)
    import_obligations(demo_file("obligations.csv"), now=NOW)
    before = {(o.document_number, o.obligation_id): snapshot(o) for o in Obligation.scan()}
    later = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    again_members = import_members(demo_file("members.csv"), now=later)
    again = import_obligations(demo_file("obligations.csv"), now=later)
    assert again_members.unchanged == again_members.rows and again_members.updated == 0
    assert again.unchanged == again.rows and again.inserted == again.updated == 0
    assert again.closed == 0 and again.closing == "done"
    assert {(o.document_number, o.obligation_id): snapshot(o)
            for o in Obligation.scan()} == before
    assert {o.import_batch for o in Obligation.scan()} == {again.batch_id}
    assert all(m.imported_at == NOW for m in Member.scan())


def test_changed_rows_are_updated(aws: None, member: Member) -> None:
    obligations(obligation_row())
    report = obligations(obligation_row(due="1700000", due_date="2026-12-15",
                                        cutoff="2026-11-22T00:00:00-05:00"))
    assert counts(report) == (1, 0, 1, 0, 0)
    item = Obligation.get("52345678", "CRE-1")
    assert (item.amount_due, item.due_date, item.updated_at) == (1700000, "2026-12-15", NOW)


def test_many_rows_go_in_bounded_batches(aws: None, member: Member,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports.limits, "BATCH_SIZE", 3)
    monkeypatch.setattr(imports.limits, "PROGRESS_EVERY", 4)
    seen: list[int] = []
    text = "\n".join([OBLIGATIONS_HEADER] + [obligation_row(obligation_id=f"O-{i}")
                                             for i in range(10)])
    report = import_obligations(stream(text), now=NOW, progress=seen.append)
    assert counts(report) == (10, 10, 0, 0, 0) and seen == [4, 8]
    assert Obligation.count("52345678") == 10


# --- the cut-off rule --------------------------------------------------------------------------

def _with_portal_payments(pending: str | None = "pay-9") -> None:
    obligations(obligation_row(due="200000", minimum="100000", maximum="500000",
                               cutoff="2026-11-19T00:00:00-05:00"))
    item = Obligation.get("52345678", "CRE-1")
    item.update(actions=[
        Obligation.portal_payments.set({
            "pay-1": {"amount": 50000, "at": "2026-11-20T10:00:00-05:00"},   # before the cut-off
            "pay-2": {"amount": 30000, "at": "2026-11-22T12:00:00-05:00"},   # after it
            "pay-3": {"amount": 90000, "at": "2026-11-22T13:00:00-05:00"},   # after it
        }),
        Obligation.amount_due.set(30000),
        Obligation.pending_payment_id.set(pending),
    ])


def test_portal_payments_after_the_cutoff_are_not_resurrected(aws: None, member: Member) -> None:
    _with_portal_payments()
    row = obligation_row(due="200000", minimum="100000", maximum="500000", cutoff=CUTOFF)
    report = obligations(row)
    assert counts(report) == (1, 0, 1, 0, 0)
    item = Obligation.get("52345678", "CRE-1")
    # The core knows pay-1 (before its cut-off); pay-2 and pay-3 (120,000) it does not.
    assert (item.amount_due, item.minimum_amount, item.maximum_amount) == (80000, 0, 380000)
    assert set(item.portal_payments.as_dict()) == {"pay-2", "pay-3"}
    assert item.pending_payment_id == "pay-9"
    assert obligations(row).unchanged == 1  # idempotent
    assert snapshot(Obligation.get("52345678", "CRE-1")) == snapshot(item)


def test_a_file_that_knows_every_portal_payment_drops_them(aws: None, member: Member) -> None:
    _with_portal_payments(pending=None)
    report = obligations(obligation_row(due="30000", minimum="30000", maximum="330000",
                                        cutoff="2026-11-23T08:00:00-05:00"))
    assert counts(report) == (1, 0, 1, 0, 0)
    item = Obligation.get("52345678", "CRE-1")
    assert (item.amount_due, item.minimum_amount, item.maximum_amount) == (30000, 30000, 330000)
    assert item.portal_payments is None and item.pending_payment_id is None


def test_a_file_older_than_the_stored_balance_is_rejected(aws: None, member: Member) -> None:
    obligations(obligation_row(cutoff="2026-11-22T00:00:00-05:00"))
    report = obligations(obligation_row(due="999999", maximum="99999999", cutoff=CUTOFF))
    assert counts(report) == (1, 0, 0, 0, 1)
    assert report.errors[0][0] == 2 and "anterior al ya cargado" in report.errors[0][1]
    assert Obligation.get("52345678", "CRE-1").amount_due == 850000


def test_a_payment_applied_during_the_import_is_not_lost(aws: None, member: Member) -> None:
    obligations(obligation_row(due="200000", minimum="100000", maximum="500000",
                               cutoff="2026-11-19T00:00:00-05:00"))
    storage = DynamoImportStorage()
    stale = storage.obligation("52345678", "CRE-1")
    assert stale is not None
    # Meanwhile the portal applies a payment made after the new file's cut-off.
    stale_copy = Obligation.get("52345678", "CRE-1")
    stale_copy.update(actions=[
        Obligation.portal_payments.set({"pay-7": {"amount": 70000,
                                                  "at": "2026-11-22T09:00:00-05:00"}}),
        Obligation.amount_due.add(-70000),
    ])
    report = ImportReport("obligations")
    importer = imports.ObligationImporter(storage, report, NOW, workers=1)
    try:
        row = imports.parse_obligation(
            imports.Row(2, {"document_number": "52345678", "obligation_id": "CRE-1",
                             "type": "CREDITO", "product_number": "0302024001876",
                             "description": "", "due_date": "2026-12-15",
                             "amount_due": "200000", "minimum_amount": "100000",
                             "maximum_amount": "500000", "cutoff": CUTOFF}), report, NOW)
        assert row is not None
        outcome = importer.upsert(row, stale)  # its first conditional write must fail
    finally:
        importer.close()
    assert outcome.status == "updated"
    item = Obligation.get("52345678", "CRE-1")
    assert (item.amount_due, item.minimum_amount, item.maximum_amount) == (130000, 30000, 430000)
    assert set(item.portal_payments.as_dict()) == {"pay-7"}


# --- command line ------------------------------------------------------------------------------

def test_command_line_exit_codes(aws: None, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.import_cli import main

    good = tmp_path / "members.csv"
    good.write_text(MEMBERS_HEADER + "\nCC;52345678;María Gómez;maria@correo.example;;ACTIVO\n",
                    "utf-8")
    assert main(["members", str(good)]) == 0
    assert "nuevas:         1" in capsys.readouterr().out
    some_bad = tmp_path / "obligations.csv"
    some_bad.write_text("\n".join([OBLIGATIONS_HEADER, obligation_row(),
                                   obligation_row(obligation_id="X", due="abc")]), "utf-8")
    assert main(["obligations", str(some_bad)]) == 1
    assert "línea 3: amount_due debe ser un entero" in capsys.readouterr().out
    broken = tmp_path / "broken.csv"
    broken.write_text("document_number;full_name\n1;x\n", "utf-8")
    assert main(["members", str(broken)]) == 2
    assert "faltan columnas obligatorias" in capsys.readouterr().out
    assert main(["members", str(tmp_path / "missing.csv")]) == 2


def test_the_optional_opening_date_is_stored_checked_and_updated(aws: None, member: Member) -> None:
    """PSE's anti-fraud data for financial-services merchants: when the product was opened."""
    header = f"{OBLIGATIONS_HEADER},opening_date"
    report = obligations(f"{obligation_row()},2019-03-14", f"{obligation_row('52345678', 'CRE-2')},",
                         f"{obligation_row('52345678', 'CRE-3')},14/03/2019", header=header)
    assert counts(report) == (3, 2, 0, 0, 1)
    assert report.errors[0][0] == 4
    assert "opening_date debe ser una fecha AAAA-MM-DD, se recibió '14/03/2019'" in report.errors[0][1]
    assert Obligation.get("52345678", "CRE-1").opened_on == "2019-03-14"
    assert Obligation.get("52345678", "CRE-2").opened_on is None
    newer = "2026-11-22T00:00:00-05:00"
    report = obligations(f"{obligation_row('52345678', 'CRE-2', cutoff=newer)},2020-01-31",
                         header=header)
    assert counts(report) == (1, 0, 1, 0, 0)
    assert Obligation.get("52345678", "CRE-2").opened_on == "2020-01-31"
