"""The holiday calendar a police node counts return-of-funds deadlines in.

A file that does not load would fail the first return request; a calendar that does not
list the year a deadline falls in counts Monday to Friday only there, which puts a
deadline across the Spring Festival days early. The State Council publishes each year's
schedule in November, so the check warns from December when next year is missing.
"""

from __future__ import annotations

from datetime import date, datetime

from gateway.config import NodeConfig
from gateway.workdays import BEIJING, DEFAULT_CALENDAR, CalendarError, WorkingCalendar
from nodes.preflight.checks import Check, fail, ok, warn

HOLIDAY_CALENDAR = "holiday calendar"
NEXT_YEAR_FROM_MONTH = 12
"""From this month on, a deadline may fall in next year: its schedule should be listed."""


def years_needed(today: date) -> list[int]:
    """The years a deadline counted from `today` may fall in."""
    if today.month >= NEXT_YEAR_FROM_MONTH:
        return [today.year, today.year + 1]
    return [today.year]


def check_calendar(config: NodeConfig, today: date | None = None) -> Check | None:
    """For a police node: the calendar loads and lists the years deadlines fall in."""
    if config.role != "police":
        return None
    path = config.holiday_calendar or DEFAULT_CALENDAR
    try:
        calendar = WorkingCalendar.load(config.holiday_calendar)
    except CalendarError as exc:
        return fail(
            HOLIDAY_CALENDAR, f"{exc}; fix the file, or remove holiday_calendar for the shipped one"
        )
    today = today or datetime.now(BEIJING).date()
    missing = [year for year in years_needed(today) if year not in calendar.years]
    if missing:
        years = ", ".join(str(year) for year in missing)
        return warn(
            HOLIDAY_CALENDAR,
            f"{path} does not list {years}: return deadlines there count Monday to Friday"
            " only; add the State Council's schedule as [YEAR] holidays and workdays to your"
            " own copy and set holiday_calendar to it",
        )
    listed = ", ".join(str(year) for year in sorted(calendar.years))
    return ok(HOLIDAY_CALENDAR, f"{path} lists {listed}")
