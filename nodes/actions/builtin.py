"""Filling the built-in action tables (`accounts`, `numbers`) from an ingested CSV.

A node without its own table (`adapter_table` empty) acts on the built-in one; without
this, a carrier could match a number it had ingested and then reject the suspension
as "unknown number". `gateway node ingest` therefore loads the same rows here: the
identifier, its `status` column (default active) and, for a bank, `balance_minor` and
`holder_name` (which a stop-payment's stated name is checked against).

A row already present keeps its status while a freeze or suspension the gateway placed
is active (`gateway_holds`): only the action's release or expiry lifts it, never a
re-export of the book. Its balance is
updated when the file gives one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import cast

from sqlalchemy import Engine, Table, bindparam, insert, select, update

from gateway.ingest_csv import Record, RejectedRow
from nodes.actions.accounts import BUILTIN_ACCOUNTS
from nodes.actions.holds import ACTIVE, HoldRow
from nodes.actions.numbers import BUILTIN_NUMBERS
from nodes.actions.orders import IDENTIFIER_KINDS

_CHUNK = 2_000
STATUS_WIDTH = 16
"""The built-in tables' status column is VARCHAR(16)."""
HOLDER_WIDTH = 128
"""The built-in accounts table's holder_name column is VARCHAR(128)."""
_HOLDS = cast(Table, HoldRow.__table__)
_DEFAULTS: dict[str, dict[str, object]] = {"bank": {"balance_minor": 0}, "carrier": {}}
Rows = dict[str, dict[str, object]]
"""Identifier value -> the built-in table's row for it."""


@dataclass
class BuiltinLoad:
    """What a load did to the built-in table."""

    table: str
    added: int = 0
    updated: int = 0
    held: dict[str, str] = field(default_factory=dict)
    """Identifier value -> status the gateway holds it at (frozen, suspended)."""

    def __repr__(self) -> str:
        return f"BuiltinLoad({self.table}, added={self.added}, updated={self.updated})"


def _row(role: str, record: Record) -> dict[str, object]:
    """The table row of one record; ValueError names the column, never the value."""
    status = record.attributes.get("status", "").strip().lower() or "active"
    if len(status) > STATUS_WIDTH:
        raise ValueError(f"status longer than {STATUS_WIDTH} characters")
    if role == "carrier":
        return {"number": record.identifier.value, "status": status}
    row: dict[str, object] = {"account_no": record.identifier.value, "status": status}
    holder = record.attributes.get("holder_name", "").strip()
    if len(holder) > HOLDER_WIDTH:
        raise ValueError(f"holder_name longer than {HOLDER_WIDTH} characters")
    if holder:
        row["holder_name"] = holder
    balance = record.attributes.get("balance_minor", "").strip()
    if balance:
        try:
            row["balance_minor"] = int(balance)
        except ValueError:
            raise ValueError("balance_minor is not a whole number of minor units") from None
    return row


def builtin_rows(role: str, records: Sequence[Record]) -> tuple[Rows, list[RejectedRow]]:
    """The rows `records` give the role's built-in table, and the rows that cannot be used.

    Run before writing anything, so that `ingest --strict` refuses a file with a bad
    balance as it refuses one with a bad identifier.
    """
    rows: Rows = {}
    rejected: list[RejectedRow] = []
    kinds = IDENTIFIER_KINDS[role]
    for record in records:
        if record.identifier.kind not in kinds:
            continue
        try:
            rows[record.identifier.value] = _row(role, record)
        except ValueError as exc:
            rejected.append(RejectedRow(record.line, str(exc)))
    return rows, rejected


def load_builtin(engine: Engine, role: str, rows: Rows) -> BuiltinLoad:
    """Insert or update the role's built-in table with `rows`, in one transaction."""
    table: Table = BUILTIN_ACCOUNTS if role == "bank" else BUILTIN_NUMBERS
    key = table.c.account_no if role == "bank" else table.c.number
    result = BuiltinLoad(table.name)
    with engine.begin() as conn:
        values = iter(rows)
        while chunk := list(islice(values, _CHUNK)):
            found = dict(conn.execute(select(key, table.c.status).where(key.in_(chunk))).all())
            held = set(
                conn.scalars(
                    select(_HOLDS.c.identifier).where(
                        _HOLDS.c.identifier.in_(chunk),
                        _HOLDS.c.state == ACTIVE,
                        _HOLDS.c.freezes == 1,
                    )
                )
            )
            fresh = [{**_DEFAULTS[role], **rows[v]} for v in chunk if v not in found]
            stale = []
            for value in (v for v in chunk if v in found):
                row = {f"b_{k}": v for k, v in rows[value].items()}
                if value in held:  # a freeze or suspension the gateway placed and still holds
                    row["b_status"] = found[value]
                    result.held[value] = found[value]
                stale.append(row)
            if fresh:
                conn.execute(insert(table), fresh)
            for columns in {tuple(sorted(r)) for r in stale}:  # rows with and without balance
                same = [r for r in stale if tuple(sorted(r)) == columns]
                conn.execute(
                    update(table)
                    .where(key == bindparam(f"b_{key.name}"))
                    .values({c[2:]: bindparam(c) for c in columns if c != f"b_{key.name}"}),
                    same,
                )
            result.added += len(fresh)
            result.updated += len(stale)
    return result
