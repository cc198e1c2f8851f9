"""Reading the broker's log as this node's auditors may: the regulator the whole log,
every other member the entries that concern it (policy actions AUDIT_READ and
AUDIT_READ_OWN). The broker client checks each page's checkpoint (signature, consistency
with those seen before) and each entry's inclusion proof before an entry gets here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.audit.note import NoteError
from gateway.audit.source import ProvenEntry
from nodes.broker_client import BrokerClient

WHOLE_LOG_ROLES = ("regulator",)


@dataclass(frozen=True)
class Logged:
    """One entry as read: its index, its fields, and its proof of inclusion."""

    index: int
    entry: dict[str, Any]
    proven: ProvenEntry


def reads_whole_log(node_role: str) -> bool:
    return node_role in WHOLE_LOG_ROLES


def _logged(proven: ProvenEntry) -> Logged:
    try:
        entry = json.loads(proven.leaf)
    except ValueError:
        entry = {}
    return Logged(proven.index, entry if isinstance(entry, dict) else {}, proven)


@dataclass(frozen=True)
class ShownCosigner:
    """A witness whose cosignature this node verified, named as the directory names it."""

    node_id: str
    agency: str
    cosigned_at: int


def cosigners_of(client: BrokerClient, note: str) -> list[ShownCosigner]:
    """Who cosigned `note`, checked under the directory's witness keys (none if one fails)."""
    directory = client.directory()
    try:
        found = client.cosigners(note)
    except NoteError:
        return []
    shown = []
    for c in found:
        member = directory.get(c.node_id)
        shown.append(ShownCosigner(c.node_id, member.agency if member else "", c.cosigned_at))
    return shown


def read_log(client: BrokerClient, node_role: str) -> list[Logged]:
    """Every entry this node may read, up to the broker's checkpoint when the read began."""
    whole = reads_whole_log(node_role)
    return [_logged(p) for p in client.read_audit_proven(whole_log=whole)]


def read_entry(client: BrokerClient, node_role: str, index: int) -> Logged | None:
    """Entry `index`, or None if there is none this node may read at that index.

    Proven under the newest checkpoint witnesses cosigned when that one covers it, so the
    page can show who cosigned: the latest checkpoint is newer than any cosignature.
    """
    whole = reads_whole_log(node_role)
    for proven in client.read_audit_proven(index, whole_log=whole, page=1, cosigned=True):
        return _logged(proven) if proven.index == index else None
    return None
