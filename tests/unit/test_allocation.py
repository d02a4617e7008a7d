"""How a loan payment is applied to the instalment's parts: the pure rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.config import ConfigError, Settings
from chalicelib.domain import allocation
from chalicelib.domain.allocation import (
    CAPITAL,
    DEFAULT_ORDER,
    EXTRA_CAPITAL,
    INSURANCE,
    INTEREST,
    LATE_INTEREST,
    PARTS,
    AllocationLine,
)

INSTALMENT = {LATE_INTEREST: 6_800, INSURANCE: 14_200, INTEREST: 186_000, CAPITAL: 643_000}


def lines(*pairs: tuple[str, int]) -> tuple[AllocationLine, ...]:
    return tuple(AllocationLine(part, amount) for part, amount in pairs)


def test_the_instalment_exactly_fills_each_part_in_the_configured_order() -> None:
    parts = allocation.in_order(INSTALMENT, DEFAULT_ORDER)
    assert [name for name, _ in parts] == [LATE_INTEREST, INSURANCE, INTEREST, CAPITAL]
    assert allocation.allocate(parts, 850_000) == lines(
        (LATE_INTEREST, 6_800), (INSURANCE, 14_200), (INTEREST, 186_000), (CAPITAL, 643_000))


def test_a_partial_payment_fills_the_first_parts_and_stops() -> None:
    parts = allocation.in_order(INSTALMENT, DEFAULT_ORDER)
    assert allocation.allocate(parts, 100_000) == lines(
        (LATE_INTEREST, 6_800), (INSURANCE, 14_200), (INTEREST, 79_000))


def test_what_is_paid_above_the_instalment_is_an_extraordinary_capital_payment() -> None:
    parts = allocation.in_order(INSTALMENT, DEFAULT_ORDER)
    applied = allocation.allocate(parts, 1_000_000)
    assert applied[-1] == AllocationLine(EXTRA_CAPITAL, 150_000)
    assert [line.label for line in applied] == [
        "Intereses de mora", "Seguros", "Intereses corrientes", "Capital",
        "Abono extraordinario a capital"]


def test_another_order_changes_where_a_partial_payment_goes() -> None:
    order = (CAPITAL, INTEREST, INSURANCE, LATE_INTEREST, allocation.FEES)
    parts = allocation.in_order(INSTALMENT, order)
    assert allocation.allocate(parts, 700_000) == lines((CAPITAL, 643_000), (INTEREST, 57_000))


def test_outstanding_parts_after_portal_payments_since_the_cutoff() -> None:
    parts = allocation.in_order(INSTALMENT, DEFAULT_ORDER)
    assert allocation.outstanding(parts, 850_000) == parts  # nothing paid yet
    assert allocation.outstanding(parts, 750_000) == (
        (LATE_INTEREST, 0), (INSURANCE, 0), (INTEREST, 107_000), (CAPITAL, 643_000))
    assert allocation.breakdown(allocation.outstanding(parts, 750_000)) == lines(
        (INTEREST, 107_000), (CAPITAL, 643_000))
    assert allocation.breakdown(allocation.outstanding(parts, 0)) == ()
    # Paid off beyond the instalment: anything more is extraordinary capital.
    assert allocation.allocate(allocation.outstanding(parts, 0), 5_000) == lines((EXTRA_CAPITAL, 5_000))


def test_parse_order_needs_every_part_exactly_once() -> None:
    assert allocation.parse_order(" Capital, interest,insurance ,fees,late_interest") == (
        CAPITAL, INTEREST, INSURANCE, allocation.FEES, LATE_INTEREST)
    for bad in ("capital,interest", "late_interest,fees,insurance,interest,capital,capital",
                "late_interest,fees,insurance,interest,principal", ""):
        with pytest.raises(ValueError, match="exactly once"):
            allocation.parse_order(bad)


def test_the_setting_has_a_default_and_refuses_a_bad_order() -> None:
    assert Settings.from_env({}).allocation_order == DEFAULT_ORDER
    custom = "capital,interest,insurance,fees,late_interest"
    assert Settings.from_env({"ALLOCATION_ORDER": custom}).allocation_order[0] == CAPITAL
    with pytest.raises(ConfigError, match="ALLOCATION_ORDER"):
        Settings.from_env({"ALLOCATION_ORDER": "capital,interest"})


# --- properties -----------------------------------------------------------------------------------

instalments = st.dictionaries(st.sampled_from(PARTS), st.integers(0, 5_000_000), min_size=1)
orders = st.permutations(PARTS)
amounts = st.integers(0, 20_000_000)


@given(instalments, orders, amounts)
def test_allocation_adds_up_and_never_goes_negative(parts: dict[str, int], order: list[str],
                                                    amount: int) -> None:
    applied = allocation.allocate(allocation.in_order(parts, order), amount)
    assert sum(line.amount for line in applied) == amount
    assert all(line.amount > 0 for line in applied)
    for line in applied:
        assert line.part == EXTRA_CAPITAL or line.amount <= parts[line.part]


@given(instalments, orders, amounts)
def test_allocation_fills_each_part_before_the_next_in_order(parts: dict[str, int], order: list[str],
                                                             amount: int) -> None:
    ranked = allocation.in_order(parts, order)
    applied = {line.part: line.amount for line in allocation.allocate(ranked, amount)}
    filled = [applied.get(name, 0) for name, _ in ranked]
    for index, (_, due) in enumerate(ranked):
        if any(filled[index + 1:]):
            assert filled[index] == due  # a later part got money only after this one was full
    if EXTRA_CAPITAL in applied:
        assert filled == [due for _, due in ranked]


@given(instalments, orders, st.integers(0, 5_000_000), st.integers(0, 5_000_000))
def test_paying_in_two_steps_applies_like_paying_at_once(parts: dict[str, int], order: list[str],
                                                         first: int, second: int) -> None:
    """A portal payment lowers the balance; the next one is applied to what it left."""
    ranked = allocation.in_order(parts, order)
    total = sum(parts.values())
    left = allocation.outstanding(ranked, max(0, total - first))
    assert sum(due for _, due in left) == max(0, total - first)
    together = {line.part: line.amount for line in allocation.allocate(ranked, first + second)}
    apart: dict[str, int] = {}
    for line in (*allocation.allocate(ranked, first), *allocation.allocate(left, second)):
        apart[line.part] = apart.get(line.part, 0) + line.amount
    assert apart == together
