"""es-CO formatting through Babel, and the payment lifecycle the member sees."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib import formatting
from chalicelib.domain import payments as rules
from chalicelib.services import texts

T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 a. m. in Colombia


@pytest.mark.parametrize("amount,text", [
    (80_000, "$ 80.000"), (1_500, "$ 1.500"), (1_234_567, "$ 1.234.567"), (0, "$ 0"),
    (-1_500, "-$ 1.500"), (20_000_000, "$ 20.000.000"), (None, ""),
])
def test_pesos_read_as_in_colombia(amount, text) -> None:  # type: ignore[no-untyped-def]
    assert formatting.cop(amount) == text


def test_dates_and_times_in_colombian_time_with_plain_spaces() -> None:
    assert formatting.local_datetime(datetime(2026, 11, 23, 22, 36, tzinfo=UTC)) == \
        "23 de noviembre de 2026, 5:36 p. m."
    assert formatting.local_datetime(datetime(2027, 1, 1, 4, 5, tzinfo=UTC)) == \
        "31 de diciembre de 2026, 11:05 p. m."  # UTC-5 moves the day back
    assert formatting.local_datetime(T0) == "23 de noviembre de 2026, 10:00 a. m."
    assert formatting.local_time(T0) == "10:00 a. m."
    assert formatting.long_date(date(2026, 3, 5)) == "5 de marzo de 2026"
    assert formatting.long_date("2026-11-30") == "30 de noviembre de 2026"
    assert formatting.iso(T0) == "2026-11-23T10:00:00-05:00"
    assert formatting.local_datetime(None) == formatting.long_date(None) == ""


def test_babel_is_not_imported_at_a_cold_start() -> None:
    code = ("import sys, app, chalicelib.formatting, chalicelib.templating; "
            "print('babel' in sys.modules, 'fpdf' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def steps(status: str, *history: tuple[str, int]) -> list[tuple[str, str, bool, bool]]:
    reached = [(key, T0 + timedelta(minutes=minutes)) for key, minutes in history]
    return [(s.label, s.state, s.current, s.at is not None) for s in texts.lifecycle(status, reached)]


def test_lifecycle_of_a_payment_that_goes_well() -> None:
    assert steps("CREATED", ("CREATED", 0)) == [
        ("Iniciado", "active", True, True), ("Pendiente en el banco", "upcoming", False, False),
        ("Aprobado", "upcoming", False, False)]
    assert steps("PENDING", ("CREATED", 0), ("PENDING", 1)) == [
        ("Iniciado", "done", False, True), ("Pendiente en el banco", "active", True, True),
        ("Aprobado", "upcoming", False, False)]
    assert steps("APPROVED", ("CREATED", 0), ("PENDING", 1), ("APPROVED", 3)) == [
        ("Iniciado", "done", False, True), ("Enviado a su banco", "done", False, True),
        ("Aprobado", "done", True, True)]
    approved = texts.lifecycle(
        "APPROVED", [("CREATED", T0), ("PENDING", T0), ("APPROVED", T0 + timedelta(minutes=3))])
    assert approved[-1].at == T0 + timedelta(minutes=3)


def test_lifecycle_of_refused_and_late_payments() -> None:
    assert steps("REJECTED", ("CREATED", 0), ("PENDING", 1), ("REJECTED", 5)) == [
        ("Iniciado", "done", False, True), ("Enviado a su banco", "done", False, True),
        ("Rechazado", "failed", True, True)]
    assert steps("FAILED", ("CREATED", 0), ("FAILED", 0)) == [
        ("Iniciado", "done", False, True), ("Fallido", "failed", True, True)]
    assert steps("EXPIRED", ("CREATED", 0), ("EXPIRED", 30))[-1] == ("Vencido", "failed", True, True)
    # The bank confirmed after we gave up: the member sees it approved, not "vencido".
    assert steps("APPROVED", ("CREATED", 0), ("EXPIRED", 30), ("APPROVED", 40)) == [
        ("Iniciado", "done", False, True), ("Aprobado", "done", True, True)]


def test_a_fourth_step_slots_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """'Aplicado en la cooperativa' (the core system's import) needs only data, no new code."""
    monkeypatch.setattr(rules, "HAPPY_PATH", (*rules.HAPPY_PATH, "APPLIED"))
    monkeypatch.setitem(texts.STEP_LABELS, "APPLIED", "Aplicado en la cooperativa")
    history = (("CREATED", 0), ("PENDING", 1), ("APPROVED", 3))
    assert steps("APPROVED", *history)[-2:] == [
        ("Aprobado", "done", True, True), ("Aplicado en la cooperativa", "upcoming", False, False)]
    assert steps("APPROVED", *history, ("APPLIED", 600))[-2:] == [
        ("Aprobado", "done", False, True), ("Aplicado en la cooperativa", "done", True, True)]
    assert steps("PENDING", ("CREATED", 0), ("PENDING", 1))[-1] == (
        "Aplicado en la cooperativa", "upcoming", False, False)
