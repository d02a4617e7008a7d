"""How amounts, dates and times read in Colombia (es-CO)."""

from __future__ import annotations

from datetime import date, datetime

from chalicelib.config import COLOMBIA

_MONTHS = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre")


def cop(amount: int | None) -> str:
    """``1234567`` → ``$ 1.234.567`` (integer pesos)."""
    if amount is None:
        return ""
    sign = "-" if amount < 0 else ""
    return f"{sign}$ {abs(int(amount)):,}".replace(",", ".")


def local_datetime(value: datetime | None) -> str:
    """An aware datetime in Colombian time: ``23 de noviembre de 2026, 5:36 p. m.``."""
    if value is None:
        return ""
    local = value.astimezone(COLOMBIA)
    hour = local.hour % 12 or 12
    suffix = "a. m." if local.hour < 12 else "p. m."
    return f"{local.day} de {_MONTHS[local.month - 1]} de {local.year}, {hour}:{local.minute:02d} {suffix}"


def long_date(value: date | None) -> str:
    if value is None:
        return ""
    return f"{value.day} de {_MONTHS[value.month - 1]} de {value.year}"


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the Colombian offset, as the JSON API answers times."""
    return value.astimezone(COLOMBIA).isoformat(timespec="seconds") if value else None
