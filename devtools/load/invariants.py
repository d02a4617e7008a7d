"""The money invariants after a load run, over plain records read from DynamoDB.

Pure functions (no AWS, no Locust), so a unit test can feed them a broken ledger and see each
check fail; :func:`read_tables` is the one place that reads the tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devtools.load.members import StartingBalance

OPEN = frozenset({"CREATED", "PENDING"})
FINAL = frozenset({"APPROVED", "REJECTED", "FAILED", "EXPIRED"})


@dataclass(frozen=True)
class PaymentRow:
    payment_id: str
    reference: str
    document_number: str
    status: str
    flagged: bool
    items: tuple[tuple[str, int], ...]  # (obligation_id, amount)


@dataclass(frozen=True)
class ObligationRow:
    document_number: str
    obligation_id: str
    amount_due: int
    minimum_amount: int
    maximum_amount: int
    pending_payment_id: str | None
    portal_payments: Mapping[str, int]  # payment id -> amount applied


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    examples: list[str] = field(default_factory=list)


def _check(name: str, failures: list[str], detail: str) -> Check:
    return Check(name, not failures, detail if not failures else f"{len(failures)} violations",
                 failures[:5])


def check_money(payments: Iterable[PaymentRow], obligations: Iterable[ObligationRow],
                start: Mapping[tuple[str, str], StartingBalance],
                banks: Mapping[str, str | None], given: Iterable[str]) -> list[Check]:
    """Every invariant of the run. ``banks``: payment id -> the status the bank's last word means
    for it (None: the bank never heard of it); ``given``: the payment ids the members were answered."""
    payments = list(payments)
    obligations = list(obligations)
    by_id = {p.payment_id: p for p in payments}
    applied: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for p in payments:
        if p.status == "APPROVED":
            for obligation_id, amount in p.items:
                applied[(p.document_number, obligation_id)][p.payment_id] = amount

    once, negative, locks = [], [], []
    for o in obligations:
        key = (o.document_number, o.obligation_id)
        expected = applied.get(key, {})
        if dict(o.portal_payments) != expected:
            extra = sorted(set(o.portal_payments) - set(expected))
            missing = sorted(set(expected) - set(o.portal_payments))
            once.append(f"{o.obligation_id}: applied {sorted(o.portal_payments.items())}, "
                        f"approved {sorted(expected.items())} (extra {extra}, missing {missing})")
        initial = start.get(key)
        if initial is not None:
            paid = sum(expected.values())
            balances = (o.amount_due, o.minimum_amount, o.maximum_amount)
            wanted = tuple(max(0, value - paid) for value in (
                initial.amount_due, initial.minimum_amount, initial.maximum_amount))
            if balances != wanted:
                once.append(f"{o.obligation_id}: balances {balances}, expected {wanted} "
                            f"after {paid} paid")
        if min(o.amount_due, o.minimum_amount, o.maximum_amount) < 0:
            negative.append(f"{o.obligation_id}: {o.amount_due}/{o.minimum_amount}/{o.maximum_amount}")
        holder = by_id.get(o.pending_payment_id) if o.pending_payment_id else None
        if o.pending_payment_id and (holder is None or holder.status not in OPEN):
            locks.append(f"{o.obligation_id}: locked by {o.pending_payment_id} "
                         f"({holder.status if holder else 'no such payment'})")
    unsettled = [f"{p.payment_id}: {p.status}" for p in payments
                 if p.status not in FINAL and not p.flagged]
    decided = [f"{pid}: bank {want}, payment {by_id[pid].status}" for pid, want in banks.items()
               if want and pid in by_id and by_id[pid].status != want and not by_id[pid].flagged]
    given = set(given)
    unknown = [f"{pid}: {'never answered to a member' if pid in by_id else 'not in the table'}"
               for pid in sorted(set(by_id) ^ given)]
    approved_items = sum(len(v) for v in applied.values())
    return [
        _check("each approved payment reduced its obligations exactly once", once,
               f"{len(obligations)} obligations, {approved_items} approved items"),
        _check("no balance is negative", negative, "amount due, minimum and maximum >= 0"),
        _check("no obligation keeps the lock of a final payment", locks,
               f"{sum(1 for o in obligations if o.pending_payment_id)} locks left, all open"),
        _check("every payment is final or flagged for review", unsettled,
               f"{len(payments)} payments"),
        _check("every payment ended as its bank decided", decided,
               f"{sum(1 for v in banks.values() if v)} decided by the bank"),
        _check("the tables hold exactly the payments the members were given", unknown,
               f"{len(given)} payments"),
    ]


def check_answers(server_errors: int, problems: Mapping[str, int]) -> list[Check]:
    """No 5xx, and every other answer what the journey expected."""
    fives = [f"{kind}: {count}" for kind, count in problems.items() if "server error" in kind]
    others = [f"{kind}: {count}" for kind, count in problems.items() if "server error" not in kind]
    return [
        Check("no answer was a 5xx", server_errors == 0 and not fives,
              f"{server_errors} 5xx answers", fives[:5]),
        _check("every other answer was the expected one", others, "0 unexpected answers"),
    ]


def read_tables(documents: set[str]) -> tuple[list[PaymentRow], list[ObligationRow]]:
    """The run's members' payments and obligations (a scan: a development tool, moto only)."""
    from chalicelib.adapters.dynamo.models import Obligation, Payment, bind_tables
    from chalicelib.config import get_settings

    bind_tables(get_settings())

    payments = [PaymentRow(p.payment_id, p.reference, p.document_number, p.status,
                           bool(p.review_flag),
                           tuple((i.obligation_id, int(i.amount)) for i in p.items))
                for p in Payment.scan() if p.document_number in documents]
    obligations = []
    for o in Obligation.scan():
        if o.document_number not in documents:
            continue
        portal: dict[str, Any] = o.portal_payments.as_dict() if o.portal_payments is not None else {}
        obligations.append(ObligationRow(
            o.document_number, o.obligation_id, int(o.amount_due), int(o.minimum_amount),
            int(o.maximum_amount), o.pending_payment_id,
            {pid: int(entry["amount"]) for pid, entry in portal.items()}))
    return payments, obligations
