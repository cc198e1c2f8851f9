"""A responder's own records (accounts, subscribers) in its database, keyed by identifier.

This is the data a bank or carrier already holds, loaded by `gateway node ingest`: one
row per normalised identifier with the attributes its configuration may share. The
match index and bulk PSI are built from these rows and never leave the node in clear.
Each change bumps `version`, so the index can be brought up to date incrementally.

Loads run to a million rows, so writes are chunked bulk statements (SQLAlchemy Core) and
reads yield light `StoredRecord` tuples, never one ORM object per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db import NodeBase
from gateway.envelope.build import now_ms
from gateway.identifiers import Identifier, IdentifierKind

__all__ = [
    "STORED_COLUMNS",
    "ChangedRow",
    "RecordRow",
    "StoredRecord",
    "UpsertResult",
    "changed_id_ranges",
    "changed_rows",
    "changed_since",
    "count_changed",
    "current_version",
    "delete_records",
    "live_records",
    "sync_attribute",
    "upsert_records",
]

_CHUNK = 2_000
"""Identifiers looked up per statement: well under SQLite's and PostgreSQL's bind limits."""


class RecordRow(NodeBase):
    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_records_kind_value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    """The normalised identifier (E.164, 18-digit ID, card or account digits/IBAN)."""
    attributes: Mapped[str] = mapped_column(Text, default="{}")
    """JSON object of the record's attributes (status, opened_on, flags, ...)."""
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    """1 once removed; kept as a tombstone so the index can drop its row."""
    version: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    """Bumped on every change, from a per-database counter (see `_next_version`)."""
    updated_at_ms: Mapped[int] = mapped_column(BigInteger, default=0)

    def identifier(self) -> Identifier:
        return Identifier(IdentifierKind(self.kind), self.value)

    def attribute_map(self) -> dict[str, str]:
        value: dict[str, str] = json.loads(self.attributes)
        return value


class RecordVersionRow(NodeBase):
    """The version counter: one row, updated first in every write so writers serialise.

    Taking the row lock before anything else means versions are committed in the order
    they are handed out, which is what lets `changed_since` never skip a change.
    """

    __tablename__ = "record_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One row as read back: the same fields and helpers as `RecordRow`, without the ORM."""

    id: int
    kind: str
    value: str
    attributes: str
    deleted: int
    version: int

    def identifier(self) -> Identifier:
        return Identifier(IdentifierKind(self.kind), self.value)

    def attribute_map(self) -> dict[str, str]:
        value: dict[str, str] = json.loads(self.attributes)
        return value

    def __repr__(self) -> str:
        return f"StoredRecord(id={self.id}, kind={self.kind!r}, version={self.version})"


@dataclass(frozen=True)
class UpsertResult:
    added: int
    changed: int
    unchanged: int


_RECORDS = cast(Table, RecordRow.__table__)
_COUNTER = cast(Table, RecordVersionRow.__table__)
STORED_COLUMNS = (
    _RECORDS.c.id,
    _RECORDS.c.kind,
    _RECORDS.c.value,
    _RECORDS.c.attributes,
    _RECORDS.c.deleted,
    _RECORDS.c.version,
)
"""The columns a `StoredRecord` is made of, in its fields' order."""


def _next_version(conn: Connection) -> int:
    """Take the counter's row lock and the next version (seeded from the table once)."""
    bumped = conn.execute(
        update(_COUNTER).where(_COUNTER.c.id == 1).values(version=_COUNTER.c.version + 1)
    )
    if bumped.rowcount == 0:
        start = conn.scalar(select(func.coalesce(func.max(_RECORDS.c.version), 0)))
        conn.execute(insert(_COUNTER).values(id=1, version=int(start or 0) + 1))
    return int(conn.scalar(select(_COUNTER.c.version).where(_COUNTER.c.id == 1)) or 0)


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _existing(conn: Connection, kind: str, values: list[str]) -> dict[str, tuple[int, str, int]]:
    """value -> (id, attributes, deleted) for those of `values` already stored."""
    rows = conn.execute(
        select(_RECORDS.c.value, _RECORDS.c.id, _RECORDS.c.attributes, _RECORDS.c.deleted).where(
            _RECORDS.c.kind == kind, _RECORDS.c.value.in_(values)
        )
    )
    return {value: (row_id, attributes, deleted) for value, row_id, attributes, deleted in rows}


