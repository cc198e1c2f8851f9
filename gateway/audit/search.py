"""Audit entries as search results and as CSV: one shape for the CLI and the console.

A search row shows what an auditor scans for (time, type, kind, who to whom, case,
decision and why); the CSV export keeps the main columns of every entry, with the time
in ISO 8601 UTC. Entries hold no identifier, and neither do these.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["EXPORT_COLUMNS", "export_row", "iso_utc_ms", "search_row", "write_csv"]

EXPORT_COLUMNS = (
    "index",
    "type",
    "at",
    "message_id",
    "kind",
    "sender",
    "recipients",
    "recipient",
    "case_ref",
    "purpose",
    "legal_basis",
    "decision",
    "policy_ids",
    "state",
    "reason",
    "payload_sha256",
)


def iso_utc_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 in UTC with a Z ("2026-12-03T07:04:40.123Z"); 0 is ""."""
    if not ms:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def search_row(index: int, entry: dict[str, Any]) -> dict[str, object]:
    """One audit entry as a search result; a DENY or a refusal says why."""
    to = entry.get("recipients") or [entry.get("recipient", "")]
    check = entry.get("check", "")
    reason = str(entry.get("reason", ""))
    return {
        "index": index,
        "at": int(entry.get("at_ms", 0)),
        "type": entry.get("type", ""),
        "kind": entry.get("kind", ""),
        "sender": entry.get("sender", entry.get("peer", "")),
        "to": [str(t) for t in to if t],
        "case_ref": entry.get("case_ref", ""),
        "decision": entry.get("decision", entry.get("state", "")),
        "reason": f"{check}: {reason}" if check and reason else reason,
    }


def _cell(value: object) -> object:
    return ";".join(str(v) for v in value) if isinstance(value, list) else value


def export_row(index: int, entry: dict[str, Any], iso_time: str) -> dict[str, object]:
    """The CSV row of one entry: its fields (lists joined by ';') and the time as given."""
    row = {k: _cell(v) for k, v in entry.items()}
    return {**row, "index": index, "at": iso_time}


def write_csv(stream: TextIO, entries: Iterable[tuple[int, dict[str, Any]]]) -> int:
    """Write a header and one row per entry; returns the number of rows written."""
    writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    written = 0
    for index, entry in entries:
        writer.writerow(export_row(index, entry, iso_utc_ms(int(entry.get("at_ms", 0)))))
        written += 1
    return written
