"""Searching the entries read, and exporting a search as CSV.

The criteria are the CLI's (`gateway.audit.source.EntryFilter`, `gateway audit search`);
dates are days in the node's time zone, "until" inclusive, as a person means them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.audit.search import search_row, write_csv
from gateway.audit.source import EntryFilter
from gateway.console.compliance.reading import Logged
from gateway.console.i18n import gettext_ as _

MAX_ROWS = 500
MAX_FIELD = 128


@dataclass(frozen=True)
class Query:
    """What the search form asks for; empty fields match everything."""

    case: str = ""
    kind: str = ""
    node: str = ""
    decision: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Query:
        values = {f.name: str(params.get(f.name, "")).strip()[:MAX_FIELD] for f in fields(cls)}
        return cls(**values)

    def as_params(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def criteria(self, time_zone: str) -> tuple[EntryFilter, list[str]]:
        """The filter, and what was wrong with the form (each error says what to type)."""
        errors: list[str] = []
        since = _day_start(self.since, time_zone, errors, _("Since"))
        until = _day_start(self.until, time_zone, errors, _("Until"), next_day=True)
        if since and until and until <= since:
            errors.append(_("“Until” must not be before “Since”."))
        if self.decision and self.decision.upper() not in ("ALLOW", "DENY"):
            errors.append(_("Decision must be ALLOW or DENY."))
        criteria = EntryFilter(
            case_ref=self.case,
            node=self.node,
            kind=self.kind,
            decision=self.decision,
            since_ms=since,
            until_ms=until,
        )
        return criteria, errors


def _day_start(
    value: str, time_zone: str, errors: list[str], label: str, *, next_day: bool = False
) -> int:
    if not value:
        return 0
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors.append(_("%(field)s: give a date as YYYY-MM-DD.") % {"field": label})
        return 0
    if next_day:
        day += timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(time_zone))
    return int(start.timestamp() * 1000)


def matching(logged: list[Logged], criteria: EntryFilter) -> list[Logged]:
    return [item for item in logged if criteria.matches(item.entry)]


def rows(found: list[Logged], limit: int = MAX_ROWS) -> list[dict[str, object]]:
    """Search results, newest first, at most `limit`."""
    newest = sorted(found, key=lambda item: item.index, reverse=True)[:limit]
    return [search_row(item.index, item.entry) for item in newest]


def csv_text(found: list[Logged]) -> str:
    """The CSV export of a search (the CLI's columns), oldest first."""
    out = io.StringIO()
    write_csv(out, ((item.index, item.entry) for item in sorted(found, key=lambda i: i.index)))
    return out.getvalue()
