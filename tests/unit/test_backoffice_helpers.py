"""Pure helpers of the back office: allocation, search parameters, CSV rows, metrics."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from chalicelib.domain.errors import InvalidInput
from chalicelib.services import exports, staff
from chalicelib.services.payments import allocate


@pytest.mark.parametrize(("confirmed", "items", "expected"), [
    (210_000, [(60_000, 60_000), (150_000, 900_000)], [60_000, 150_000]),  # as asked
    (200_000, [(60_000, 60_000), (150_000, 900_000)], [60_000, 140_000]),  # later items give up first
    (50_000, [(60_000, 60_000), (150_000, 900_000)], [50_000, 0]),
    (260_000, [(60_000, 60_000), (150_000, 900_000)], [60_000, 200_000]),  # excess up to the maximum
    (260_000, [(60_000, 100_000), (150_000, 900_000)], [100_000, 160_000]),  # in order
    (1_000_000, [(60_000, 60_000), (150_000, 900_000)], None),  # beyond every maximum
    (0, [(60_000, 60_000)], None),
    (-5, [(60_000, 60_000)], None),
    (1_000, [], None),
])
def test_allocate(confirmed: int, items: list[tuple[int, int]], expected: list[int] | None) -> None:
    result = allocate(confirmed, items)
    assert result == expected
    if result is not None:
        assert sum(result) == confirmed


def test_day_range_is_colombian_days_inclusive() -> None:
    low, high = staff.day_range(date(2026, 11, 23), date(2026, 11, 24))
    assert low == datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert high.astimezone(UTC) == datetime(2026, 11, 25, 4, 59, 59, 999999, tzinfo=UTC)
    assert staff.day_range(None, None) is None
    with pytest.raises(InvalidInput) as raised:
        staff.day_range(date(2026, 11, 24), date(2026, 11, 23))
    assert raised.value.code == "invalid_date_range"


def test_parse_search_normalizes_and_picks_the_filters() -> None:
    search = staff.parse_search({"reference": " svabcdefgh2345 ", "status": "approved", "limit": "5"})
    assert (search.reference, search.status, search.limit) == ("SVABCDEFGH2345", "APPROVED", 5)
    assert staff.parse_search({"document": "1.020.304.050"}).document == "1020304050"
    assert staff.parse_search({"status": "PENDING"}).limit == staff.DEFAULT_LIMIT


def test_cursor_binding_ignores_the_page_size() -> None:
    a = staff.parse_search({"status": "PENDING", "limit": "5"})
    b = staff.parse_search({"status": "PENDING", "limit": "50"})
    c = staff.parse_search({"status": "APPROVED"})
    assert a.digest() == b.digest() != c.digest()


@pytest.mark.parametrize("raw", [None, "", "  ", "ab", "x" * 501, 12])
def test_reasons_are_required_text(raw: object) -> None:
    with pytest.raises(InvalidInput):
        staff.parse_reason(raw)


def test_an_optional_reason_may_be_absent() -> None:
    assert staff.parse_reason(None, required=False) is None
    assert staff.parse_reason("  motivo  ") == "motivo"


def test_payment_rows_skip_items_of_zero_pesos() -> None:
    from chalicelib.domain.payments import Payment, PaymentItem

    approved = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    payment = Payment(payment_id="p" * 22, reference="SVABCDEFGH2345", document_number="1020304050",
                      document_type="CC", payer_name="Ana", status="APPROVED", amount=100_000,
                      items=[PaymentItem(obligation_id="A", type="APORTE", product_number="1",
                                         description="Aportes", amount=100_000),
                             PaymentItem(obligation_id="B", type="CREDITO", product_number="2",
                                         description="Crédito", amount=0)],
                      bank_code="1022", person_type="natural", description="d", ip="1.2.3.4",
                      gateway="wompi", created_at=approved, updated_at=approved, approved_at=approved,
                      status_history=[])
    rows = exports.payment_rows("E1", payment)
    assert len(rows) == 1
    row = dict(zip(exports.COLUMNS, rows[0], strict=True))
    assert row["approved_at"] == "2026-11-23T10:00:00-05:00"
    assert row["cus"] == "" and row["gateway_id"] == "" and row["obligation_id"] == "A"
    text = exports.render_csv("E1", [payment])
    assert text.startswith("export_id;reference;cus;approved_at;") and text.endswith("\r\n")


def test_emit_metric_prints_one_emf_line(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from chalicelib.observability import emit_metric

    monkeypatch.setenv("STAGE", "prod")
    emit_metric("PaymentsFinal", 1, "Count", Status="APPROVED")
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["Stage"] == "prod" and record["Status"] == "APPROVED" and record["PaymentsFinal"] == 1
    assert record["_aws"]["CloudWatchMetrics"] == [{"Namespace": "SucursalVirtual",
                                                     "Dimensions": [["Stage", "Status"]],
                                                     "Metrics": [{"Name": "PaymentsFinal", "Unit": "Count"}]}]


@pytest.mark.parametrize("raw", ["²", "①", "١٠", "１０", "0", "101", "99999999999999999999", "-1", "1e2"])
def test_a_page_limit_takes_ascii_digits_only(raw: str) -> None:
    with pytest.raises(InvalidInput):
        staff.parse_limit(raw)
    assert staff.parse_limit("25") == 25 and staff.parse_limit(None) == staff.DEFAULT_LIMIT
