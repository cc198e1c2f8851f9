"""Batch loading of responders' records and requesters' query lists from CSV files.

Banks and carriers export their books as CSV. One bad row must not stop a load, and must
not go unnoticed either: every valid row is loaded in canonical form, and every rejected
row is reported by line number and reason, never by its value, so the report itself can
be shared with the operator without leaking personal data.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import IO

from gateway.identifiers import (
    Identifier,
    IdentifierKind,
    InvalidIdentifier,
    UnknownIdentifierKind,
    normalise,
)

__all__ = [
    "IngestError",
    "IngestResult",
    "Record",
    "RejectedRow",
    "check_encoding",
    "read_identifiers",
    "read_records",
]

Source = str | os.PathLike[str] | IO[str]
"""A file path, or an open text stream (opened with newline="" for CSV)."""

REQUIRED_COLUMNS = ("kind", "value")

# The decoder's own message quotes the offending bytes; ours says only what to do.
_NOT_UTF8 = (
    "file is not UTF-8 text; export it as UTF-8 (e.g. 'CSV UTF-8') and load it again, "
    "or give its encoding (e.g. --encoding gbk)"
)
DEFAULT_ENCODING = "utf-8-sig"
"""UTF-8, with or without the BOM that spreadsheet exports on Windows usually start with."""


def _not_decodable(encoding: str) -> str:
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return _NOT_UTF8
    return f"file is not {encoding} text; give the encoding it was exported in"


def check_encoding(encoding: str) -> str:
    """The encoding's canonical name; IngestError for one Python does not know."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise IngestError(f"unknown encoding {encoding!r}; e.g. utf-8, gbk, gb18030") from None


class IngestError(ValueError):
    """The file as a whole cannot be read: empty, missing columns, malformed CSV, too big."""


@dataclass(frozen=True, slots=True)
class Record:
    """One loaded row: its canonical identifier and the responder's other columns."""

    line: int
    identifier: Identifier
    attributes: dict[str, str]


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that was not loaded. `reason` never contains the row's value."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class IngestResult:
    records: list[Record] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    attribute_columns: tuple[str, ...] = ()

    @property
    def identifiers(self) -> list[Identifier]:
        return [r.identifier for r in self.records]

    @property
    def rows_read(self) -> int:
        return len(self.records) + len(self.rejected)


