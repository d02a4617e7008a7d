"""The cut-off rule of an obligations import (domain/imports), pure: which row wins against the
stored obligation, what happens to the portal payments and to an open payment's lock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from chalicelib.domain.imports import (
    OPEN_SHARDS,
    ObligationRow,
    apply_cutoff_rule,
    known_to_core,
    new_obligation,
    open_shard,
    payments_to_look_up,
)
from chalicelib.domain.obligations import Obligation

BOGOTA = timezone(timedelta(hours=-5))
CUT = datetime(2026, 11, 21, 0, 0, tzinfo=BOGOTA)
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def row(*, cutoff: datetime = CUT, due: int = 200_000, minimum: int = 100_000,
        maximum: int = 500_000, **changes: Any) -> ObligationRow:
    base = ObligationRow(line=2, document_number="52345678", obligation_id="CRE-1", type="CREDITO",
                         product_number="0302024001876", description="Crédito", due_date="2026-12-15",
                         amount_due=due, minimum_amount=minimum, maximum_amount=maximum,
                         cutoff=cutoff, cutoff_text=cutoff.isoformat())
    return replace(base, **changes)


def stored(**changes: Any) -> Obligation:
    return replace(new_obligation(row(cutoff=CUT - timedelta(days=2)), batch_id="old", now=NOW),
                   version=4, **changes)


def paid(amount: int, at: datetime, reference: str = "REF") -> dict[str, Any]:
    return {"amount": amount, "at": at.isoformat(), "reference": reference}


def test_an_older_cutoff_never_overwrites_a_newer_one() -> None:
    newer = stored(cutoff=CUT + timedelta(hours=1))
    decision = apply_cutoff_rule(row(due=999_999, maximum=9_999_999), newer, {})
    assert decision.stale and decision.outcome == "stale" and not decision.changes
    assert payments_to_look_up(row(), newer) == []


def test_the_same_cutoff_again_is_not_stale_and_changes_nothing() -> None:
    same = replace(new_obligation(row(), batch_id="old", now=NOW), version=3)
    decision = apply_cutoff_rule(row(), same, {})
    assert not decision.stale and decision.changes == {} and decision.outcome == "unchanged"


def test_a_newer_cutoff_takes_the_rows_values() -> None:
    decision = apply_cutoff_rule(row(due=170_000, due_date="2026-12-20"), stored(), {})
    assert decision.outcome == "updated"
    assert decision.changes == {"amount_due": 170_000, "due_date": "2026-12-20", "cutoff": CUT}


def test_portal_payments_after_the_cutoff_are_subtracted_and_kept() -> None:
    payments = {"pay-1": paid(50_000, CUT - timedelta(hours=5)),  # before: no record, known
                "pay-2": paid(30_000, CUT + timedelta(days=1)),
                "pay-3": paid(90_000, CUT + timedelta(days=1, hours=1))}
    current = stored(portal_payments=payments, pending_payment_id="pay-9",
                     pending_reference="REF-9")
    assert payments_to_look_up(row(), current) == ["pay-1"]
    decision = apply_cutoff_rule(row(), current, {})
    assert set(decision.kept) == {"pay-2", "pay-3"} and set(decision.confirmed) == {"pay-1"}
    assert (decision.changes["amount_due"], decision.changes["minimum_amount"],
            decision.changes["maximum_amount"]) == (80_000, 0, 380_000)
    # An open payment's lock is never part of the change.
    assert not {"pending_payment_id", "pending_reference"} & set(decision.changes)
    assert decision.outcome == "updated"


def test_the_core_knows_a_payment_only_once_an_export_claimed_it_by_the_cutoff() -> None:
    before = CUT - timedelta(hours=3)
    payments = {"exported": paid(50_000, before), "late": paid(30_000, before),
                "never": paid(20_000, before), "by-hand": paid(10_000, before)}
    current = stored(portal_payments=payments)
    exported_at = {"exported": CUT - timedelta(hours=1), "late": CUT + timedelta(hours=1),
                   "never": None}  # "by-hand" has no payment record
    assert known_to_core(payments_to_look_up(row(), current), exported_at, CUT) == {
        "exported", "by-hand"}
    decision = apply_cutoff_rule(row(), current, exported_at)
    assert set(decision.confirmed) == {"exported", "by-hand"}
    assert set(decision.kept) == {"late", "never"}
    assert decision.changes["amount_due"] == 200_000 - 50_000


def test_amounts_never_go_below_zero() -> None:
    current = stored(portal_payments={"pay-1": paid(900_000, CUT + timedelta(hours=1))})
    decision = apply_cutoff_rule(row(), current, {})
    assert (decision.changes["amount_due"], decision.changes["minimum_amount"],
            decision.changes["maximum_amount"]) == (0, 0, 0)


def test_a_payment_without_a_readable_time_is_kept_and_named() -> None:
    current = stored(portal_payments={"odd": {"amount": 5_000, "at": "ayer"},
                                      "naive": {"amount": 1_000, "at": "2026-11-20T10:00:00"}})
    decision = apply_cutoff_rule(row(), current, {})
    assert decision.undated == ["odd", "naive"] and set(decision.kept) == {"odd", "naive"}
    assert decision.changes["amount_due"] == 200_000 - 6_000


def test_a_row_reopens_a_closed_obligation() -> None:
    closed = stored(status="CLOSED", open_shard=None, closed_at=NOW)
    decision = apply_cutoff_rule(row(), closed, {})
    assert decision.reopens and decision.changes["status"] == "OPEN"
    assert decision.changes["open_shard"] == open_shard("52345678", "CRE-1")


def test_only_a_missing_index_shard_counts_as_unchanged() -> None:
    same = replace(new_obligation(row(), batch_id="old", now=NOW), open_shard=None)
    decision = apply_cutoff_rule(row(), same, {})
    assert list(decision.changes) == ["open_shard"] and decision.outcome == "unchanged"


def test_dropping_the_known_payments_alone_is_an_update() -> None:
    same = replace(new_obligation(row(), batch_id="old", now=NOW),
                   portal_payments={"pay-1": paid(0, CUT - timedelta(hours=1))})
    decision = apply_cutoff_rule(row(), same, {})
    assert decision.changes == {} and decision.payments_dropped and decision.outcome == "updated"


def test_a_new_obligation_is_open_stamped_and_sharded() -> None:
    created = new_obligation(row(parts={"capital": 200_000}), batch_id="b-1", now=NOW)
    assert (created.status, created.import_batch, created.import_line, created.version) == (
        "OPEN", "b-1", 2, 0)
    assert created.instalment_parts == {"capital": 200_000} and created.updated_at == NOW
    assert 0 <= int(open_shard("52345678", "CRE-1")) < OPEN_SHARDS
    assert open_shard("52345678", "CRE-1") == open_shard("52345678", "CRE-1")
