"""Which audit entries a reader gets: the whole log, or only the entries that concern it.

An entry concerns a member when it names the member (sender, recipients, peer) or, for
the entries that name only a message (its lifecycle, delivery and deadline events), when
that message was sent by or to the member. The broker's message table says who those
were; the entry itself stays as it was logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import select

from gateway.audit.log import AuditLog
from gateway.audit.source import nodes_of
from gateway.broker.models import MessageRow

PAGE = 1000


def _parties(audit: AuditLog, message_ids: Iterable[str]) -> dict[str, set[str]]:
    """Sender and recipients of each message, from the broker's message table."""
    wanted = sorted(set(message_ids))
    if not wanted:
        return {}
    with audit.session() as session:
        rows = session.execute(
            select(MessageRow.message_id, MessageRow.sender, MessageRow.recipients).where(
                MessageRow.message_id.in_(wanted)
            )
        ).all()
    parties: dict[str, set[str]] = {}
    for message_id, sender, recipients in rows:
        parties[message_id] = {sender, *json.loads(recipients)}
    return parties


def _own(audit: AuditLog, rows: list[tuple[int, bytes]], reader: str) -> list[tuple[int, bytes]]:
    """The rows whose entry concerns `reader`; an entry that is not a JSON object, none."""
    named: dict[int, set[str]] = {}
    by_message: dict[int, str] = {}
    for index, leaf in rows:
        try:
            entry = json.loads(leaf)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        named[index] = nodes_of(entry)
        if not named[index] and isinstance(entry.get("message_id"), str):
            by_message[index] = entry["message_id"]
    parties = _parties(audit, by_message.values())
    return [
        (index, leaf)
        for index, leaf in rows
        if reader in named.get(index, set())
        or reader in parties.get(by_message.get(index, ""), set())
    ]


def read_entries(
    audit: AuditLog,
    reader: str,
    *,
    whole_log: bool,
    start: int,
    end: int,
    limit: int,
    max_scan: int,
) -> tuple[list[tuple[int, bytes]], int]:
    """Up to `limit` entries from `start` below `end` for `reader`; and where to go on.

    Looks through at most `max_scan` entries, so one call stays short on a large log.
    """
    found: list[tuple[int, bytes]] = []
    next_start = start
    while next_start < end and len(found) < limit and next_start - start < max_scan:
        rows = audit.read(next_start, min(PAGE, end - next_start))
        if not rows:
            break
        wanted = rows if whole_log else _own(audit, rows, reader)
        for index, leaf in wanted[: limit - len(found)]:
            found.append((index, leaf))
        next_start = found[-1][0] + 1 if len(found) == limit else rows[-1][0] + 1
    return found, next_start