def read_records(
    source: Source,
    *,
    default_region: str = "CN",
    max_rows: int | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> IngestResult:
    """Load a CSV with a header containing `kind` and `value`, plus any attribute columns.

    Line numbers are 1-based physical lines; the header is line 1 (when the file starts
    with it). Blank lines are skipped. A path is read in `encoding` (GBK and GB 18030
    exports are common at Chinese banks). Raises IngestError for an empty file, a header
    without `kind` and `value`, malformed CSV, text not in `encoding`, or more than
    `max_rows` data rows.
    """
    check_encoding(encoding)
    with _open(source, encoding) as fh:
        try:
            return _read_csv(fh, default_region=default_region, max_rows=max_rows)
        except UnicodeDecodeError:
            raise IngestError(_not_decodable(encoding)) from None


def read_identifiers(
    source: Source,
    kind: IdentifierKind | str | None = None,
    *,
    default_region: str = "CN",
    max_rows: int | None = None,
) -> IngestResult:
    """Load a query file: either the read_records CSV format, or one value per line.

    The CSV format is recognised by a first non-blank line naming `kind` and `value`
    columns. In a plain list every value is of `kind` (required then), and blank lines and
    lines starting with '#' are skipped. If `kind` is given for a CSV file, rows of other
    kinds are rejected. Use `result.identifiers` for the loaded values.
    """
    expected = None if kind is None else _kind(kind)
    with _open(source) as fh:
        try:
            text = fh.read().removeprefix("\ufeff")
        except UnicodeDecodeError:
            raise IngestError(_NOT_UTF8) from None
    lines = list(io.StringIO(text, newline=""))  # same line breaks as the csv module: \n, \r\n, \r
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise IngestError("file is empty")
    if _is_header(first):
        result = _read_csv(io.StringIO(text, newline=""), default_region, max_rows)
        if expected is not None:
            _reject_other_kinds(result, expected)
        return result
    if expected is None:
        raise IngestError(
            "no kind,value header: a plain list of identifiers needs the kind to be given"
        )
    result = IngestResult()
    for line, raw in enumerate(lines, start=1):
        value = raw.strip()
        if not value or value.startswith("#"):
            continue
        _check_limit(result.rows_read + 1, max_rows)
        try:
            identifier = normalise(expected, value, default_region=default_region)
        except InvalidIdentifier as exc:
            result.rejected.append(RejectedRow(line, str(exc)))
        else:
            result.records.append(Record(line, identifier, {}))
    return result


def _kind(kind: IdentifierKind | str) -> IdentifierKind:
    return kind if isinstance(kind, IdentifierKind) else IdentifierKind.parse(kind)


def _open(source: Source, encoding: str = DEFAULT_ENCODING) -> AbstractContextManager[IO[str]]:
    """Open a path (and close it after), or borrow a caller's stream (left open)."""
    if isinstance(source, str | os.PathLike):
        return open(source, encoding=encoding, newline="")
    return nullcontext(source)


def _is_header(line: str) -> bool:
    cells = next(csv.reader([line]), [])
    names = {c.strip().lower() for c in cells}
    return all(c in names for c in REQUIRED_COLUMNS)


def _check_limit(rows: int, max_rows: int | None) -> None:
    if max_rows is not None and rows > max_rows:
        raise IngestError(f"more than {max_rows} data rows")


def _reject_other_kinds(result: IngestResult, expected: IdentifierKind) -> None:
    kept = []
    for record in result.records:
        if record.identifier.kind is expected:
            kept.append(record)
        else:
            reason = f"expected kind {expected.value}, got {record.identifier.kind.value}"
            result.rejected.append(RejectedRow(record.line, reason))
    result.records = kept
    result.rejected.sort(key=lambda r: r.line)


def _read_csv(fh: IO[str], default_region: str, max_rows: int | None) -> IngestResult:
    reader = csv.reader(fh, strict=True)

    def next_row() -> tuple[int, list[str]] | None:
        """The next non-blank row and the physical line it starts on."""
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                # _csv's messages describe the syntax problem, never the cell contents.
                raise IngestError(f"line {start}: malformed CSV: {exc}") from None
            if any(cell.strip() for cell in row):
                return start, row

    first = next_row()
    if first is None:
        raise IngestError("file is empty: expected a header row with columns kind,value")
    header_line, header = first
    if header:  # a stream opened without utf-8-sig may still start with a BOM
        header[0] = header[0].removeprefix("\ufeff")
    columns = [c.strip().lower() for c in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise IngestError(
            f"line {header_line}: header is missing column(s) {', '.join(missing)}; "
            "expected kind,value and optional attribute columns"
        )
    if "" in columns:
        raise IngestError(f"line {header_line}: header has an empty column name")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise IngestError(f"line {header_line}: duplicate column(s) {', '.join(duplicates)}")
    kind_at, value_at = columns.index("kind"), columns.index("value")
    attribute_columns = tuple((i, c) for i, c in enumerate(columns) if i not in (kind_at, value_at))

    result = IngestResult(attribute_columns=tuple(c for _, c in attribute_columns))
    while (item := next_row()) is not None:
        line, row = item
        _check_limit(result.rows_read + 1, max_rows)
        if len(row) != len(columns):
            result.rejected.append(
                RejectedRow(line, f"row has {len(row)} fields, header has {len(columns)}")
            )
            continue
        try:
            kind = IdentifierKind.parse(row[kind_at])
            identifier = normalise(kind, row[value_at], default_region=default_region)
        except (UnknownIdentifierKind, InvalidIdentifier) as exc:
            result.rejected.append(RejectedRow(line, str(exc)))
            continue
        attributes = {c: row[i].strip() for i, c in attribute_columns}
        result.records.append(Record(line, identifier, attributes))
    return result