def upsert_records(
    engine: Engine, records: Iterable[tuple[Identifier, Mapping[str, str]]]
) -> UpsertResult:
    """Add new records and update changed ones, in one transaction; all or nothing.

    An identifier given twice keeps its last attributes. Unchanged records keep their
    version, so the match index does no work for them.
    """
    latest: dict[tuple[str, str], str] = {}
    for identifier, attributes in records:
        text = json.dumps(dict(attributes), sort_keys=True, ensure_ascii=False)
        latest[(identifier.kind.value, identifier.value)] = text
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for (kind, value), text in latest.items():
        by_kind.setdefault(kind, []).append((value, text))

    added = changed = unchanged = 0
    with engine.begin() as conn:
        version = _next_version(conn)
        now = now_ms()
        for kind, items in by_kind.items():
            for chunk in _chunks(items, _CHUNK):
                found = _existing(conn, kind, [value for value, _ in chunk])
                fresh: list[dict[str, Any]] = []
                stale: list[dict[str, Any]] = []
                for value, text in chunk:
                    old = found.get(value)
                    if old is None:
                        fresh.append(
                            {
                                "kind": kind,
                                "value": value,
                                "attributes": text,
                                "deleted": 0,
                                "version": version,
                                "updated_at_ms": now,
                            }
                        )
                    elif old[1] != text or old[2]:
                        stale.append({"b_id": old[0], "b_attributes": text})
                    else:
                        unchanged += 1
                if fresh:
                    conn.execute(insert(_RECORDS), fresh)
                if stale:
                    conn.execute(
                        update(_RECORDS)
                        .where(_RECORDS.c.id == bindparam("b_id"))
                        .values(
                            attributes=bindparam("b_attributes"),
                            deleted=0,
                            version=version,
                            updated_at_ms=now,
                        ),
                        stale,
                    )
                added += len(fresh)
                changed += len(stale)
    return UpsertResult(added, changed, unchanged)


def delete_records(engine: Engine, identifiers: Iterable[Identifier]) -> int:
    """Mark records removed (tombstones); returns how many existed."""
    by_kind: dict[str, set[str]] = {}
    for identifier in identifiers:
        by_kind.setdefault(identifier.kind.value, set()).add(identifier.value)
    removed = 0
    with engine.begin() as conn:
        version = _next_version(conn)
        now = now_ms()
        for kind, values in by_kind.items():
            for chunk in _chunks(sorted(values), _CHUNK):
                result = conn.execute(
                    update(_RECORDS)
                    .where(
                        _RECORDS.c.kind == kind,
                        _RECORDS.c.value.in_(chunk),
                        _RECORDS.c.deleted == 0,
                    )
                    .values(deleted=1, version=version, updated_at_ms=now)
                )
                removed += result.rowcount
    return removed


def _paged(
    engine: Engine,
    conditions: list[Any],
    page: int,
    where: Mapping[str, str] | None = None,
    *,
    start: int = 0,
) -> Iterator[StoredRecord]:
    last = start
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(*STORED_COLUMNS)
                .where(_RECORDS.c.id > last, *conditions)
                .order_by(_RECORDS.c.id)
                .limit(page)
            ).all()
        if not rows:
            return
        for row in rows:
            record = StoredRecord(*row)
            if where:
                attributes = record.attribute_map()
                if any(attributes.get(k) != v for k, v in where.items()):
                    continue
            yield record
        last = rows[-1][0]


def live_records(
    engine: Engine,
    kind: IdentifierKind | None = None,
    where: Mapping[str, str] | None = None,
    *,
    page: int = 10_000,
) -> Iterator[StoredRecord]:
    """Records not deleted, optionally of one kind and with equal attribute values."""
    conditions: list[Any] = [_RECORDS.c.deleted == 0]
    if kind is not None:
        conditions.append(_RECORDS.c.kind == kind.value)
    return _paged(engine, conditions, page, where)


