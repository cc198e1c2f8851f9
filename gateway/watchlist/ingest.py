"""Watchlist CSV files: `kind,value,reason,advice[,expires]`, bad rows reported, the rest kept.

The identifier columns are read by `gateway.ingest_csv` (same normalisation, same
line-numbered reasons that never quote a value); this adds the watchlist's own columns.
`expires` is empty (no expiry), a date (the entry lapses at the start of that day,
China Standard Time) or an ISO 8601 time with its offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final

from gateway.identifiers import Identifier
from gateway.ingest_csv import IngestError, RejectedRow, Source, read_records
from gateway.watchlist import Advice, EntryError, check_reason

__all__ = ["ListedRow", "WatchlistFile", "parse_expiry", "read_watchlist"]

CHINA: Final = timezone(timedelta(hours=8))
COLUMNS: Final = ("reason", "advice")


@dataclass(frozen=True)
class ListedRow:
    line: int
    identifier: Identifier
    reason: str
    advice: Advice
    expires_ms: int | None


@dataclass
class WatchlistFile:
    rows: list[ListedRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)


def parse_expiry(text: str, now_ms: int) -> int | None:
    """Milliseconds since the epoch, None for no expiry; EntryError if unreadable or past."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            at = datetime.combine(date.fromisoformat(text), datetime.min.time(), CHINA)
        else:
            at = datetime.fromisoformat(text)
            if at.tzinfo is None:
                raise EntryError("expiry time must give its offset, e.g. 2027-01-31T18:00+08:00")
    except ValueError as exc:
        if isinstance(exc, EntryError):
            raise
        raise EntryError("expiry must be a date (2027-01-31) or an ISO 8601 time") from None
    ms = int(at.astimezone(UTC).timestamp() * 1000)
    if ms <= now_ms:
        raise EntryError("expiry is in the past")
    return ms


def read_watchlist(
    source: Source, *, now_ms: int, default_region: str = "CN", encoding: str = "utf-8-sig"
) -> WatchlistFile:
    """Every valid row, and every bad row by line number and reason; IngestError if the
    file as a whole cannot be read or lacks the reason and advice columns."""
    loaded = read_records(source, default_region=default_region, encoding=encoding)
    missing = [c for c in COLUMNS if c not in loaded.attribute_columns]
    if missing:
        raise IngestError(
            f"the header lacks {', '.join(missing)}; a watchlist file has the columns "
            "kind,value,reason,advice and optionally expires"
        )
    result = WatchlistFile(rejected=list(loaded.rejected))
    for record in loaded.records:
        attributes = record.attributes
        try:
            row = ListedRow(
                record.line,
                record.identifier,
                check_reason(attributes.get("reason", "")),
                Advice.parse(attributes.get("advice", "")),
                parse_expiry(attributes.get("expires", ""), now_ms),
            )
        except EntryError as exc:
            result.rejected.append(RejectedRow(record.line, str(exc)))
            continue
        result.rows.append(row)
    result.rejected.sort(key=lambda r: r.line)
    return result
