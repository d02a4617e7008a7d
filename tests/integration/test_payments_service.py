"""Starting payments, the bank list, obligations and receipts, against moto and a fake gateway."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.adapters.gateways.base import GatewayError, GatewayTimeout
from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.payments import (
    GatewayFailure,
    IdempotencyConflict,
    InvalidAmount,
    InvalidBank,
    ObligationNotFound,
    PaymentNotFound,
    PaymentPending,
)
from chalicelib.services import obligations, payments
from tests.conftest import concurrently
from tests.payment_support import get_obligation, get_payment, start

ACH_PENDING_START = "En este momento su #"


# --- obligations --------------------------------------------------------------------------------

def test_obligations_list_is_one_query_sorted_and_masked(ctx, member, make_obligation, clock,  # type: ignore[no-untyped-def]
                                                        dynamo_calls):
    make_obligation("CR-0002", due_date="2026-12-15")
    make_obligation("AP-0001", type="APORTE", product_number="AP1", due_date="2026-11-20",
                    amount_due=60_000, minimum_amount=60_000, maximum_amount=60_000)
    make_obligation("AH-0001", type="AHORRO", amount_due=0, minimum_amount=0, maximum_amount=0)
    make_obligation("CV-0001", type="CONVENIO", status="CLOSED")
    make_obligation("OTHER", document_number="999999")
    dynamo_calls.reset()
    views = obligations.list_obligations(ctx, "1020304050")
    assert dynamo_calls.operations == ["Query"]
    assert [v.id for v in views] == ["AP-0001", "CR-0002"]
    aporte, credit = views
    assert (aporte.type_label, aporte.product_number, aporte.overdue_days) == ("Aportes", "AP1", 3)
    assert (credit.type_label, credit.product_number, credit.overdue_days) == ("Crédito", "•••• 1234", 0)
    assert credit.pending_payment_id is None and credit.pending_reference is None


def test_obligation_shows_the_payment_holding_it(ctx, pending):  # type: ignore[no-untyped-def]
    (view,) = obligations.list_obligations(ctx, "1020304050")
    assert (view.pending_payment_id, view.pending_reference) == (pending.id, pending.reference)


# --- bank list ----------------------------------------------------------------------------------

def test_bank_list_is_cached_daily_without_the_placeholder(ctx, gateway, clock):  # type: ignore[no-untyped-def]
    from chalicelib.context import get_context, reset_contexts

    banks = payments.list_banks(ctx)
    assert [b.code for b in banks] == ["1022", "1507", "1"]
    reset_contexts()  # another container: reads DynamoDB, not the gateway
    assert payments.list_banks(get_context()) == banks
    assert gateway.count("list_banks") == 1
    clock.advance(hours=24, seconds=1)
    reset_contexts()
    payments.list_banks(get_context())
    assert gateway.count("list_banks") == 2


def test_bank_list_failure_with_an_empty_cache_is_achs_message(ctx, gateway):  # type: ignore[no-untyped-def]
    gateway.banks_error = GatewayError("caída", code="gateway_unavailable")
    with pytest.raises(ServiceUnavailable) as info:
        payments.list_banks(ctx)
    assert info.value.message == ("No se pudo obtener la lista de Entidades Financieras, por favor "
                                  "intente más tarde")


def test_bank_list_failure_serves_the_expired_cache(ctx, gateway, clock):  # type: ignore[no-untyped-def]
    from chalicelib.context import get_context, reset_contexts

    banks = payments.list_banks(ctx)
    clock.advance(days=2)
    gateway.banks_error = GatewayError("caída")
    reset_contexts()
    assert payments.list_banks(get_context()) == banks


# --- starting a payment ----------------------------------------------------------------------------

def test_payment_is_saved_and_locked_before_the_gateway_is_called(ctx, member, make_obligation,  # type: ignore[no-untyped-def]
                                                                  gateway, dynamo_calls):
    make_obligation()
    payments.list_banks(ctx)  # the summary page showed the banks
    seen = {}

    def at_gateway(request):  # type: ignore[no-untyped-def]
        from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork

        seen["trips_before_gateway"] = list(dynamo_calls.operations)
        stored = DynamoUnitOfWork().payments.by_reference(request.reference)
        seen["status"] = stored.status if stored else None
        seen["lock"] = get_obligation("CR-0001").pending_payment_id
        seen["request"] = request

    gateway.on_create = at_gateway
    dynamo_calls.reset()
    started = start(ctx)
    assert seen["trips_before_gateway"] == ["BatchGetItem", "TransactWriteItems"]
    assert dynamo_calls.operations[-1] == "TransactWriteItems"  # the PENDING transition: 3 in all
    assert len(dynamo_calls) == 3 + 2  # + the two reads this test made at the gateway
    assert seen["status"] == "CREATED" and seen["lock"] == started.id
    request = seen["request"]
    assert request.return_url == f"http://localhost:8000/pagos/{started.id}/retorno"
    assert (request.amount, request.bank_code, request.person_type) == (150_000, "1022", "natural")
    assert (request.payer_document_number, request.payer_name) == ("1020304050", "Ana María Pérez")
    assert request.reference == started.reference and request.reference.startswith("SV")
    assert started.status == "PENDING" and started.redirect_url.startswith("https://banco.example/")
    payment = get_payment(started.id)
    assert payment.status == "PENDING" and payment.cus and payment.gateway_id
    assert len(started.id) >= 22  # 128 bits, URL-safe
    assert [h.status for h in payment.status_history] == ["CREATED", "PENDING"]
    assert payment.next_poll_at == payment.created_at + timedelta(minutes=7)


def test_replayed_idempotency_key_returns_the_same_payment(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_obligation()
    first = start(ctx, key="abc")
    again = start(ctx, key="abc")
    assert again == first
    assert gateway.count("create_transaction") == 1
    # still the same payment once it is final (the lock is gone, the key is not)
    payments.apply_gateway_event(ctx, {}, gateway.event(first.reference, "APPROVED",
                                                        at=payments_clock(ctx)))
    assert start(ctx, key="abc").id == first.id


def payments_clock(ctx):  # type: ignore[no-untyped-def]
    return ctx.now()


def test_idempotency_key_with_another_request_conflicts(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_obligation()
    start(ctx, key="abc")
    with pytest.raises(IdempotencyConflict) as info:
        start(ctx, key="abc", items=[("CR-0001", 100_000)])
    assert (info.value.status, info.value.code) == (409, "idempotency_conflict")


def test_idempotency_key_expires_after_a_day(ctx, member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_obligation()
    first = start(ctx, key="abc")
    payments.apply_gateway_event(ctx, {}, gateway.event(first.reference, "REJECTED", at=clock.now))
    clock.advance(hours=24, seconds=1)
    second = start(ctx, key="abc")
    assert second.id != first.id and second.reference != first.reference


def test_pending_obligation_is_refused_with_achs_text_and_cus(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_obligation()
    first = start(ctx, key="k1")
    cus = get_payment(first.id).cus
    with pytest.raises(PaymentPending) as info:
        start(ctx, key="k2")
    error = info.value
    assert (error.status, error.code) == (409, "payment_pending")
    assert error.message.startswith(f"{ACH_PENDING_START}{first.reference} presenta un proceso de pago")
    assert "(601) 745 0000" in error.message and "soporte@coopejemplo.example" in error.message
    assert error.message.endswith(f"preguntar por el estado de la transacción: {cus}")
    assert error.extra["cus"] == cus and error.extra["reference"] == first.reference
    with pytest.raises(PaymentPending):
        payments.preview_payment(ctx, document_number="1020304050", items=[("CR-0001", 150_000)])
    assert gateway.count("create_transaction") == 1


def test_pending_message_names_the_reference_before_there_is_a_cus(ctx, member, make_obligation,  # type: ignore[no-untyped-def]
                                                                    gateway):
    make_obligation()
    gateway.create_error = GatewayTimeout("sin respuesta")
    first = start(ctx, key="k1")
    with pytest.raises(PaymentPending) as info:
        start(ctx, key="k2")
    assert info.value.message.endswith(f"transacción: {first.reference}")
    assert info.value.extra["cus"] is None


@pytest.mark.parametrize("bank_code", ["0", "9999", ""])
def test_placeholder_and_unknown_banks_are_refused(ctx, member, make_obligation, gateway, bank_code):  # type: ignore[no-untyped-def]
    make_obligation()
    with pytest.raises(InvalidBank) as info:
        start(ctx, bank_code=bank_code)
    assert info.value.code == "invalid_bank"
    assert gateway.count("create_transaction") == 0
    assert get_obligation("CR-0001").pending_payment_id is None


@pytest.mark.parametrize("items,match", [
    ([("CR-0001", 49_999)], "entre"),
    ([("CR-0001", 900_001)], "entre"),
    ([("AP-0001", 1_000)], "al menos"),
    ([("BIG-1", 15_000_000), ("BIG-2", 15_000_000)], "no puede superar"),
])
def test_amount_limits(ctx, member, make_obligation, gateway, items, match):  # type: ignore[no-untyped-def]
    make_obligation()
    make_obligation("AP-0001", type="APORTE", amount_due=1_000, minimum_amount=0, maximum_amount=50_000)
    for oid in ("BIG-1", "BIG-2"):
        make_obligation(oid, amount_due=15_000_000, minimum_amount=1, maximum_amount=30_000_000)
    with pytest.raises(InvalidAmount, match=match):
        start(ctx, items=items)
    assert gateway.count("create_transaction") == 0


def test_the_minimum_and_maximum_themselves_are_accepted(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_obligation("CR-0001")
    make_obligation("CR-0002")
    assert start(ctx, key="a", items=[("CR-0001", 50_000)]).amount == 50_000
    assert start(ctx, key="b", items=[("CR-0002", 900_000)]).amount == 900_000


def test_duplicate_unknown_and_foreign_obligations_are_refused(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    from chalicelib.domain.errors import InvalidInput

    make_obligation()
    make_obligation("THEIRS", document_number="999999")
    with pytest.raises(InvalidInput, match="una sola vez"):
        start(ctx, items=[("CR-0001", 60_000), ("CR-0001", 60_000)])
    for oid in ("NOPE", "THEIRS"):
        with pytest.raises(ObligationNotFound) as info:
            start(ctx, items=[(oid, 60_000)])
        assert info.value.status == 404
    assert get_obligation("THEIRS", "999999").pending_payment_id is None


def test_preview_lists_validated_lines(ctx, member, make_obligation):  # type: ignore[no-untyped-def]
    make_obligation()
    make_obligation("AP-0001", type="APORTE", product_number="AP1", description="Aportes sociales")
    preview = payments.preview_payment(ctx, document_number="1020304050",
                                       items=[("CR-0001", 150_000), ("AP-0001", 60_000)])
    assert preview.total == 210_000
    assert [(line.type_label, line.product_number, line.amount) for line in preview.lines] == [
        ("Crédito", "•••• 1234", 150_000), ("Aportes", "AP1", 60_000)]


def test_timeout_leaves_the_payment_for_the_poller(ctx, member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_obligation()
    gateway.create_error = GatewayTimeout("sin respuesta")
    gateway.create_error_after_recording = True  # the gateway did create it; we never heard back
    started = start(ctx)
    assert (started.status, started.redirect_url) == ("CREATED", None)
    payment = get_payment(started.id)
    assert payment.status == "CREATED" and payment.next_poll_at == payment.created_at + timedelta(minutes=7)
    assert get_obligation("CR-0001").pending_payment_id == started.id

    clock.advance(minutes=7)
    report = payments.reconcile_pending(ctx)
    assert report.applied == 1
    payment = get_payment(started.id)
    created_at_gateway = gateway.by_reference(started.reference)
    assert payment.status == "PENDING" and payment.gateway_id == created_at_gateway.gateway_id
    assert payment.cus == created_at_gateway.cus

    gateway.settle(started.reference, "APPROVED")
    clock.advance(minutes=12)
    payments.reconcile_pending(ctx)
    assert get_payment(started.id).status == "APPROVED"
    assert get_obligation("CR-0001").amount_due == 0
    assert gateway.count("create_transaction") == 1  # never retried with a new reference
    assert len(gateway.transactions) == 1


def test_gateway_refusal_fails_the_payment_and_frees_its_obligations(ctx, member, make_obligation,  # type: ignore[no-untyped-def]
                                                                      gateway):
    make_obligation()
    gateway.create_error = GatewayError("No disponible", code="FAIL_BANKUNREACHEABLE")
    with pytest.raises(GatewayFailure) as info:
        start(ctx, key="k1")
    assert (info.value.status, info.value.code) == (502, "gateway_error")
    assert info.value.message.startswith("La entidad financiera no puede ser contactada")
    reference = info.value.extra["reference"]
    from chalicelib.adapters.dynamo.unit_of_work import DynamoUnitOfWork

    failed = DynamoUnitOfWork().payments.by_reference(reference)
    assert failed.status == "FAILED" and failed.next_poll_at is None
    assert get_obligation("CR-0001").pending_payment_id is None
    assert get_obligation("CR-0001").pending_reference is None
    gateway.create_error = None
    assert start(ctx, key="k2").status == "PENDING"


def test_gateway_message_is_shown_for_other_refusals(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_obligation()
    gateway.create_error = GatewayError("No se pudo crear la transacción, por favor intente más "
                                        "tarde o comuníquese con la empresa")
    with pytest.raises(GatewayFailure, match="No se pudo crear la transacción"):
        start(ctx)


def test_inactive_member_cannot_pay(ctx, make_member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    from chalicelib.domain.errors import Forbidden

    make_member(status="BLOQUEADO")
    make_obligation()
    with pytest.raises(Forbidden):
        start(ctx)


# --- receipts and history --------------------------------------------------------------------------

def test_receipt_for_the_member_and_without_a_session(ctx, pending):  # type: ignore[no-untyped-def]
    started = pending
    full = payments.receipt(ctx, started.id, document_number="1020304050")
    assert (full.payer_document, full.payer_name) == ("1020304050", "Ana María Pérez")
    assert [label for label, _ in full.timeline] == ["Iniciada", "Pendiente"]
    assert full.status_label == "Pendiente" and full.status_detail.startswith("verifique")
    assert not full.is_final and not full.can_retry
    anonymous = payments.receipt(ctx, started.id, document_number=None)
    assert (anonymous.payer_document, anonymous.payer_name, anonymous.timeline) == ("•••• 4050", None, [])
    assert anonymous.reference == full.reference and anonymous.items == full.items
    with pytest.raises(PaymentNotFound):
        payments.receipt(ctx, started.id, document_number="999999")
    for bad in ("x", "../etc", "A" * 200, started.id[:-1] + "!"):
        with pytest.raises(PaymentNotFound):
            payments.receipt(ctx, bad, document_number=None)


def test_refresh_asks_the_gateway_server_side(ctx, pending, gateway):  # type: ignore[no-untyped-def]
    started = pending
    assert payments.refresh_payment(ctx, started.id).status == "PENDING"
    gateway.settle(started.reference, "REJECTED", status_message="Fondos insuficientes")
    view = payments.refresh_payment(ctx, started.id)
    assert (view.status, view.status_label, view.can_retry) == ("REJECTED", "Rechazada", True)
    assert view.payer_name is None  # the return page may have no session
    assert get_obligation("CR-0001").pending_payment_id is None
    queries = gateway.count("get_transaction")
    payments.refresh_payment(ctx, started.id)  # final: no need to ask again
    assert gateway.count("get_transaction") == queries


def test_refresh_survives_a_gateway_failure(ctx, pending, gateway):  # type: ignore[no-untyped-def]
    gateway.query_error = GatewayTimeout("lento")
    assert payments.refresh_payment(ctx, pending.id).status == "PENDING"


def test_history_is_newest_first(ctx, member, make_obligation, gateway, clock):  # type: ignore[no-untyped-def]
    make_obligation("CR-0001")
    make_obligation("CR-0002")
    first = start(ctx, key="a", items=[("CR-0001", 60_000)])
    clock.advance(minutes=1)
    second = start(ctx, key="b", items=[("CR-0002", 70_000)])
    history = payments.list_payments(ctx, "1020304050")
    assert [p.id for p in history] == [second.id, first.id]
    assert payments.list_payments(ctx, "999999") == []


# --- concurrent starts ---------------------------------------------------------------------------

def test_concurrent_payments_of_one_obligation_lock_it_once(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_obligation()
    payments.list_banks(ctx)
    results = concurrently(lambda i: start(ctx, key=f"k{i}"), 12)
    started = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(started) == 1, results
    assert all(isinstance(r, (PaymentPending, IdempotencyConflict)) for r in refused), refused
    assert get_obligation("CR-0001").pending_payment_id == started[0].id
    assert gateway.count("create_transaction") == 1


def test_concurrent_replays_of_one_key_make_one_payment(ctx, member, make_obligation, gateway):  # type: ignore[no-untyped-def]
    make_obligation()
    payments.list_banks(ctx)
    results = concurrently(lambda i: start(ctx, key="same"), 10)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.id for r in results}) == 1
    assert gateway.count("create_transaction") == 1
