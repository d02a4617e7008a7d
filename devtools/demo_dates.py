"""Demo and test data dated relative to the day they are loaded.

The built-in demo files (``devtools/demo``) and the browser tests' files (``tests/browser/data``)
keep the import format of SPEC §4, but a date may be written as a placeholder that the local runner
turns into a date when it loads the file: ``{today}``, ``{today-8}`` or ``{today+30}`` (days from
today in Colombia, where the cooperative's days begin and end). A cut-off is written
``{today-1}T20:00:00-05:00``. Anything else, real dates included, is left as it is, so a
``DEMO_DATA_DIR`` of dated files from a core system loads unchanged.

Tests derive their expectations from the same offsets (:func:`resolve_date`), so nothing they
assert depends on the day they run.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

#: Colombia's offset (no daylight saving time); the app's own constant lives in chalicelib.config,
#: which this dev tool does not import before the runner has set the environment.
COLOMBIA = timezone(timedelta(hours=-5), "COT")
PLACEHOLDER = re.compile(r"\{today(?:(?P<sign>[+-])(?P<days>\d{1,4}))?\}")


def colombia_today(now: datetime) -> date:
    return now.astimezone(COLOMBIA).date()


def resolve_date(offset_days: int, now: datetime) -> date:
    """The date ``offset_days`` from today in Colombia (negative: in the past)."""
    return colombia_today(now) + timedelta(days=offset_days)


def resolve(text: str, now: datetime) -> str:
    """``text`` with every ``{today±N}`` placeholder replaced by its ISO date."""

    def replace(match: re.Match[str]) -> str:
        days = int(match["days"] or 0) * (-1 if match["sign"] == "-" else 1)
        return resolve_date(days, now).isoformat()

    return PLACEHOLDER.sub(replace, text)
