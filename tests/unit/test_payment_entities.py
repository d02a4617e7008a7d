"""The payment engine's entities without AWS: transitions, review flags, the receipt's claim, and
what ending a payment does to its obligations (applied once, never below zero, lock released)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.obligations import Obligation
from chalicelib.domain.payments import (
    EXPORT_READY,
    RECEIPT_MAX_ATTEMPTS,
    REVIEW_FLAG,
    InvalidTransition,
    Payment,
    PaymentItem,
    Review,
    StatusChange,
    settle_obligation,
)

AT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PID = "p" * 22


def a_payment(status: str = "PENDING", **changes: object) -> Payment:
    payment = Payment(
        payment_id=PID, reference="SVABCDEFGHIJKL", document_number="1020304050", payer_name="Ana",
        status=status, amount=150_000, bank_code="1022", person_type="natural",
        description="Crédito 1234", ip="190.25.1.2", gateway="fake", created_at=AT, updated_at=AT,
        items=[PaymentItem(obligation_id="CR-1", type="CREDITO", product_number="004500001234",
                           description="Crédito", amount=150_000, due_before=100_000,
                           minimum_before=50_000, maximum_before=900_000, obligation_version=3)],
        status_history=[StatusChange(status="CREATED", at=AT)], payer_email="ana@correo.example",
        gateway_id="gw-1", poll_shard="0", next_poll_at=AT)
    for name, value in changes.items():
        setattr(payment, name, value)
    return payment


def an_obligation(**changes: object) -> Obligation:
    obligation = Obligation(
        document_number="1020304050", obligation_id="CR-1", type="CREDITO",
        product_number="004500001234", description="Crédito", due_date="2026-11-30",
        amount_due=100_000, minimum_amount=50_000, maximum_amount=900_000, cutoff=AT,
        pending_payment_id=PID, pending_reference="SVABCDEFGHIJKL", portal_payments={}, version=3)
    for name, value in changes.items():
        setattr(obligation, name, value)
    return obligation


def test_an_approval_is_recorded_queued_for_export_and_leaves_the_poller() -> None:
    payment = a_payment()
    payment.move_to("APPROVED", AT + timedelta(minutes=9))
    assert [h.status for h in payment.status_history] == ["CREATED", "APPROVED"]
    assert payment.approved_at == payment.updated_at == AT + timedelta(minutes=9)
    assert payment.export_pending == EXPORT_READY
    assert payment.next_poll_at is None and payment.poll_shard is None
    assert payment.receipt_owed


def test_the_machine_refuses_what_it_does_not_allow() -> None:
    for final in ("APPROVED", "REJECTED", "FAILED"):
        with pytest.raises(InvalidTransition):
            a_payment(final).move_to("PENDING", AT)
    with pytest.raises(InvalidTransition):
        a_payment().move_to("PENDING", AT)  # not a change
    late = a_payment("EXPIRED")
    late.move_to("APPROVED", AT)  # the money arrived after we gave up
    assert late.status == "APPROVED"


def test_a_flag_takes_an_open_payment_out_of_the_poller_and_a_review_clears_it() -> None:
    payment = a_payment()
    payment.flag("amount_mismatch", AT)
    assert (payment.review_flag, payment.review_reason) == (REVIEW_FLAG, "amount_mismatch")
    assert payment.next_poll_at is None
    ended = a_payment("REJECTED", next_poll_at=None)
    ended.flag("approved_after_final", AT)
    assert ended.review_flag == REVIEW_FLAG
    payment.resolve_review(Review(action="reject", actor="staff:eva", at=AT, note="no pagó"))
    assert payment.review_flag is None and payment.review_reason is None
    assert (payment.review_resolution, payment.review_resolved_by) == ("reject", "staff:eva")


def test_a_receipt_is_owed_once_and_a_failed_send_is_retried_a_bounded_number_of_times() -> None:
    assert not a_payment().receipt_owed  # not final yet
    assert not a_payment("FAILED", gateway_id=None).receipt_owed  # never reached a bank
    assert not a_payment("APPROVED", payer_email=None).receipt_owed
    payment = a_payment("APPROVED")
    payment.claim_receipt()
    assert not payment.receipt_owed and payment.next_poll_at is None
    for attempt in range(1, RECEIPT_MAX_ATTEMPTS):
        assert payment.receipt_failed("0", AT + timedelta(minutes=12 * attempt))
        assert payment.receipt_owed and payment.next_poll_at == AT + timedelta(minutes=12 * attempt)
        payment.claim_receipt()
    assert not payment.receipt_failed("0", AT) and payment.receipt_attempts == RECEIPT_MAX_ATTEMPTS
    assert payment.next_poll_at is None  # the poller lets it go


def test_an_approval_held_by_its_lock_is_applied_without_a_read_never_below_zero() -> None:
    payment = a_payment()
    change = settle_obligation(payment, payment.items[0], None, approve=True, at=AT)
    assert change is not None and change.version == 3 and change.release
    assert change.balances == (0, 0, 750_000)  # 100.000 due, 150.000 paid: never negative
    obligation = an_obligation()
    obligation.apply(change)
    assert (obligation.amount_due, obligation.minimum_amount, obligation.maximum_amount) == (0, 0, 750_000)
    assert obligation.pending_payment_id is None and obligation.pending_reference is None
    assert obligation.portal_payments == {PID: {"amount": 150_000, "at": AT.isoformat(),
                                                "reference": "SVABCDEFGHIJKL"}}


def test_an_approval_read_again_is_never_applied_twice() -> None:
    payment = a_payment("EXPIRED")
    applied = an_obligation(pending_payment_id=None, pending_reference=None, amount_due=0,
                            portal_payments={PID: {"amount": 150_000}}, version=7)
    assert settle_obligation(payment, payment.items[0], applied, approve=True, at=AT) is None
    locked = an_obligation(portal_payments={PID: {"amount": 150_000}}, version=7)
    change = settle_obligation(payment, payment.items[0], locked, approve=True, at=AT)
    assert change is not None and change.balances is None and change.release and change.version == 7


def test_a_rejection_only_releases_the_lock_and_a_lock_is_taken_with_a_map() -> None:
    payment = a_payment()
    change = settle_obligation(payment, payment.items[0], None, approve=False, at=AT)
    assert change is not None and change.balances is None and change.release
    other = an_obligation(pending_payment_id="q" * 22)
    assert settle_obligation(payment, payment.items[0], other, approve=False, at=AT) is None
    fresh = an_obligation(pending_payment_id=None, pending_reference=None, portal_payments=None,
                          version=0)
    lock = fresh.lock_for(PID, "SVABCDEFGHIJKL")
    fresh.apply(lock)
    assert (fresh.pending_payment_id, fresh.portal_payments, lock.version) == (PID, {}, 0)
    assert lock.label == "obligation:CR-1"
