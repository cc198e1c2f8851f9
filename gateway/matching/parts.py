"""A batch split into consecutive parts, each blinded, evaluated and proven on its own.

Both query modes split their batches the same way so that querier and responder can
use every core: the OPRF calls are ctypes calls into libsodium, which release the GIL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from gateway.crypto.blinded import BlindedBatch, GroupError, OprfClient, VerifyError
from gateway.matching.errors import KeyMismatch, ResponseRejected
from gateway.matching.wire import MAX_PARTS

__all__ = ["each_part", "finalize_parts", "split_parts"]

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


def finalize_parts(
    client: OprfClient,
    batches: Sequence[BlindedBatch],
    bounds: Sequence[tuple[int, int]],
    evaluated: Sequence[bytes],
    proofs: Sequence[bytes],
) -> list[bytes]:
    """Each part's evaluations checked against its batch proof and unblinded, in item order.

    A proof that does not verify means another key answered (`KeyMismatch`); an element
    off the group is a broken answer (`ResponseRejected`). Counts and lengths are the
    caller's to check first: the two query modes frame them differently.
    """

    def finalize(part: int) -> list[bytes]:
        start, end = bounds[part]
        return client.finalize(batches[part], list(evaluated[start:end]), proofs[part])

    try:
        outputs = each_part(finalize, list(range(len(bounds))))
    except VerifyError:
        raise KeyMismatch(
            "the evaluation proof does not verify under the responder's published OPRF key"
        ) from None
    except GroupError:
        raise ResponseRejected("an evaluated element is not a valid ristretto255 element") from None
    return [y for part in outputs for y in part]
