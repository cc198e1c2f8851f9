"""`--output table|json|csv` for query, freeze list and audit search: one formatter.

A table is for a person at a terminal of any width: no cell is cut, free text (reasons,
labels) folds onto more lines, and when the table would still be too wide the least
important columns are left out, named below it; the identifiers a follow-up command
takes (request ids, handles) are never left out.
JSON and CSV are for programs: every column, times as ISO 8601 UTC, never epoch ms.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import typer
from rich.table import Table
from rich.text import Text

from gateway.cli.common import console


class Output(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


OUTPUT = typer.Option(
    Output.table,
    "--output",
    "-o",
    help="table (fits the terminal), json or csv (every column, ISO 8601 UTC times).",
)


@dataclass(frozen=True)
class Column:
    key: str
    header: str = ""
    keep: bool = False
    """Never left out nor cut: a value a follow-up command takes (request id, handle)."""
    rank: int = 0
    """Columns with the lowest rank are left out first when the terminal is too narrow."""
    time: bool = False
    """Values are epoch milliseconds (0: none)."""
    fold: bool = False
    """Free text (a reason, a label): folds onto more lines; other columns never do."""
    min_width: int = 12
    """The narrowest a folding column gets before it is left out."""

    @property
    def title(self) -> str:
        return self.header or self.key


def iso_utc(ms: int) -> str | None:
    """Epoch milliseconds as ISO 8601 in UTC with a Z ("2026-12-03T07:04:40.123Z")."""
    if not ms:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def short_utc(ms: int) -> str:
    """Epoch milliseconds as a table shows them, to the second, in UTC."""
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _value(column: Column, value: object) -> object:
    if column.time:
        return iso_utc(int(value or 0))  # type: ignore[call-overload]
    return value


def _cell(column: Column, value: object) -> str:
    if column.time:
        return short_utc(int(value or 0))  # type: ignore[call-overload]
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def fitted(
    rows: Sequence[dict[str, object]], columns: Sequence[Column], width: int
) -> tuple[list[Column], list[Column]]:
    """The columns a table of `width` characters shows, and those it leaves out."""
    shown = list(columns)
    dropped: list[Column] = []

    def need(c: Column) -> int:
        return min(natural(rows, c), c.min_width) if c.fold else natural(rows, c)

    while sum(need(c) + 3 for c in shown) + 1 > width:
        optional = [c for c in shown if not c.keep]
        if not optional:
            break
        least = min(optional, key=lambda c: c.rank)
        shown.remove(least)
        dropped.append(least)
    return shown, dropped


def natural(rows: Sequence[dict[str, object]], column: Column) -> int:
    """The width of a column's widest cell or of its title."""
    return max([len(column.title), *(len(_cell(column, r.get(column.key))) for r in rows)])


def render(
    rows: Sequence[dict[str, object]],
    columns: Sequence[Column],
    output: Output,
    title: str = "",
) -> None:
    """Print `rows` (dicts by column key) as a table, a JSON array or CSV."""
    if output is Output.json:
        data = [{c.key: _value(c, r.get(c.key)) for c in columns} for r in rows]
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    if output is Output.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        for r in rows:
            writer.writerow([_csv_cell(c, r.get(c.key)) for c in columns])
        return
    shown, dropped = fitted(rows, columns, console.width)
    table = Table(title=title or None, expand=False)
    for c in shown:
        if c.fold:
            table.add_column(c.title, overflow="fold")
        else:
            table.add_column(c.title, no_wrap=True, min_width=natural(rows, c))
    for r in rows:
        table.add_row(*(Text(_cell(c, r.get(c.key))) for c in shown))
    console.print(table, markup=False, highlight=False)
    if dropped:
        names = ", ".join(c.title for c in dropped)
        console.print(
            f"(left out at this width: {names}; all in --output json)",
            markup=False,
            highlight=False,
        )


def _csv_cell(column: Column, value: object) -> str:
    if column.time:
        return iso_utc(int(value or 0)) or ""  # type: ignore[call-overload]
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return "" if value is None else str(value)
