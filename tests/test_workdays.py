"""Working-day deadlines against the State Council's published 2026 holiday schedule.

Expected dates are read off the State Council General Office's notice by hand (National
Day 1-7 October off, Saturday 10 October worked; Spring Festival 15-23 February off,
Saturdays 14 and 28 February worked), not computed by the code under test.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from gateway.workdays import CalendarError, WorkingCalendar


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("requested", "due"),
    [
        # An ordinary week: Friday -> Monday, Tuesday, Wednesday.
        ("2026-12-04T10:00+08:00", "2026-12-10T00:00+08:00"),
        # Before National Day: 8 and 9 October, then the worked Saturday 10 October.
        ("2026-09-30T10:00+08:00", "2026-10-11T00:00+08:00"),
        # Before Spring Festival: the worked Saturday 14 February, then 24 and 25 February.
        ("2026-02-13T10:00+08:00", "2026-02-26T00:00+08:00"),
        # 23:30 UTC on 3 December is already 4 December in Beijing.
        ("2026-12-03T23:30+00:00", "2026-12-10T00:00+08:00"),
    ],
)
def test_three_working_days_follow_the_published_schedule(requested: str, due: str) -> None:
    assert WorkingCalendar.load().due_after(ms(requested), 3) == ms(due)


def test_a_year_the_calendar_does_not_list_counts_monday_to_friday() -> None:
    calendar = WorkingCalendar.load()
    assert 2027 not in calendar.years
    # Friday 1 January 2027 is New Year's Day, but no 2027 schedule is shipped.
    assert calendar.is_working_day(date(2027, 1, 1))
    assert not calendar.is_working_day(date(2027, 1, 2))


def test_an_own_calendar_file_is_used_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    own = tmp_path / "cal.toml"
    own.write_text('[2027]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-02"]\n')
    calendar = WorkingCalendar.load(own)
    assert not calendar.is_working_day(date(2027, 1, 1))
    assert calendar.is_working_day(date(2027, 1, 2))
    own.write_text('[2027]\nholidays = ["2026-12-31"]\n')
    with pytest.raises(CalendarError, match="is in another year"):
        WorkingCalendar.load(own)
    own.write_text('[2027]\nholidays = ["1 Jan"]\n')
    with pytest.raises(CalendarError, match="is not a date"):
        WorkingCalendar.load(own)
