"""The load test's invariants catch each kind of broken ledger (so a green `make load` means something)."""

from __future__ import annotations

from dataclasses import replace

from devtools.load.invariants import ObligationRow, PaymentRow, check_answers, check_money
from devtools.load.members import StartingBalance, load_members, starting_balances

START = {("7000000001", "CRE-1"): StartingBalance(420_000, 420_000, 9_800_000),
         ("7000000001", "APO-1"): StartingBalance(85_000, 85_000, 85_000)}
APPROVED = PaymentRow("p1", "SV1", "7000000001", "APPROVED", False, (("CRE-1", 100_000), ("APO-1", 85_000)))
DECLINED = PaymentRow("p2", "SV2", "7000000001", "REJECTED", False, (("CRE-1", 5_000),))
GOOD = [ObligationRow("7000000001", "CRE-1", 320_000, 320_000, 9_700_000, None, {"p1": 100_000}),
        ObligationRow("7000000001", "APO-1", 0, 0, 0, None, {"p1": 85_000})]
ANSWERED = {"p1": "APPROVED", "p2": "REJECTED"}
GIVEN = ("p1", "p2")


def failed(checks: list) -> set[str]:  # type: ignore[type-arg]
    return {c.name for c in checks if not c.ok}


def test_a_consistent_ledger_passes_every_check() -> None:
    assert failed(check_money([APPROVED, DECLINED], GOOD, START, ANSWERED, GIVEN)) == set()


def test_an_approval_applied_twice_or_not_at_all_fails() -> None:
    twice = [replace(GOOD[0], amount_due=220_000, minimum_amount=220_000), GOOD[1]]
    missing = [replace(GOOD[0], portal_payments={}), GOOD[1]]
    declined_applied = [replace(GOOD[0], portal_payments={"p1": 100_000, "p2": 5_000}), GOOD[1]]
    for obligations in (twice, missing, declined_applied):
        assert "each approved payment reduced its obligations exactly once" in failed(
            check_money([APPROVED, DECLINED], obligations, START, ANSWERED, GIVEN))


def test_negative_balances_stale_locks_and_open_payments_fail() -> None:
    negative = [GOOD[0], replace(GOOD[1], amount_due=-1)]
    assert "no balance is negative" in failed(check_money([APPROVED], negative, START, ANSWERED, GIVEN))
    locked = [replace(GOOD[0], pending_payment_id="p2"), GOOD[1]]
    assert "no obligation keeps the lock of a final payment" in failed(
        check_money([APPROVED, DECLINED], locked, START, ANSWERED, GIVEN))
    pending = replace(DECLINED, status="PENDING")
    assert "every payment is final or flagged for review" in failed(
        check_money([APPROVED, pending], GOOD, START, ANSWERED, GIVEN))
    assert "every payment is final or flagged for review" not in failed(
        check_money([APPROVED, replace(pending, flagged=True)], GOOD, START, ANSWERED, GIVEN))


def test_an_outcome_other_than_the_banks_or_a_phantom_payment_fails() -> None:
    assert "every payment ended as its bank decided" in failed(
        check_money([APPROVED, DECLINED], GOOD, START, {**ANSWERED, "p2": "APPROVED"}, GIVEN))
    assert "the tables hold exactly the payments the members were given" in failed(
        check_money([APPROVED, DECLINED], GOOD, START, ANSWERED, ["p1"]))


def test_5xx_and_unexpected_answers_fail() -> None:
    assert failed(check_answers(0, {})) == set()
    assert failed(check_answers(1, {})) == {"no answer was a 5xx"}
    assert failed(check_answers(0, {"pay: server error 503 banks_unavailable": 2})) == {
        "no answer was a 5xx"}
    assert failed(check_answers(0, {"login: throttled 429": 1})) == {
        "every other answer was the expected one"}


def test_generated_members_have_distinct_documents_addresses_and_obligations() -> None:
    people = load_members(70_000, tag=12)
    assert len({m.document_number for m in people}) == len({m.ip for m in people}) == 70_000
    assert all(len(m.document_number) == 10 for m in people)
    assert len(starting_balances(people[:3])) == 12
