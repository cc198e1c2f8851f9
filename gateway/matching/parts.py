"""A batch split into consecutive parts, each blinded, evaluated and proven on its own.

Both query modes split their batches the same way so that querier and responder can
use every core: the OPRF calls are ctypes calls into libsodium, which release the GIL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gateway.matching.wire import MAX_PARTS

__all__ = ["each_part", "split_parts"]

_T = TypeVar("_T")
_R = TypeVar("_R")


def split_parts(count: int, parts: int) -> list[tuple[int, int]]:
    """`parts` consecutive (start, end) runs covering range(count), sizes within one."""
    parts = max(1, min(parts, count, MAX_PARTS))
    size, extra = divmod(count, parts)
    bounds, start = [], 0
    for part in range(parts):
        end = start + size + (1 if part < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


def each_part(
    work: Callable[[_T], _R], items: Sequence[_T], thread_name: str = "match-query"
) -> list[_R]:
    """`work` over items, in threads when there is more than one."""
    if len(items) == 1:
        return [work(items[0])]
    with ThreadPoolExecutor(len(items), thread_name_prefix=thread_name) as pool:
        return list(pool.map(work, items))
