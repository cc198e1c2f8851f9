"""Region codes (GB/T 2260) of police jurisdictions, and which police node answers for one.

A code has six digits: province (2), prefecture (2), county (2), e.g. ``310000``
Shanghai, ``310101`` its Huangpu district. A police node's jurisdiction lists codes at
any level; an alert naming a county goes to the node listing that county, else its
prefecture (``3101 00``), else its province (``31 0000``). Two active police nodes may
not list the same code, so the answer is always one node or none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REGION_CODE = re.compile(r"[1-9][0-9]{5}")


class UnknownRegion(ValueError):
    """No police node's jurisdiction covers the region named."""


def check_region(code: str) -> str:
    """`code` if it is a well-formed six-digit GB/T 2260 code; ValueError naming it else."""
    if not isinstance(code, str) or not REGION_CODE.fullmatch(code):
        raise ValueError(f"region {code!r} is not a six-digit GB/T 2260 code (e.g. 310000)")
    return code


def enclosing(code: str) -> tuple[str, ...]:
    """The code itself, then its prefecture and province, most specific first, no repeats."""
    check_region(code)
    levels = (code, code[:4] + "00", code[:2] + "0000")
    return tuple(dict.fromkeys(levels))


def responsible(code: str, jurisdictions: Iterable[tuple[str, Iterable[str]]]) -> str:
    """The node id whose jurisdiction covers `code` most specifically.

    `jurisdictions` pairs each police node id with its region codes. UnknownRegion if
    none covers it.
    """
    claimed: dict[str, str] = {}
    for node_id, codes in jurisdictions:
        for region in codes:
            claimed.setdefault(region, node_id)
    for level in enclosing(code):
        if level in claimed:
            return claimed[level]
    raise UnknownRegion(f"region {code}: no police node's jurisdiction covers it")
