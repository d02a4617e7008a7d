"""How a payment to a loan instalment is applied to its parts.

The core system may give the parts of the instalment due now (``obligations.csv``'s optional
columns): late interest, fees, insurance, interest and capital, in integer pesos that add up to
``amount_due``. The cooperative applies a payment to them in its own order (``ALLOCATION_ORDER``;
configurable per cooperative, like Fineract's payment allocation strategies or Frappe Lending's
"Loan Demand Offset Order"): each part is filled before the next gets anything, and what the member
pays above the instalment is an "Abono extraordinario a capital". Integer pesos: no rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

LATE_INTEREST = "late_interest"
FEES = "fees"
INSURANCE = "insurance"
INTEREST = "interest"
CAPITAL = "capital"
EXTRA_CAPITAL = "extra_capital"  # not a column: what is paid above the instalment

#: The instalment's parts, as the optional columns of ``obligations.csv`` name them.
PARTS = (LATE_INTEREST, FEES, INSURANCE, INTEREST, CAPITAL)
#: The usual order in Colombian cooperatives' credit regulations: default interest first, then
#: charges and insurance, then current interest, capital last.
DEFAULT_ORDER = (LATE_INTEREST, FEES, INSURANCE, INTEREST, CAPITAL)

LABELS = {
    LATE_INTEREST: "Intereses de mora",
    FEES: "Comisiones y otros cargos",
    INSURANCE: "Seguros",
    INTEREST: "Intereses corrientes",
    CAPITAL: "Capital",
    EXTRA_CAPITAL: "Abono extraordinario a capital",
}

#: What the receipt says about its split, once approved and while the bank has not answered.
APPLIED_NOTE = "Así se aplicó su pago a cada crédito, según el orden de aplicación de la cooperativa."
PLANNED_NOTE = ("Así se aplicará su pago a cada crédito cuando el banco lo apruebe, según el orden de "
                "aplicación de la cooperativa.")

#: An instalment's parts in the cooperative's order of application: ``((part, pesos), ...)``.
Parts = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class AllocationLine:
    part: str  # one of PARTS, or EXTRA_CAPITAL
    amount: int

    @property
    def label(self) -> str:
        return LABELS[self.part]


def parse_order(text: str) -> tuple[str, ...]:
    """``"late_interest,fees,insurance,interest,capital"`` → a tuple; ValueError unless it names
    every part exactly once (a part left out would silently never be paid)."""
    order = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    unknown = [name for name in order if name not in PARTS]
    if unknown or sorted(order) != sorted(PARTS):
        raise ValueError(f"must list each of {', '.join(PARTS)} exactly once, got {text!r}")
    return order


def in_order(parts: Mapping[str, int], order: Sequence[str]) -> Parts:
    """The parts the core gave, in the order of application (``order`` names every part)."""
    return tuple((name, int(parts[name])) for name in order if name in parts)


def _fill(parts: Parts, amount: int) -> Iterable[tuple[str, int, int]]:
    """``(part, pesos applied, pesos of the part)`` filling the parts in order with ``amount``."""
    left = max(0, amount)
    for name, due in parts:
        applied = min(left, max(0, due))
        left -= applied
        yield name, applied, max(0, due)


def outstanding(parts: Parts, amount_due: int) -> Parts:
    """What is left of each part when the obligation's balance is now ``amount_due``: payments
    made in the portal since the core's cut-off lowered it, and they were applied in order."""
    paid = sum(due for _, due in parts) - max(0, amount_due)
    return tuple((name, due - applied) for name, applied, due in _fill(parts, paid))


def allocate(parts: Parts, amount: int) -> tuple[AllocationLine, ...]:
    """How ``amount`` is applied: the parts in order until it runs out, then any excess as an
    extraordinary capital payment. Only lines that receive something; they add up to ``amount``."""
    lines = [AllocationLine(name, applied) for name, applied, _ in _fill(parts, amount) if applied]
    extra = max(0, amount) - sum(line.amount for line in lines)
    if extra:
        lines.append(AllocationLine(EXTRA_CAPITAL, extra))
    return tuple(lines)


def breakdown(parts: Parts) -> tuple[AllocationLine, ...]:
    """The parts still owed, as lines (the "detalle de la cuota")."""
    return tuple(AllocationLine(name, due) for name, due in parts if due > 0)
