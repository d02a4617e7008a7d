"""The import use cases on the fake unit of work (no moto): members, obligations under the cut-off
rule, the closing, the versions every write stores."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.config import get_settings
from chalicelib.context import Context, Runtime
from chalicelib.services import import_jobs
from chalicelib.services.imports import ImportBusy, import_members, import_obligations
from chalicelib.services.imports.lock import LOCK_ID, LOCK_LEASE, LOCK_RENEW_SECONDS, ImportLock
from chalicelib.services.repositories import ImportLease
from tests.fakes import FakeImportStorage, FakeStore

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
MEMBERS = "document_type;document_number;full_name;email;phone;status\n"
OBLIGATIONS = ("document_number;obligation_id;type;product_number;description;due_date;"
               "amount_due;minimum_amount;maximum_amount;cutoff\n")


def row(obligation_id: str, *, due: int = 85_000, cutoff: str = "2026-11-21T00:00:00-05:00") -> str:
    return f"52345678;{obligation_id};APORTE;P-{obligation_id};;2026-11-30;{due};0;{due};{cutoff}\n"


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def ctx(store: FakeStore) -> Context:
    return Context(get_settings(), units_of_work=store.unit_of_work)


def load(ctx: Context, *rows: str, now: datetime = NOW, **options: bool):  # type: ignore[no-untyped-def]
    return import_obligations(io.BytesIO((OBLIGATIONS + "".join(rows)).encode()), now=now,
                              ctx=ctx, **options)


def test_members_are_upserted_with_the_next_version(ctx: Context, store: FakeStore) -> None:
    text = MEMBERS + "CC;52345678;María Gómez;maria@correo.example;;ACTIVO\n"
    first = import_members(io.BytesIO(text.encode()), now=NOW, ctx=ctx)
    assert (first.inserted, first.ok) == (1, True)
    assert store.tables["members"]["52345678"].version == 1
    changed = text.replace("María Gómez", "María José Gómez")
    again = import_members(io.BytesIO(changed.encode()), now=NOW, ctx=ctx)
    member = store.tables["members"]["52345678"]
    assert (again.updated, member.full_name, member.version) == (1, "María José Gómez", 2)
    assert member.password_hash is None
    assert {r.batch_id for r in store.tables["import_runs"].values()} == {first.batch_id,
                                                                         again.batch_id}


def test_obligations_the_cutoff_rule_and_the_closing(ctx: Context, store: FakeStore) -> None:
    import_members(io.BytesIO((MEMBERS + "CC;52345678;María;m@correo.example;;ACTIVO\n").encode()),
                   now=NOW, ctx=ctx)
    first = load(ctx, row("A"), row("B"), row("C"))
    assert (first.inserted, first.closing) == (3, "done")
    obligations = store.tables["obligations"]
    assert {o.version for o in obligations.values()} == {1}

    resent = load(ctx, row("A"), row("B"), row("C"), now=NOW + timedelta(hours=1))
    assert (resent.unchanged, resent.updated) == (3, 0)
    assert {o.version for o in obligations.values()} == {2}  # stamped: the next version

    stale = load(ctx, row("A", cutoff="2026-11-20T00:00:00-05:00"), full=False)
    assert stale.rejected == 1 and "anterior al ya cargado" in stale.errors[0][1]

    newer = "2026-11-22T00:00:00-05:00"
    later = load(ctx, row("A", due=90_000, cutoff=newer), row("B", cutoff=newer),
                 now=NOW + timedelta(days=1))
    assert (later.updated, later.closed) == (2, 1)
    assert obligations[("52345678", "A")].amount_due == 90_000
    assert obligations[("52345678", "C")].status == "CLOSED"
    assert obligations[("52345678", "C")].open_shard is None


def test_unknown_members_are_rejected(ctx: Context) -> None:
    report = load(ctx, row("A"))
    assert report.rejected == 1 and "no existe un asociado" in report.errors[0][1]
    assert report.closing == "empty"


def test_one_obligations_import_at_a_time(ctx: Context, store: FakeStore) -> None:
    store.tables["import_runs"][LOCK_ID] = ImportLease("other", NOW + timedelta(minutes=5))
    with pytest.raises(ImportBusy, match="lote other"):
        load(ctx, row("A"))
    assert load(ctx, row("A"), now=NOW + timedelta(minutes=6)).closing == "empty"
    assert LOCK_ID not in store.tables["import_runs"]


def test_the_run_lasts_what_the_contexts_monotonic_clock_counted(
        ctx: Context, store: FakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([100.0, 107.5])  # the import's start and its end
    monkeypatch.setattr(Runtime, "monotonic", staticmethod(lambda: next(ticks)))
    report = import_members(io.BytesIO(MEMBERS.encode()), now=NOW, ctx=ctx)
    assert store.tables["import_runs"][report.batch_id].finished_at == NOW + timedelta(seconds=7.5)


def test_the_lock_renews_its_lease_on_its_monotonic_clock(store: FakeStore) -> None:
    seconds = [0.0]
    lock = ImportLock(FakeImportStorage(store), "b1", NOW, None, monotonic=lambda: seconds[0])
    lock.acquire()
    assert store.tables["import_runs"][LOCK_ID].lease_until == NOW + LOCK_LEASE
    seconds[0] = LOCK_RENEW_SECONDS - 1
    lock.renew()  # too soon: the lease stays
    assert store.tables["import_runs"][LOCK_ID].lease_until == NOW + LOCK_LEASE
    seconds[0] = LOCK_RENEW_SECONDS
    lock.renew()
    assert store.tables["import_runs"][LOCK_ID].lease_until == (
        NOW + timedelta(seconds=LOCK_RENEW_SECONDS) + LOCK_LEASE)


class FakeS3:
    """``GetObject`` and ``PutObject`` of one bucket, in memory."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.objects[Key]), "ContentLength": len(self.objects[Key])}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:
        self.objects[Key] = Body


def test_a_busy_drop_folder_import_waits_with_the_contexts_sleep(
        ctx: Context, store: FakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.tables["import_runs"][LOCK_ID] = ImportLease("other", NOW + timedelta(minutes=5))
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        del store.tables["import_runs"][LOCK_ID]  # the other import ended meanwhile

    monkeypatch.setattr(Runtime, "sleep", staticmethod(sleep))
    s3 = FakeS3({"imports/obligations.csv": (OBLIGATIONS + row("A")).encode()})
    result = import_jobs.import_s3_object("bucket", "imports/obligations.csv", now=NOW, s3=s3,
                                          busy_wait_seconds=60, ctx=ctx)
    assert slept == [import_jobs.BUSY_POLL_SECONDS]
    assert result.report is not None and result.report.kind == "obligations"
    assert result.report_text_key in s3.objects and LOCK_ID not in store.tables["import_runs"]
