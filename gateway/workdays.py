"""Working days in mainland China, for deadlines counted in them (a return of funds: 3).

A calendar is a TOML file of years, each with its public holidays and the weekend days
that are worked instead (调休), as the State Council publishes them every year. A day
is a working day if it is listed as one, or is Monday to Friday and not a holiday;
for a year the file does not list, Monday to Friday are working days. Days are
Beijing dates (UTC+8; China keeps no daylight saving time).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from gateway.resources import shipped

BEIJING = timezone(timedelta(hours=8), "CST")
DEFAULT_CALENDAR = shipped("calendars") / "cn.toml"


class CalendarError(ValueError):
    """A calendar file cannot be read; the text names the file and what is wrong."""


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[date]
    workdays: frozenset[date]
    """Weekend days worked instead of a holiday."""
    years: frozenset[int]

    @classmethod
    def load(cls, path: Path | None = None) -> WorkingCalendar:
        path = path or DEFAULT_CALENDAR
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CalendarError(f"holiday calendar {path}: {exc}") from None
        holidays: set[date] = set()
        workdays: set[date] = set()
        years: set[int] = set()
        for year, lists in data.items():
            if not year.isdigit() or not isinstance(lists, dict):
                raise CalendarError(f"holiday calendar {path}: [{year}] is not a [YEAR] table")
            years.add(int(year))
            for key, into in (("holidays", holidays), ("workdays", workdays)):
                for text in lists.get(key, []):
                    try:
                        day = date.fromisoformat(str(text))
                    except ValueError:
                        raise CalendarError(
                            f"holiday calendar {path}: [{year}] {key}: {text!r} is not a date"
                        ) from None
                    if day.year != int(year):
                        raise CalendarError(
                            f"holiday calendar {path}: [{year}] {key}: {text} is in another year"
                        )
                    into.add(day)
        both = holidays & workdays
        if both:
            raise CalendarError(
                f"holiday calendar {path}: {min(both)} is both a holiday and a working day"
            )
        return cls(frozenset(holidays), frozenset(workdays), frozenset(years))

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def due_after(self, start_ms: int, working_days: int) -> int:
        """The end (Beijing midnight) of the `working_days`-th working day after the
        Beijing date of `start_ms`, in Unix milliseconds."""
        day = datetime.fromtimestamp(start_ms / 1000, BEIJING).date()
        counted = 0
        while counted < working_days:
            day += timedelta(days=1)
            counted += self.is_working_day(day)
        end = datetime.combine(day + timedelta(days=1), time(0), BEIJING)
        return int(end.timestamp() * 1000)
