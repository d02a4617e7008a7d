"""The demo data are dated relative to the day they are loaded, and the moved clock stays local."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from devtools import clock, demo_dates

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "devtools" / "demo"

#: Moments the demo must make sense on: a leap day, Colombia's last half hour of the year (already
#: 1 January in UTC), and an ordinary day.
MOMENTS = [datetime(2028, 2, 29, 17, 0, tzinfo=UTC), datetime(2028, 1, 1, 4, 40, tzinfo=UTC),
           datetime(2026, 12, 4, 19, 0, tzinfo=UTC)]


def resolved_rows(now: datetime) -> list[dict[str, str]]:
    text = demo_dates.resolve((DEMO / "obligations.csv").read_text("utf-8-sig"), now)
    return list(csv.DictReader(io.StringIO(text)))


def test_placeholders_become_dates_of_colombias_today() -> None:
    new_years_eve = datetime(2028, 1, 1, 4, 40, tzinfo=UTC)  # 23:40 on 31 December in Colombia
    assert demo_dates.resolve("{today}|{today-8}|{today+1}", new_years_eve) == \
        "2027-12-31|2027-12-23|2028-01-01"
    leap_day = datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    assert demo_dates.resolve("{today+1};{today-365}", leap_day) == "2028-03-01;2027-03-01"


def test_real_dates_and_other_text_load_as_they_are() -> None:
    text = "CRE-1,2026-11-15,{tomorrow},{today-x},2026-11-22T20:00:00-05:00"
    assert demo_dates.resolve(text, MOMENTS[0]) == text


@pytest.mark.parametrize("now", MOMENTS, ids=lambda moment: moment.isoformat())
def test_the_demo_shows_a_realistic_mix_on_any_day(now: datetime) -> None:
    today = demo_dates.colombia_today(now)
    rows = resolved_rows(now)
    assert not any("{" in value for row in rows for value in row.values())
    due = [(row["type"], (date.fromisoformat(row["due_date"]) - today).days, int(row["amount_due"]))
           for row in rows]
    owed = [(kind, days) for kind, days, amount in due if amount > 0]
    assert any(kind == "CREDITO" and -10 <= days < 0 for kind, days in owed)  # a few days overdue
    assert any(kind == "APORTE" and 0 <= days <= 6 for kind, days in owed)  # due this week
    assert any(kind == "AHORRO" and 28 <= days <= 35 for kind, days in owed)  # about next month
    assert any(amount == 0 for _, _, amount in due)  # a fully paid one
    for row in rows:  # the core computed every balance before today
        assert datetime.fromisoformat(row["cutoff"]) < datetime.combine(today, datetime.min.time(),
                                                                        tzinfo=demo_dates.COLOMBIA)


def test_the_moved_clock_is_refused_outside_the_local_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "applied", [])
    monkeypatch.setenv(clock.OFFSET_ENV, "86400")
    for stage in ("dev", "prod"):
        monkeypatch.setenv("STAGE", stage)
        with pytest.raises(clock.ClockError, match="refused in stage"):
            clock.apply_from_environment()
    monkeypatch.setenv("STAGE", "local")
    monkeypatch.setenv(clock.OFFSET_ENV, "tomorrow")
    with pytest.raises(clock.ClockError, match="not a number"):
        clock.apply_from_environment()
    with pytest.raises(clock.ClockError, match="needs a UTC offset"):
        clock.offset_for("2028-02-29T12:00:00")


def test_the_deployed_code_cannot_reach_the_moved_clock() -> None:
    importing = re.compile(r"^\s*(?:from|import)\s+(devtools|time_machine)\b", re.MULTILINE)
    sources = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    assert [path.name for path in sources if importing.search(path.read_text("utf-8"))] == []
    deployed = (ROOT / "requirements.txt").read_text("utf-8")
    assert "time-machine" not in deployed and "time_machine" not in deployed
