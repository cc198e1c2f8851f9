"""The police watchlist as checkers see it: advice levels, entries, and the answer to a check.

A watchlist entry is an identifier the police (or an anti-fraud centre) list with a
reason code, an advice level and an optional expiry. The entries are indexed exactly like
a responder's records (`gateway.matching`): the label a checker can open holds the
reason, the advice and the expiry, nothing else. This package holds what both sides
agree on; the police node's store and the checker's client live in `nodes.watchlist`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "LABEL_FIELDS",
    "Advice",
    "CheckResult",
    "EntryError",
    "Listed",
    "NotListed",
    "check_reason",
    "result_of",
]

LABEL_FIELDS: Final = ("advice", "expires_ms", "reason")
"""What a watchlist label holds (sorted, as the index parameters keep them)."""

_REASON: Final = re.compile(r"[A-Z][A-Z0-9_]{1,31}")


class EntryError(ValueError):
    """A watchlist entry's field is not valid; the message never holds the identifier."""


class Advice(StrEnum):
    """What the police advise a bank or carrier to do with a listed identifier."""

    REFUSE = "refuse"
    ENHANCED_CHECKS = "enhanced_checks"
    WARN_CUSTOMER = "warn_customer"

    @classmethod
    def parse(cls, text: str) -> Advice:
        key = text.strip().lower().replace("-", "_").replace(" ", "_")
        try:
            return cls(key)
        except ValueError:
            expected = ", ".join(a.value for a in cls)
            raise EntryError(f"unknown advice level; expected one of: {expected}") from None


def check_reason(text: str) -> str:
    """A reason code: 2 to 32 characters, upper-case letters, digits and _ (e.g. MULE_ACCOUNT)."""
    code = text.strip()
    if not _REASON.fullmatch(code):
        raise EntryError(
            "reason code must be 2 to 32 upper-case letters, digits or _, starting with a "
            "letter (e.g. MULE_ACCOUNT)"
        )
    return code


@dataclass(frozen=True)
class Listed:
    """The identifier is on the watchlist: why, and what the police advise."""

    reason: str
    advice: Advice
    expires_ms: int | None = None

    def __str__(self) -> str:
        return f"listed (reason {self.reason}, advice {self.advice.value})"


@dataclass(frozen=True)
class NotListed:
    """The identifier is not on the watchlist (or its entry has expired)."""

    def __str__(self) -> str:
        return "not listed"


CheckResult = Listed | NotListed


def result_of(labels: list[dict[str, str]], now_ms: int) -> CheckResult:
    """The answer for one identifier from the labels that matched it (usually none or one).

    An entry past its expiry counts as not listed even before the police node's sweep has
    removed it from the index; of several live entries the strictest advice wins.
    """
    live: list[Listed] = []
    for fields in labels:
        expires = int(fields.get("expires_ms") or 0) or None
        if expires is not None and expires <= now_ms:
            continue
        try:
            advice = Advice(fields.get("advice", ""))
        except ValueError:
            advice = Advice.REFUSE  # a level this node does not know: the safe side
        live.append(Listed(fields.get("reason", ""), advice, expires))
    if not live:
        return NotListed()
    order = list(Advice)
    return min(live, key=lambda entry: order.index(entry.advice))
