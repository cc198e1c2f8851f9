"""Comparing account holders' names as a bank clerk would.

A stop-payment names the account holder; the bank acts only if that name is the one on
its record. Police and banks type names differently: full-width or half-width forms,
spaces, the interpunct of minority names, traditional or simplified characters. Two
names are the same holder's when their canonical forms are equal: Unicode NFKC (width),
no spaces or interpuncts, case folded, and traditional characters mapped to simplified
by OpenCC's `t2s` tables.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import cache

import opencc

_SEPARATORS = frozenset("\u00b7\u30fb\u2022\u2027\u0387.-")
"""Interpuncts and dots written between the parts of a name (e.g. 买买提·艾力)."""
_lock = threading.Lock()


@cache
def _to_simplified() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def canonical_name(name: str) -> str:
    """The form two spellings of one holder's name share."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    kept = "".join(ch for ch in folded if not ch.isspace() and ch not in _SEPARATORS)
    with _lock:
        return str(_to_simplified().convert(kept))


def same_holder(stated: str, on_record: str) -> bool:
    """Whether `stated` names the holder `on_record`; an empty name matches nothing."""
    stated_form, record_form = canonical_name(stated), canonical_name(on_record)
    return bool(stated_form) and stated_form == record_form
