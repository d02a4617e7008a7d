"""How amounts, dates and times read in Colombia (es-CO), through Babel's CLDR data.

Babel is imported on the first call, not with this module: a cold start that renders no amount
or date (a redirect, the JSON API) does not pay for loading it. Outputs keep plain spaces (CLDR
puts narrow no-break spaces inside "p. m."), so emails, PDFs and tests read them the same way.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from chalicelib.config import COLOMBIA

LOCALE = "es_CO"
#: ``$ 1.234.567``: Colombian pesos are written without centavos.
_MONEY_PATTERN = "¤ #,##0"
_DATE_PATTERN = "d 'de' MMMM 'de' y"
_DATETIME_PATTERN = "d 'de' MMMM 'de' y, h:mm a"
_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


@lru_cache(maxsize=1)
def _locale() -> Any:
    from babel import Locale

    return Locale.parse(LOCALE)


def cop(amount: int | None) -> str:
    """``1234567`` → ``$ 1.234.567`` (integer pesos)."""
    if amount is None:
        return ""
    from babel.numbers import format_currency

    return format_currency(int(amount), "COP", format=_MONEY_PATTERN, locale=_locale(),
                           currency_digits=False).translate(_SPACES)


def local_datetime(value: datetime | None) -> str:
    """An aware datetime in Colombian time: ``23 de noviembre de 2026, 5:36 p. m.``."""
    if value is None:
        return ""
    from babel.dates import format_datetime

    return format_datetime(value, _DATETIME_PATTERN, tzinfo=COLOMBIA,
                           locale=_locale()).translate(_SPACES)


def local_time(value: datetime | None) -> str:
    """Only the Colombian time of day: ``5:36 p. m.``."""
    if value is None:
        return ""
    from babel.dates import format_datetime

    return format_datetime(value, "h:mm a", tzinfo=COLOMBIA, locale=_locale()).translate(_SPACES)


def long_date(value: date | str | None) -> str:
    """``2026-11-30`` (a date or its ISO text) → ``30 de noviembre de 2026``."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    from babel.dates import format_date

    return format_date(value, _DATE_PATTERN, locale=_locale()).translate(_SPACES)


def tel_uri(phone: str) -> str:
    """``(601) 555 0100`` → ``tel:6015550100``: a number a phone can dial (``+`` and digits only)."""
    return "tel:" + "".join(ch for ch in phone if ch in "+0123456789")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with the Colombian offset, as the JSON API answers times."""
    return value.astimezone(COLOMBIA).isoformat(timespec="seconds") if value else None