def current_version(engine: Engine) -> int:
    """The highest committed record version (0 for an empty table)."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.coalesce(func.max(_RECORDS.c.version), 0))) or 0)


def _changed(version: int, until: int | None) -> list[Any]:
    conditions: list[Any] = [_RECORDS.c.version > version]
    if until is not None:
        conditions.append(_RECORDS.c.version <= until)
    return conditions


def changed_since(
    engine: Engine,
    version: int,
    *,
    until: int | None = None,
    ids: tuple[int, int] | None = None,
    page: int = 10_000,
) -> Iterator[StoredRecord]:
    """Rows (deleted ones included) with `version < row.version <= until`, by id, paged.

    Pass `until=current_version(engine)` read beforehand and continue from it next time:
    a change committed during the scan then has a higher version and is not skipped.
    `ids` = (first, last) limits the scan to that range of record ids, both included.
    """
    conditions = _changed(version, until)
    if ids is not None:
        conditions.append(_RECORDS.c.id <= ids[1])
        return _paged(engine, conditions, page, start=ids[0] - 1)
    return _paged(engine, conditions, page)


def changed_id_ranges(
    engine: Engine, version: int, until: int, size: int
) -> Iterator[tuple[int, int, int]]:
    """(first id, last id, rows) ranges of `size` changed rows each (the last one fewer),
    for parallel work, sending back each range's bounds and count rather than every id.

    When the changed ids are one unbroken run (a full build over a table nothing was ever
    removed from), the ranges are cut by arithmetic; otherwise one query numbers the rows.
    """
    with engine.connect() as conn:
        low, high, count = conn.execute(
            select(func.min(_RECORDS.c.id), func.max(_RECORDS.c.id), func.count()).where(
                *_changed(version, until)
            )
        ).one()
        if not count:
            return
        ranges: Sequence[tuple[int, int, int]]
        if high - low + 1 == count:
            ranges = [
                (first, min(first + size - 1, high), min(size, high - first + 1))
                for first in range(low, high + 1, size)
            ]
        else:
            ranges = _numbered_ranges(conn, version, until, size)
    for first, last, rows in ranges:
        yield int(first), int(last), int(rows)


def _numbered_ranges(
    conn: Connection, version: int, until: int, size: int
) -> Sequence[tuple[int, int, int]]:
    changed = (
        select(
            _RECORDS.c.id,
            ((func.row_number().over(order_by=_RECORDS.c.id) - 1) // size).label("part"),
        )
        .where(*_changed(version, until))
        .subquery()
    )
    return conn.execute(
        select(func.min(changed.c.id), func.max(changed.c.id), func.count())
        .group_by(changed.c.part)
        .order_by(changed.c.part)
    ).all()  # type: ignore[return-value]


ChangedRow = tuple[int, str, str, str, int]
"""(id, kind, value, attributes JSON, deleted) of a record, as `changed_rows` reads it."""


def changed_rows(
    engine: Engine, version: int, until: int, first: int, last: int
) -> list[ChangedRow]:
    """The rows with `version < row.version <= until` and ids `first` to `last`, by id.

    The index build's read, on the driver's cursor as plain tuples: SQLAlchemy's row
    handling cost twice the read itself, per record, and a build reads every record.
    """
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"SELECT id, kind, value, attributes, deleted FROM {_RECORDS.name} "
        f"WHERE id >= {mark} AND id <= {mark} AND version > {mark} AND version <= {mark} "
        "ORDER BY id"
    )
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(sql, (first, last, version, until))
        return cast(list[ChangedRow], cursor.fetchall())
    finally:
        connection.close()


def count_changed(engine: Engine, version: int, until: int, *, live_only: bool = False) -> int:
    """How many rows `changed_since(engine, version, until=until)` yields (or live ones)."""
    conditions = _changed(version, until)
    if live_only:
        conditions.append(_RECORDS.c.deleted == 0)
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(_RECORDS).where(*conditions))
    return int(total or 0)


def sync_attribute(conn: Connection, kinds: Sequence[str], value: str, name: str, new: str) -> int:
    """Set attribute `name` of the live records of `value` that have it; returns how many.

    Called by an action in its own transaction (a freeze sets status to "frozen"), so the
    match label says what the account now is: the change bumps the record's version and
    the index picks it up before the next query answered. Records without the attribute,
    or with it already at `new`, are left alone.
    """
    rows = conn.execute(
        select(_RECORDS.c.id, _RECORDS.c.attributes).where(
            _RECORDS.c.kind.in_(list(kinds)), _RECORDS.c.value == value, _RECORDS.c.deleted == 0
        )
    ).all()
    stale = []
    for row_id, text in rows:
        attributes = json.loads(text)
        if name in attributes and attributes[name] != new:
            attributes[name] = new
            stale.append(
                {
                    "b_id": row_id,
                    "b_attributes": json.dumps(attributes, sort_keys=True, ensure_ascii=False),
                }
            )
    if not stale:
        return 0
    version = _next_version(conn)
    conn.execute(
        update(_RECORDS)
        .where(_RECORDS.c.id == bindparam("b_id"))
        .values(attributes=bindparam("b_attributes"), version=version, updated_at_ms=now_ms()),
        stale,
    )
    return len(stale)
