"""Payment rules without AWS: state machine, amounts, references, ACH's texts, labels, dates."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, date, datetime

import pytest

from chalicelib.domain import payments as rules
from chalicelib.domain.errors import InvalidInput
from chalicelib.domain.members import mask_document
from chalicelib.domain.payments import (
    APPROVED,
    CREATED,
    EXPIRED,
    FAILED,
    PENDING,
    REJECTED,
    STATUSES,
    InvalidAmount,
    InvalidBank,
    Limits,
)
from chalicelib.services import texts

# --- state machine ------------------------------------------------------------------------------

ALLOWED = {
    (CREATED, PENDING), (CREATED, APPROVED), (CREATED, REJECTED), (CREATED, FAILED), (CREATED, EXPIRED),
    (PENDING, APPROVED), (PENDING, REJECTED), (PENDING, FAILED), (PENDING, EXPIRED),
    (EXPIRED, APPROVED),
}


@pytest.mark.parametrize("src,dst", list(itertools.product(STATUSES, STATUSES)))
def test_transition_table_is_exactly_the_spec(src: str, dst: str) -> None:
    assert rules.can_transition(src, dst) is ((src, dst) in ALLOWED)


def test_final_states_are_absorbing_except_a_late_approval() -> None:
    for final in (APPROVED, REJECTED, FAILED):
        assert not any(rules.can_transition(final, dst) for dst in STATUSES)
    assert [dst for dst in STATUSES if rules.can_transition(EXPIRED, dst)] == [APPROVED]


def test_nothing_goes_back_to_created_or_pending() -> None:
    assert rules.sources_of(CREATED) == ()
    assert rules.sources_of(PENDING) == (CREATED,)
    assert rules.sources_of(APPROVED) == (CREATED, PENDING, EXPIRED)
    assert not rules.can_transition(PENDING, PENDING)
    assert not rules.can_transition("UNKNOWN", APPROVED)


def test_final_and_retry_flags() -> None:
    assert {s for s in STATUSES if rules.is_final(s)} == {APPROVED, REJECTED, FAILED, EXPIRED}
    assert {REJECTED, FAILED, EXPIRED} == rules.RETRYABLE_STATUSES


# --- amounts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["150000", 1500.0, 1500.5, True, None, [1500], float("inf")])
def test_amount_must_be_an_integer_of_pesos(raw: object) -> None:
    with pytest.raises(InvalidAmount) as info:
        rules.parse_amount(raw)
    assert info.value.code == "invalid_amount" and info.value.status == 400


@pytest.mark.parametrize("raw", [0, -1, -150000])
def test_amount_must_be_positive(raw: int) -> None:
    with pytest.raises(InvalidAmount, match="mayor que cero"):
        rules.parse_amount(raw)


def test_item_between_minimum_and_maximum() -> None:
    limits = Limits(minimum=50_000, maximum=900_000)
    assert rules.check_item_amount(50_000, limits, description="Crédito") == 50_000
    assert rules.check_item_amount(900_000, limits, description="Crédito") == 900_000
    for amount in (49_999, 900_001, 10**20):
        with pytest.raises(InvalidAmount, match=r"entre \$ 50\.000 y \$ 900\.000"):
            rules.check_item_amount(amount, limits, description="Crédito")


def test_item_without_balance_cannot_be_paid() -> None:
    with pytest.raises(InvalidAmount, match="no tiene saldo"):
        rules.check_item_amount(1, Limits(0, 0), description="Ahorro")


def test_total_within_gateway_limits() -> None:
    limits = Limits(minimum=1_500, maximum=20_000_000)
    assert rules.check_total(1_500, limits) == 1_500
    with pytest.raises(InvalidAmount, match=r"al menos \$ 1\.500"):
        rules.check_total(1_499, limits)
    with pytest.raises(InvalidAmount, match=r"no puede superar \$ 20\.000\.000"):
        rules.check_total(20_000_001, limits)


def test_items_shape() -> None:
    assert rules.check_items_shape([("A", 1), ("B", 2)]) == [("A", 1), ("B", 2)]
    with pytest.raises(InvalidInput, match="al menos una"):
        rules.check_items_shape([])
    with pytest.raises(InvalidInput, match="una sola vez"):
        rules.check_items_shape([("A", 1), ("A", 2)])
    with pytest.raises(InvalidInput):
        rules.check_items_shape([(7, 1)])
    with pytest.raises(InvalidInput):
        rules.check_items_shape([("x" * 65, 1)])
    with pytest.raises(InvalidInput, match="hasta 20"):
        rules.check_items_shape([(f"O{i}", 1) for i in range(21)])
    with pytest.raises(InvalidAmount):
        rules.check_items_shape([("A", "1500")])


def test_balance_decrements_never_below_zero() -> None:
    assert rules.decrement(150_000, 100_000) == 50_000
    assert rules.decrement(150_000, 900_000) == 0


# --- bank and person type -------------------------------------------------------------------------

def test_bank_placeholder_and_unknown_banks_are_refused() -> None:
    known = ["1007", "1507"]
    assert rules.check_bank_code(" 1007 ", known) == "1007"
    for code in ("0", "9999", "", None, 1007):
        with pytest.raises(InvalidBank) as info:
            rules.check_bank_code(code, [*known, "0"])
        assert info.value.code == "invalid_bank"


def test_person_type() -> None:
    assert rules.check_person_type("natural") == "natural"
    assert rules.check_person_type("juridica") == "juridica"
    with pytest.raises(InvalidInput):
        rules.check_person_type("NATURAL")


# --- references and fingerprints -------------------------------------------------------------------

def test_reference_format_from_the_injected_random_source() -> None:
    calls: list[tuple[int, str]] = []

    def fixed(length: int, alphabet: str) -> str:
        calls.append((length, alphabet))
        return "A" * length

    assert rules.new_reference(fixed) == "SVAAAAAAAAAAAA"
    assert calls == [(12, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")]


def test_references_are_valid_and_distinct() -> None:
    def random_code(length: int, alphabet: str) -> str:
        return "".join(secrets.choice(alphabet) for _ in range(length))

    references = {rules.new_reference(random_code) for _ in range(2000)}
    assert len(references) == 2000
    assert all(rules.is_reference(r) and len(r) == 14 and r.isupper() for r in references)
    assert not rules.is_reference("SV123")
    assert not rules.is_reference("XXAAAAAAAAAAAA")
    assert not rules.is_reference("SVAAAAAAAAAAA0")


def test_fingerprint_ignores_item_order_and_sees_every_field() -> None:
    base = dict(document_number="1", items=[("A", 1), ("B", 2)], bank_code="1007", person_type="natural")
    same = rules.request_fingerprint(**{**base, "items": [("B", 2), ("A", 1)]})  # type: ignore[arg-type]
    assert rules.request_fingerprint(**base) == same  # type: ignore[arg-type]
    for change in ({"items": [("A", 1), ("B", 3)]}, {"bank_code": "1507"},
                   {"person_type": "juridica"}, {"document_number": "2"}):
        assert rules.request_fingerprint(**{**base, **change}) != same  # type: ignore[arg-type]
    # total on malformed input: the replay check runs before validation
    assert rules.request_fingerprint(document_number="1", items=None, bank_code=None, person_type=3)


# --- ACH's texts ---------------------------------------------------------------------------------

def test_double_payment_message_is_achs_literal_text() -> None:
    text = texts.pending_message(reference="SVABC", cus="123456", phone="(601) 745 0000",
                                 email="soporte@coop.example")
    assert text == (
        "En este momento su #SVABC presenta un proceso de pago cuya transacción se encuentra "
        "PENDIENTE de recibir confirmación por parte de su entidad financiera, por favor espere unos "
        "minutos y vuelva a consultar más tarde para verificar si su pago fue confirmado de forma "
        "exitosa. Si desea mayor información sobre el estado actual de su operación puede "
        "comunicarse a nuestras líneas de atención al cliente (601) 745 0000 o enviar un correo "
        "electrónico a soporte@coop.example y preguntar por el estado de la transacción: 123456")


def test_double_payment_message_names_the_reference_without_a_cus() -> None:
    text = texts.pending_message(reference="SVABC", cus=None, phone="1", email="e")
    assert text.endswith("preguntar por el estado de la transacción: SVABC")


def test_creation_failure_messages() -> None:
    kw = dict(phone="(601) 745 0000", email="soporte@coop.example")
    assert texts.creation_failure_message("FAIL_EXCEEDEDLIMIT", "x", **kw) == (
        "El monto de la transacción excede los límites establecidos en PSE para la empresa, por "
        "favor comuníquese con nuestras líneas de atención al cliente al teléfono (601) 745 0000 o "
        "al correo electrónico soporte@coop.example")
    assert texts.creation_failure_message("FAIL_BANKUNREACHEABLE", "x", **kw) == (
        "La entidad financiera no puede ser contactada para iniciar la transacción, por favor "
        "seleccione otra o intente más tarde")
    assert texts.creation_failure_message("gateway_error", None, **kw) == (
        "No se pudo crear la transacción, por favor intente más tarde o comuníquese con la empresa")
    assert texts.creation_failure_message("gateway_error", "Texto de la pasarela", **kw) == \
        "Texto de la pasarela"
    assert texts.BANK_LIST_UNAVAILABLE_MESSAGE == (
        "No se pudo obtener la lista de Entidades Financieras, por favor intente más tarde")


# --- labels, masking, dates ------------------------------------------------------------------------

def test_status_and_type_labels() -> None:
    assert [texts.status_label(s) for s in (APPROVED, REJECTED, FAILED, PENDING, CREATED, EXPIRED)] == [
        "Aprobada", "Rechazada", "Fallida", "Pendiente", "Iniciada", "Vencida"]
    assert texts.status_detail(PENDING) == "verifique con su entidad financiera si el débito fue realizado"
    assert texts.status_detail(APPROVED) is None
    assert [texts.type_label(t) for t in ("APORTE", "CREDITO", "AHORRO", "CONVENIO")] == [
        "Aportes", "Crédito", "Ahorro", "Convenio"]


def test_long_product_numbers_show_the_last_four() -> None:
    assert rules.mask_number("004500001234") == "•••• 1234"
    assert rules.mask_number("1234567") == "•••• 4567"
    assert rules.mask_number("123456") == "123456"
    assert rules.mask_number("AP-1") == "AP-1"
    assert mask_document("1020304050", for_people=True) == "•••• 4050"
    assert mask_document("1234", for_people=True) == "••••"


def test_overdue_days_in_colombian_time() -> None:
    assert rules.overdue_days(date(2026, 11, 20), date(2026, 11, 23)) == 3
    assert rules.overdue_days(date(2026, 11, 23), date(2026, 11, 23)) == 0
    assert rules.overdue_days(date(2026, 12, 1), date(2026, 11, 23)) == 0
    # 03:00 UTC on the 24th is still the evening of the 23rd in Bogotá (UTC-5)
    assert rules.colombia_today(datetime(2026, 11, 24, 3, 0, tzinfo=UTC)) == date(2026, 11, 23)
    assert rules.colombia_today(datetime(2026, 11, 24, 5, 0, tzinfo=UTC)) == date(2026, 11, 24)


def test_payment_description_is_short_and_safe_for_ach() -> None:
    assert rules.payment_description([(texts.type_label("CREDITO"), "004500001234")]) == "Crédito 1234"
    assert rules.payment_description([("APORTE", "1"), ("AHORRO", "2")]) == "Pago de 2 obligaciones"
    text = rules.payment_description([("CON|VE\"NIO" * 5, '12"|34')])
    assert len(text) <= 30 and "|" not in text and '"' not in text


# --- amounts as members type them ------------------------------------------------------------------

@pytest.mark.parametrize("typed, pesos", [
    ("900000", 900_000), ("900.000", 900_000), ("$ 900.000", 900_000), ("$900.000,00", 900_000),
    ("900.000,00", 900_000), ("900000,0", 900_000), (" 1.500 ", 1_500), ("$\u00a01.234.567", 1_234_567),
])
def test_amounts_are_read_as_members_write_them(typed: str, pesos: int) -> None:
    assert rules.parse_pesos(typed) == pesos


@pytest.mark.parametrize("typed", [
    "²", "١٠٠٠٠٠", "１２３", "900,000", "90.00", "9.0000", "12,5", "900.000,50", "-5", "1e6", "0",
    "", "   ", "abc", "1_000", "9" * 13, None, 900_000,
])
def test_anything_else_is_refused_with_a_spanish_message(typed: object) -> None:
    with pytest.raises(rules.InvalidAmount) as refused:
        rules.parse_pesos(typed)
    assert refused.value.message.startswith(("Escriba el valor", "El valor a pagar"))


def test_product_numbers_that_would_look_alike_are_masked_apart() -> None:
    masks = rules.distinct_masks(["710012345123", "720012345123", "9900005123", "4001020304050",
                                  "SEG-77"])
    assert masks == {"710012345123": "71•••• 5123", "720012345123": "72•••• 5123",
                     "9900005123": "9•••• 5123", "4001020304050": "•••• 4050", "SEG-77": "SEG-77"}
    assert len(set(masks.values())) == len(masks)
