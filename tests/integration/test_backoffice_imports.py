"""Back office imports, on moto: closing absent obligations, "Aplicado en la
cooperativa", the S3 drop folder (EventBridge → import_from_s3) and the command line."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from chalicelib.adapters.dynamo.models import AuditEvent, ImportRun, Member, Obligation, Payment
from chalicelib.services import import_jobs, imports, payments
from chalicelib.services.imports import ImportBusy, import_members, import_obligations
from tests.integration.test_session_api import DOC, PASSWORD
from tests.page_support import Browser
from tests.payment_support import start

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
HEADER = ("document_number;obligation_id;type;product_number;description;due_date;amount_due;"
          "minimum_amount;maximum_amount;cutoff")
MEMBERS_HEADER = "document_type;document_number;full_name;email;phone;status"
CUT_1 = "2026-11-21T00:00:00-05:00"
CUT_2 = "2026-11-22T00:00:00-05:00"
BUCKET = "sv-local-files"


def row(obligation_id: str, *, document: str = "52345678", due: str = "85000",
        cutoff: str = CUT_1, kind: str = "APORTE") -> str:
    return ";".join([document, obligation_id, kind, f"P-{obligation_id}", "", "2026-11-30", due,
                     "0", due, cutoff])


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def load(*rows: str, now: datetime = NOW, **options) -> imports.ImportReport:  # type: ignore[no-untyped-def]
    return import_obligations(io.BytesIO(csv_bytes(*rows)), now=now, **options)


def status_of(obligation_id: str, document: str = "52345678") -> str:
    return Obligation.get(document, obligation_id, consistent_read=True).status


@pytest.fixture
def member(make_member) -> Member:  # type: ignore[no-untyped-def]
    return make_member("52345678", full_name="María Fernanda Gómez")


# --- closing -----------------------------------------------------------------------------------

def test_a_full_file_closes_the_open_obligations_it_does_not_list(aws: None, member: Member) -> None:
    first = load(row("A"), row("B"), row("C"))
    assert (first.inserted, first.closed, first.closing) == (3, 0, "done")
    later = NOW + timedelta(days=1)
    report = load(row("A", cutoff=CUT_2), row("B", cutoff=CUT_2), now=later)
    assert (report.updated, report.closed, report.absent, report.closing) == (2, 1, 1, "done")
    closed = Obligation.get("52345678", "C", consistent_read=True)
    assert (closed.status, closed.closed_at, closed.updated_at) == ("CLOSED", later, later)
    assert closed.open_shard is None  # out of the open_by_import index
    assert closed.amount_due == 85000  # closed, never deleted, nothing else touched
    assert [status_of(o) for o in "AB"] == ["OPEN", "OPEN"]
    assert "cerradas:       1 (ausentes del archivo)" in report.to_text()

    # The same file again changes nothing.
    again = load(row("A", cutoff=CUT_2), row("B", cutoff=CUT_2), now=later + timedelta(hours=1))
    assert (again.inserted, again.updated, again.unchanged, again.closed) == (0, 0, 2, 0)

    # Listed again by a later file: open again.
    back = load(row("A", cutoff=CUT_2), row("B", cutoff=CUT_2), row("C", cutoff=CUT_2),
                now=later + timedelta(hours=2))
    assert (back.updated, back.unchanged, back.closed) == (1, 2, 0)
    reopened = Obligation.get("52345678", "C", consistent_read=True)
    assert (reopened.status, reopened.closed_at) == ("OPEN", None)
    assert reopened.open_shard == imports.open_shard("52345678", "C")


def test_an_obligation_with_a_payment_in_progress_is_not_closed(aws: None, member: Member) -> None:
    load(row("A"), row("B"))
    Obligation.get("52345678", "B").update(actions=[Obligation.pending_payment_id.set("pay-1"),
                                                    Obligation.pending_reference.set("SV-REF-1")])
    report = load(row("A", cutoff=CUT_2), now=NOW + timedelta(hours=1))
    assert (report.closed, report.absent) == (0, 1)
    assert report.not_closed == ["documento 52345678, obligación B: tiene un pago en curso "
                                 "(referencia SV-REF-1); sigue abierta y se cerrará en una "
                                 "próxima importación"]
    assert status_of("B") == "OPEN"
    assert "Ausentes del archivo que siguen abiertas (pago en curso):" in report.to_text()
    # Once the payment released it, the next full file closes it.
    Obligation.get("52345678", "B").update(actions=[Obligation.pending_payment_id.remove(),
                                                    Obligation.pending_reference.remove()])
    assert load(row("A", cutoff=CUT_2), now=NOW + timedelta(hours=2)).closed == 1
    assert status_of("B") == "CLOSED"


def test_a_partial_file_closes_nothing(aws: None, member: Member) -> None:
    load(row("A"), row("B"))
    report = load(row("A", cutoff=CUT_2), full=False)
    assert (report.closed, report.closing, report.full) == (0, "partial", False)
    assert "archivo parcial" in report.to_text()
    assert status_of("B") == "OPEN"


def test_a_rejected_row_keeps_its_obligation_open(aws: None, member: Member) -> None:
    load(row("A"), row("B"), row("C"))
    report = load(row("A", due="12,5", cutoff=CUT_2), row("B", cutoff=CUT_2), now=NOW + timedelta(1))
    assert report.rejected == 1 and report.errors[0][0] == 2
    assert (report.closed, status_of("A"), status_of("C")) == (1, "OPEN", "CLOSED")
    assert Obligation.get("52345678", "A").amount_due == 85000  # the bad row wrote no data


def test_unreadable_rows_or_a_broken_file_close_nothing(aws: None, member: Member) -> None:
    load(row("A"), row("B"))
    unreadable = load(row("A", cutoff=CUT_2), "52345678;B;APORTE",
                      now=NOW + timedelta(hours=1))
    assert (unreadable.rejected, unreadable.closed, unreadable.closing) == (1, 0, "unreadable_rows")
    no_key = load(row("A", cutoff=CUT_2), row("", document="x"), now=NOW + timedelta(hours=2))
    assert (no_key.closed, no_key.closing) == (0, "unreadable_rows")
    broken = import_obligations(io.BytesIO(b"document_number;obligation_id\n52345678;A\n"),
                                now=NOW + timedelta(hours=3))
    assert (broken.exit_code, broken.closing) == (2, "file_error")
    empty = import_obligations(io.BytesIO(csv_bytes()), now=NOW + timedelta(hours=4))
    assert (empty.closed, empty.closing) == (0, "empty")
    assert status_of("B") == "OPEN"


def test_a_file_that_would_close_more_than_it_lists_needs_force(
        aws: None, member: Member, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports.limits, "CLOSE_GUARD_MIN", 3)
    load(*[row(f"O-{i}") for i in range(8)])
    guarded = load(row("O-0", cutoff=CUT_2), now=NOW + timedelta(hours=1))
    assert (guarded.closed, guarded.absent, guarded.closing) == (0, 7, "guard")
    assert "cerraría 7 obligaciones y solo incluye 1" in guarded.to_text()
    forced = load(row("O-0", cutoff=CUT_2), now=NOW + timedelta(hours=2), force_close=True)
    assert (forced.closed, forced.closing) == (7, "done")
    assert [o.obligation_id for o in Obligation.query("52345678") if o.status == "OPEN"] == ["O-0"]


def test_repeated_rows_are_found_across_batches_without_keeping_keys(
        aws: None, member: Member, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports.limits, "BATCH_SIZE", 2)
    report = load(row("A"), row("B"), row("C"), row("A", due="90000"), row("D"), row("C"))
    assert (report.inserted, report.rejected) == (4, 2)
    assert report.errors == [
        (5, "la obligación A del documento 52345678 ya apareció en la línea 2; se rechaza la "
            "repetición"),
        (7, "la obligación C del documento 52345678 ya apareció en la línea 4; se rechaza la "
            "repetición"),
    ]
    assert Obligation.get("52345678", "A").amount_due == 85000
    assert not hasattr(imports.ObligationImporter, "seen")


def test_one_obligations_import_at_a_time(aws: None, member: Member) -> None:
    ImportRun(imports.LOCK_ID, kind="obligations", started_at=NOW, holder="other-batch",
              lease_until=NOW + timedelta(minutes=20)).save()
    with pytest.raises(ImportBusy, match="otra importación de obligaciones está en curso: lote "
                                         "other-batch"):
        load(row("A"))
    assert Obligation.count("52345678") == 0
    # A lease that ran out (a crashed import) no longer blocks.
    report = load(row("A"), now=NOW + timedelta(minutes=21))
    assert report.inserted == 1
    with pytest.raises(ImportRun.DoesNotExist):
        ImportRun.get(imports.LOCK_ID)  # released
    run = ImportRun.get(report.batch_id)
    assert run.kind == "obligations" and json.loads(run.summary)["inserted"] == 1


# --- "Aplicado en la cooperativa" ----------------------------------------------------------------

def _payment(payment_id: str, *, approved_at: datetime, exported_at: datetime | None) -> Payment:
    payment = Payment(payment_id=payment_id, reference=f"REF-{payment_id}",
                      document_number="52345678", payer_name="María", status="APPROVED",
                      amount=50000, items=[], bank_code="1022", person_type="natural",
                      description="Pago", ip="190.1.1.1", gateway="fake", created_at=approved_at,
                      updated_at=approved_at, approved_at=approved_at, status_history=[],
                      exported_at=exported_at, export_id="exp-1" if exported_at else None)
    payment.save()
    return payment


def test_the_import_confirms_payments_the_core_knows(aws: None, member: Member) -> None:
    """Dropped (and confirmed once) only when an export had claimed it by the file's cut-off; a
    payment approved before the cut-off but exported after it is still subtracted."""
    load(row("A", due="200000", cutoff="2026-11-20T00:00:00-05:00"))
    approved = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)
    _payment("pay-exported", approved_at=approved, exported_at=approved + timedelta(hours=1))
    _payment("pay-late", approved_at=approved, exported_at=datetime(2026, 11, 22, 20, 0,
                                                                      tzinfo=UTC))
    Obligation.get("52345678", "A").update(actions=[
        Obligation.portal_payments.set({
            "pay-exported": {"amount": 50000, "at": approved.isoformat(), "reference": "REF-1"},
            "pay-late": {"amount": 30000, "at": approved.isoformat(), "reference": "REF-2"}}),
        Obligation.amount_due.set(120000)])
    # Cut at 2026-11-22 05:00 UTC: the core has pay-exported (exported 15:00 on the 21st), not
    # pay-late (exported on the 22nd at 20:00), though both were approved before the cut.
    report = load(row("A", due="150000", cutoff=CUT_2), now=NOW)
    assert (report.updated, report.applied_in_core) == (1, 1)
    item = Obligation.get("52345678", "A", consistent_read=True)
    assert set(item.portal_payments.as_dict()) == {"pay-late"}
    assert item.amount_due == 120000  # 150,000 from the core - 30,000 it does not know yet
    assert Payment.get("pay-exported").core_applied_at == NOW
    assert Payment.get("pay-late").core_applied_at is None
    (event,) = [e for e in AuditEvent.query("52345678") if e.event == "payment_applied_in_core"]
    assert (event.actor, event.payment_id, event.details["obligation_id"]) == (
        "system:import", "pay-exported", "A")

    # A later file that knows pay-late too: confirmed; pay-exported's time is kept (set once).
    later = NOW + timedelta(days=1)
    again = load(row("A", due="120000", cutoff="2026-11-23T00:00:00-05:00"), now=later)
    assert again.applied_in_core == 1
    assert Obligation.get("52345678", "A").portal_payments is None
    assert (Payment.get("pay-exported").core_applied_at, Payment.get("pay-late").core_applied_at) == (
        NOW, later)


def test_the_member_sees_aplicado_en_la_cooperativa(client, ctx, make_member, gateway, clock) -> None:  # type: ignore[no-untyped-def]
    """Import → pay → approve → export → next import: the receipt's stepper and timeline show
    the step with its time, and the obligation's balance is the core's."""
    from chalicelib.services import exports

    make_member(DOC, password=PASSWORD)
    doc_row = row("APO-1", document=DOC, due="80000", cutoff="2026-11-22T00:00:00-05:00")
    assert load(doc_row, now=clock.now).inserted == 1
    started = start(ctx, items=[("APO-1", 80_000)])
    clock.advance(minutes=3)
    payments.apply_gateway_event(ctx, {}, gateway.event(started.reference, "APPROVED", at=clock.now))
    view = payments.receipt(ctx, started.id, document_number=DOC)
    assert [s.label for s in view.lifecycle][-1] == "Aprobado"  # not confirmed yet
    clock.advance(minutes=10)
    exported = exports.export_approved(ctx, now=clock.now, requested_by="staff:test")
    assert exported.payments == 1
    clock.advance(hours=2)
    cutoff = (clock.now - timedelta(minutes=30)).astimezone(timezone(timedelta(hours=-5)))
    report = load(row("APO-1", document=DOC, due="0", cutoff=cutoff.isoformat()), now=clock.now)
    assert report.applied_in_core == 1

    view = payments.receipt(ctx, started.id, document_number=DOC)
    assert view.timeline[-1] == ("Aplicado en la cooperativa", clock.now)
    last = view.lifecycle[-1]
    assert (last.label, last.state, last.current, last.at) == (
        "Aplicado en la cooperativa", "done", True, clock.now)
    assert [s.current for s in view.lifecycle].count(True) == 1

    browser = Browser(client)
    browser.post("/ingresar", {"document_number": DOC}, csrf_from="/ingresar")
    browser.post("/ingresar/clave", {"password": PASSWORD}, csrf_from="/ingresar/clave")
    html = browser.get(f"/pagos/{started.id}").body.decode()
    stepper = re.search(r'<ol class="stepper" aria-label="Seguimiento del pago">(.*?)</ol>', html,
                        re.S).group(1)
    assert "Aplicado en la cooperativa" in stepper and "(completado, paso actual)" in stepper
    history = browser.get("/pagos").body.decode()
    assert "Aplicado en la cooperativa" in history


# --- the parts of a loan instalment -------------------------------------------------------

PARTS_HEADER = HEADER + ";late_interest;fees;insurance;interest;capital"


def credit(obligation_id: str, parts: str, *, due: str = "850000", cutoff: str = CUT_1,
           kind: str = "CREDITO") -> str:
    return row(obligation_id, due=due, cutoff=cutoff, kind=kind) + ";" + parts


def load_parts(*rows: str, now: datetime = NOW) -> imports.ImportReport:
    return import_obligations(io.BytesIO(csv_bytes(*rows, header=PARTS_HEADER)), now=now)


def parts_of(obligation_id: str) -> dict[str, int] | None:
    return Obligation.get("52345678", obligation_id, consistent_read=True).instalment_parts


def test_the_optional_columns_store_the_parts_of_a_credit_instalment(aws: None, member: Member) -> None:
    report = load_parts(credit("CRE-1", "6800;;14200;186000;643000"),
                        credit("CRE-2", "0;0;0;0;850000"),
                        row("APO-1") + ";;;;;")  # other rows leave the columns empty
    assert report.ok and report.inserted == 3
    assert parts_of("CRE-1") == {"late_interest": 6800, "insurance": 14200, "interest": 186000,
                                 "capital": 643000}
    assert parts_of("CRE-2") == {"capital": 850000}  # zeros are not kept
    assert parts_of("APO-1") is None

    later = NOW + timedelta(hours=1)
    same = load_parts(credit("CRE-1", "6800;;14200;186000;643000"), credit("CRE-2", "0;0;0;0;850000"),
                      row("APO-1") + ";;;;;", now=later)
    assert (same.unchanged, same.updated) == (3, 0)

    # A newer cut-off: new parts replace the old ones; a file without the columns drops them.
    changed = load_parts(credit("CRE-1", "0;0;14200;190000;645800", cutoff=CUT_2),
                         credit("CRE-2", ";;;;", cutoff=CUT_2), now=later)
    assert changed.ok and changed.updated == 2
    assert parts_of("CRE-1") == {"insurance": 14200, "interest": 190000, "capital": 645800}
    assert parts_of("CRE-2") is None
    without = load(row("CRE-1", due="850000", cutoff=CUT_2, kind="CREDITO"), now=later)
    assert without.updated == 1 and parts_of("CRE-1") is None


def test_bad_parts_reject_the_row_with_a_precise_reason(aws: None, member: Member) -> None:
    report = load_parts(credit("CRE-1", "6800;;14200;186000;600000"),
                        credit("CRE-2", "-5;;0;0;850005"),
                        credit("CRE-3", "1.000;;0;0;849000"),
                        credit("CNV-1", "0;0;32000;0;0", due="32000", kind="CONVENIO"),
                        credit("CRE-4", "6800;;14200;186000;643000"))
    assert report.inserted == 1 and parts_of("CRE-4") is not None
    assert report.errors == [
        (2, "la suma del detalle de la cuota (late_interest + insurance + interest + capital = "
            "807000) debe ser igual a amount_due (850000)"),
        (3, "late_interest debe ser un entero de pesos no negativo, se recibió '-5'"),
        (4, "late_interest debe ser un entero de pesos no negativo, se recibió '1.000'"),
        (5, "solo las obligaciones CREDITO llevan el detalle de la cuota (late_interest, fees, "
            "insurance, interest, capital); esta fila es CONVENIO"),
    ]


# --- the S3 drop folder ----------------------------------------------------------------------------

@pytest.fixture
def bucket(aws: None) -> str:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def _put(key: str, body: bytes) -> None:
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key=key, Body=body)


def _get(key: str) -> str:
    return boto3.client("s3", region_name="us-east-1").get_object(
        Bucket=BUCKET, Key=key)["Body"].read().decode("utf-8")


def _invoke(client, key: str, bucket: str = BUCKET):  # type: ignore[no-untyped-def]
    event = client.events.generate_cw_event(
        source="aws.s3", detail_type="Object Created",
        detail={"version": "0", "bucket": {"name": bucket},
                "object": {"key": key, "size": 100, "etag": "x"}, "reason": "PutObject"},
        resources=[f"arn:aws:s3:::{bucket}"])
    return client.lambda_.invoke("import_from_s3", event).payload


@pytest.fixture
def lambda_client(bucket, clock, monkeypatch):  # type: ignore[no-untyped-def]
    from chalice.test import Client

    from app import app
    from tests.conftest import ROOT

    monkeypatch.setenv("IMPORT_BUCKET", BUCKET)
    with Client(app, stage_name="local", project_dir=str(ROOT)) as test_client:
        yield test_client


def test_files_dropped_in_s3_are_imported_with_a_report_next_to_them(lambda_client) -> None:  # type: ignore[no-untyped-def]
    _put("imports/members-2026-11-23.csv",
         (MEMBERS_HEADER + "\nCC;52345678;María Gómez;maria@correo.example;;ACTIVO\n"
          "CC;1234;Nadie;x@correo.example;;ACTIVO\n").encode())
    members = _invoke(lambda_client, "imports/members-2026-11-23.csv")
    assert (members["kind"], members["inserted"], members["rejected"], members["exit_code"]) == (
        "members", 1, 1, 1)
    text = _get("reports/members-2026-11-23.csv.report.txt")
    assert text.startswith("Archivo: s3://sv-local-files/imports/members-2026-11-23.csv")
    assert "línea 3: document_number debe tener entre 5 y 15 dígitos" in text
    data = json.loads(_get("reports/members-2026-11-23.csv.report.json"))
    assert (data["kind"], data["inserted"], data["errors"][0]["line"]) == ("members", 1, 3)

    _put("imports/obligations/core-20261123.csv", csv_bytes(row("A"), row("B")))
    result = _invoke(lambda_client, "imports/obligations/core-20261123.csv")
    assert (result["kind"], result["inserted"], result["closed"]) == ("obligations", 2, 0)
    assert result["report"] == "reports/obligations/core-20261123.csv.report.txt"
    _put("imports/obligations/core-20261124.csv", csv_bytes(row("A", cutoff=CUT_2)))
    assert _invoke(lambda_client, "imports/obligations/core-20261124.csv")["closed"] == 1
    text = _get("reports/obligations/core-20261124.csv.report.txt")
    assert "Importación de obligaciones (archivo completo)" in text
    assert "cerradas:       1 (ausentes del archivo)" in text
    assert json.loads(_get("reports/obligations/core-20261124.csv.report.json"))["closing"] == "done"

    # A partial file (by its name) closes nothing; the same event twice changes nothing.
    _put("imports/obligations-parcial-1.csv", csv_bytes(row("C", cutoff=CUT_2)))
    partial = _invoke(lambda_client, "imports/obligations-parcial-1.csv")
    assert (partial["inserted"], partial["closed"]) == (1, 0)
    repeat = _invoke(lambda_client, "imports/obligations-parcial-1.csv")
    assert (repeat["inserted"], repeat["updated"], repeat["unchanged"]) == (0, 0, 1)
    assert status_of("A") == "OPEN" and status_of("C") == "OPEN"


def test_the_drop_folder_ignores_other_buckets_and_names_unknown_files(lambda_client) -> None:  # type: ignore[no-untyped-def]
    assert _invoke(lambda_client, "imports/members.csv", bucket="another") == {
        "ignored": "other bucket"}
    assert _invoke(lambda_client, "reports/x.csv") == {"ignored": "not a file under imports/"}
    assert _invoke(lambda_client, "imports/members-gone.csv") == {"ignored": "object not found"}
    _put("imports/saldos.csv", b"x\n")
    unknown = _invoke(lambda_client, "imports/saldos.csv")
    assert (unknown["kind"], unknown["exit_code"]) == (None, 2)
    assert "el nombre no indica el tipo de archivo" in _get("reports/saldos.csv.report.txt")


def test_a_url_encoded_event_key_finds_the_object(lambda_client, member) -> None:  # type: ignore[no-untyped-def]
    _put("imports/obligations nov.csv", csv_bytes(row("A")))
    result = _invoke(lambda_client, "imports/obligations%20nov.csv")
    assert (result["key"], result["inserted"]) == ("imports/obligations nov.csv", 1)
    assert "nuevas:         1" in _get("reports/obligations nov.csv.report.txt")


def test_kind_and_report_names() -> None:
    kind = import_jobs.kind_of
    assert kind("imports/Members_2026.CSV").kind == "members"
    assert kind("imports/asociados.csv").kind == "members"
    assert (kind("imports/obligaciones.csv").kind, kind("imports/obligaciones.csv").full) == (
        "obligations", True)
    assert kind("imports/obligations/saldos-partial.csv").full is False
    assert kind("imports/obligations/2026/11/saldos.csv").kind == "obligations"
    assert kind("imports/members.txt").kind is None
    assert kind("imports/otros/members.csv").kind is None  # an unknown folder
    assert import_jobs.report_keys("imports/obligations/a.csv") == (
        "reports/obligations/a.csv.report.txt", "reports/obligations/a.csv.report.json")


def test_the_object_is_streamed_in_bounded_reads(bucket: str, member: Member,  # type: ignore[no-untyped-def]
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports.limits, "CHUNK_BYTES", 1024)
    _put("imports/obligations.csv", csv_bytes(*[row(f"O-{i}") for i in range(200)]))
    s3 = boto3.client("s3", region_name="us-east-1")
    sizes: list[int | None] = []
    original = s3.get_object

    def spying_get_object(**kwargs):  # type: ignore[no-untyped-def]
        answer = original(**kwargs)
        body = answer["Body"]
        read = body.read

        def bounded_read(amt=None):  # type: ignore[no-untyped-def]
            sizes.append(amt)
            return read(amt)

        body.read = bounded_read
        return answer

    s3.get_object = spying_get_object
    result = import_jobs.import_s3_object(BUCKET, "imports/obligations.csv", now=NOW, s3=s3)
    assert result.report is not None and result.report.inserted == 200
    assert sizes and None not in sizes and max(sizes) == 1024 and len(sizes) > 10


# --- the command line ------------------------------------------------------------------------------

def test_command_line_from_a_file_and_from_s3(bucket: str, member: Member,  # type: ignore[no-untyped-def]
                                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.import_cli import main

    path = tmp_path / "obligations.csv"
    path.write_bytes(csv_bytes(row("A"), row("B")))
    assert main(["obligations", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Importación de obligaciones (archivo completo)" in out
    assert "Resumen: 2 filas: 2 nuevas, 0 actualizadas, 0 sin cambios, 0 rechazadas, 0 cerradas" in out

    _put("imports/obligations-2.csv", csv_bytes(row("A", cutoff=CUT_2), row("X", due="abc")))
    assert main([f"s3://{BUCKET}/imports/obligations-2.csv"]) == 1
    out = capsys.readouterr().out
    assert "línea 3: amount_due debe ser un entero" in out
    assert f"Informe: s3://{BUCKET}/reports/obligations-2.csv.report.txt y .json" in out
    assert "1 cerradas" in out and status_of("B") == "CLOSED"
    assert "línea 3: amount_due" in _get("reports/obligations-2.csv.report.txt")

    path.write_bytes(csv_bytes(row("B", cutoff=CUT_2)))
    assert main(["obligations", str(path), "--partial"]) == 0
    assert "archivo parcial" in capsys.readouterr().out
    assert status_of("A") == "OPEN" and status_of("B") == "OPEN"

    ImportRun(imports.LOCK_ID, kind="obligations", started_at=NOW, holder="busy",
              lease_until=datetime.now(UTC) + timedelta(minutes=5)).save()
    assert main(["obligations", str(path)]) == 3
    assert "otra importación de obligaciones está en curso" in capsys.readouterr().err
    assert main([f"s3://{BUCKET}/imports/missing.csv"]) == 2
    with pytest.raises(SystemExit):
        main(["s3://only-a-bucket", "extra"])


def test_members_imports_are_recorded(aws: None) -> None:
    report = import_members(io.BytesIO(csv_bytes("CC;52345678;Ana;ana@correo.example;;ACTIVO",
                                                 header=MEMBERS_HEADER)), now=NOW, source="x.csv")
    run = ImportRun.get(report.batch_id)
    assert (run.kind, run.source, json.loads(run.summary)["inserted"]) == ("members", "x.csv", 1)


def test_the_merge_template_points_the_rule_at_the_import_bucket() -> None:
    """`chalice package` cannot know the bucket: the merge template puts it in the rule's pattern
    (deep-merged with the prefix filter app.py declares), and the function waits its turn."""
    from app import IMPORT_DROP_PATTERN
    from devtools import infra

    assert infra.import_drop_rules("dev") == [("ImportFromS3", "ImportFromS3Event")]
    function = infra.merge_template("dev")["Resources"]["ImportFromS3"]["Properties"]
    assert function["Events"] == {"ImportFromS3Event": {"Properties": {"Pattern": {"detail": {
        "bucket": {"name": [{"Ref": "ImportBucket"}]}}}}}}
    assert IMPORT_DROP_PATTERN["detail"] == {"object": {"key": [{"prefix": "imports/"}]}}
    config = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())
    assert config["lambda_functions"]["import_from_s3"] == {
        "lambda_timeout": 900, "lambda_memory_size": 1024, "reserved_concurrency": 1}
