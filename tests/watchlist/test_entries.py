"""Watchlist entries and answers without a network: CSV rows, expiry, reading labels.

Expected times are computed here from the calendar (China Standard Time, UTC+8), not
by the code under test.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from gateway.ingest_csv import IngestError
from gateway.watchlist import Advice, EntryError, Listed, NotListed, check_reason, result_of
from gateway.watchlist.ingest import parse_expiry, read_watchlist

NOW = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)


def test_a_date_lapses_at_the_start_of_that_day_in_china() -> None:
    # 2027-01-31 00:00 at UTC+8 is 2027-01-30 16:00 UTC
    expected = int(datetime(2027, 1, 30, 16, tzinfo=UTC).timestamp() * 1000)
    assert parse_expiry("2027-01-31", NOW) == expected
    assert parse_expiry("2027-01-31T08:00+08:00", NOW) == int(
        datetime(2027, 1, 31, 0, tzinfo=UTC).timestamp() * 1000
    )
    assert parse_expiry("", NOW) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-30", "in the past"),
        ("2027-01-31T08:00", "give its offset"),
        ("31/01/2027", "a date"),
        ("soon", "a date"),
    ],
)
def test_bad_expiries_are_named(text: str, message: str) -> None:
    with pytest.raises(EntryError, match=message):
        parse_expiry(text, NOW)


@pytest.mark.parametrize("code", ["MULE_ACCOUNT", "SCAM_CALLS", "R2"])
def test_reason_codes(code: str) -> None:
    assert check_reason(f" {code} ") == code


@pytest.mark.parametrize(
    "code", ["", "X", "mule", "MULE ACCOUNT", "1MULE", "A" * 33, "13800138000"]
)
def test_bad_reason_codes_are_refused_without_echoing_them(code: str) -> None:
    with pytest.raises(EntryError) as err:
        check_reason(code)
    assert code.strip() == "" or code not in str(err.value)


def test_advice_levels_parse_as_people_write_them() -> None:
    assert Advice.parse("Enhanced checks") is Advice.ENHANCED_CHECKS
    assert Advice.parse("warn-customer") is Advice.WARN_CUSTOMER
    with pytest.raises(EntryError, match="unknown advice level"):
        Advice.parse("block")


def test_a_file_without_reason_or_advice_is_refused_whole() -> None:
    with pytest.raises(IngestError, match="lacks reason, advice"):
        read_watchlist(io.StringIO("kind,value\nphone,+8613800138000\n"), now_ms=NOW)


def test_labels_answer_listed_unless_expired_and_the_strictest_advice_wins() -> None:
    later, earlier = str(NOW + 1000), str(NOW - 1)
    warn = {"reason": "R1", "advice": "warn_customer", "expires_ms": ""}
    refuse = {"reason": "R2", "advice": "refuse", "expires_ms": later}
    lapsed = {"reason": "R3", "advice": "refuse", "expires_ms": earlier}
    assert result_of([], NOW) == NotListed()
    assert result_of([lapsed], NOW) == NotListed()
    assert result_of([warn], NOW) == Listed("R1", Advice.WARN_CUSTOMER)
    assert result_of([warn, refuse, lapsed], NOW) == Listed("R2", Advice.REFUSE, NOW + 1000)
    # a level this node does not know yet is read on the safe side
    assert result_of([{"reason": "R4", "advice": "freeze"}], NOW).advice is Advice.REFUSE  # type: ignore[union-attr]
