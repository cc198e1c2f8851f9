"""The dashboard's figures: messages per agency and kind per day, refusals by policy,
action deadlines met and missed, all counted from the audit entries read.

A message is a broker decision entry. An action request's deadline is missed when the
broker logged it overdue (a "deadline" entry), met when the recipient's answer moved it
on (a "lifecycle" entry out of requested or delivered) without that, and open otherwise.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.console.compliance.reading import Logged
from gateway.kinds import ACTIONS

MAX_DAYS = 14
ANSWERED_FROM = ("requested", "delivered")


@dataclass(frozen=True)
class Deadlines:
    kind: str
    met: int
    missed: int
    open: int


@dataclass(frozen=True)
class Dashboard:
    days: list[str]
    """The last days with messages (at most MAX_DAYS), oldest first, in the node's zone."""
    by_agency: dict[str, list[int]]
    by_kind: dict[str, list[int]]
    refusals: list[tuple[str, int]]
    deadlines: list[Deadlines]
    messages: int


def _day(ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).strftime("%Y-%m-%d")


def _series(
    counts: Mapping[tuple[str, str], int], names: set[str], days: list[str]
) -> dict[str, list[int]]:
    return {name: [counts.get((name, d), 0) for d in days] for name in sorted(names)}


def build(logged: list[Logged], agencies: Mapping[str, str], time_zone: str) -> Dashboard:
    """`agencies` maps node ids to agency names (from the signed directory)."""
    zone = ZoneInfo(time_zone)
    decisions = [item.entry for item in logged if item.entry.get("type") == "decision"]
    days = sorted({_day(int(e.get("at_ms", 0)), zone) for e in decisions})[-MAX_DAYS:]
    per_agency: Counter[tuple[str, str]] = Counter()
    per_kind: Counter[tuple[str, str]] = Counter()
    for e in decisions:
        day = _day(int(e.get("at_ms", 0)), zone)
        if day in days:
            sender = str(e.get("sender", ""))
            per_agency[(agencies.get(sender, sender), day)] += 1
            per_kind[(str(e.get("kind", "")), day)] += 1
    return Dashboard(
        days=days,
        by_agency=_series(per_agency, {a for a, _ in per_agency}, days),
        by_kind=_series(per_kind, {k for k, _ in per_kind}, days),
        refusals=_refusals(logged),
        deadlines=_deadlines(logged),
        messages=len(decisions),
    )


def _refusals(logged: list[Logged]) -> list[tuple[str, int]]:
    """DENY decisions by the policy (or broker check) that refused them, most first."""
    counts: Counter[str] = Counter()
    for item in logged:
        e = item.entry
        if e.get("type") == "rejection":
            counts[f"check: {e.get('check', '')}"] += 1
        elif e.get("decision") == "DENY":
            ids = e.get("policy_ids") or []
            for policy in ids if isinstance(ids, list) and ids else ["(no policy permits it)"]:
                counts[str(policy)] += 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _deadlines(logged: list[Logged]) -> list[Deadlines]:
    requests: dict[str, str] = {}
    missed: set[str] = set()
    answered: set[str] = set()
    for item in logged:
        e = item.entry
        message_id = str(e.get("message_id", ""))
        kind = e.get("type")
        if kind == "decision" and e.get("decision") == "ALLOW" and e.get("kind") in ACTIONS:
            requests[message_id] = str(e["kind"])
        elif kind == "deadline" and e.get("state") == "overdue":
            missed.add(message_id)
        elif kind == "lifecycle" and e.get("from") in ANSWERED_FROM:
            answered.add(message_id)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for message_id, kind in requests.items():
        slot = 1 if message_id in missed else 0 if message_id in answered else 2
        tally[kind][slot] += 1
    return [Deadlines(k, *tally[k]) for k in sorted(tally)]
