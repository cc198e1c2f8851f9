"""The compressed tag filter: round trip, membership, deltas, and malformed bytes.

Expected membership comes from a plain Python set of truncated tags computed here from
the bytes (not from gateway.matching.filter), so a bug in the coding shows as a mismatch.
"""

from __future__ import annotations

import os

import pytest
import zstandard

from gateway.matching.filter import (
    FP_BITS,
    FilterError,
    TagFilter,
    bits_for,
    decode_values,
    encode_snapshot,
    encode_values,
)


def truncated(tag: bytes, bits: int) -> int:
    return int("".join(f"{b:08b}" for b in tag)[:bits], 2)


def test_round_trip_holds_exactly_the_truncated_tags() -> None:
    tags = [os.urandom(8) for _ in range(5_000)]
    bits = bits_for(len(tags))
    assert bits == 13 + FP_BITS
    held = TagFilter.decode(encode_snapshot(tags, bits))
    assert len(held) == len(tags)
    assert all(held.might_hold(t) for t in tags)
    expected = {truncated(t, bits) for t in tags}
    probes = [os.urandom(8) for _ in range(5_000)]
    assert [held.might_hold(p) for p in probes] == [truncated(p, bits) in expected for p in probes]


def test_a_tag_sharing_the_truncated_prefix_is_a_false_positive() -> None:
    tag = os.urandom(8)
    bits = 24
    twin = tag[:3] + bytes(b ^ 0xFF for b in tag[3:])
    held = TagFilter.decode(encode_snapshot([tag], bits))
    assert held.might_hold(twin)
    assert not held.might_hold(bytes([tag[0] ^ 0x80]) + tag[1:])


def test_size_is_close_to_the_information_bound() -> None:
    """n sorted random b-bit values need about n * (b - log2 n + 1.44) bits.

    Within 8%: byte planes cut the gaps at byte boundaries, so a plane that mixes the
    geometric and the uniform part of a gap costs up to a bit more than its entropy (at
    1M tags the gaps fall on a boundary and the overhead is 0.6%, benchmarks/README.md).
    """
    n = 20_000
    bits = bits_for(n)
    encoded = encode_snapshot([os.urandom(8) for _ in range(n)], bits)
    bound_bits = n * (bits - 14.29 + 1.443)
    assert len(encoded) * 8 < 1.08 * bound_bits


def test_duplicates_are_kept_and_removed_one_at_a_time() -> None:
    held = TagFilter(30, decode_values(encode_values([5, 5, 9], 30))[1])
    assert len(held) == 3
    once = held.apply(added=[], removed=[5])
    assert len(once) == 2
    assert once.might_hold((5 << 34).to_bytes(8, "big"))
    twice = once.apply(added=[7], removed=[5])
    assert not twice.might_hold((5 << 34).to_bytes(8, "big"))
    assert twice.might_hold((7 << 34).to_bytes(8, "big"))


def test_a_delta_gives_the_same_digest_as_a_fresh_snapshot() -> None:
    tags = [os.urandom(8) for _ in range(2_000)]
    bits = bits_for(len(tags))
    old = TagFilter.decode(encode_snapshot(tags, bits))
    new_tags = [os.urandom(8) for _ in range(20)]
    kept = tags[20:] + new_tags
    updated = old.apply(
        added=[truncated(t, bits) for t in new_tags],
        removed=[truncated(t, bits) for t in tags[:20]],
    )
    fresh = TagFilter.decode(encode_snapshot(kept, bits))
    assert updated.digest() == fresh.digest()
    assert updated.digest() != old.digest()
    assert TagFilter.decode(updated.encode()).digest() == fresh.digest()


def test_a_delta_removing_a_value_not_held_is_refused() -> None:
    held = TagFilter(30, decode_values(encode_values([1, 2], 30))[1])
    with pytest.raises(FilterError, match="does not hold"):
        held.apply(added=[], removed=[3])
    with pytest.raises(FilterError, match="does not fit"):
        held.apply(added=[1 << 30], removed=[])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than its header"),
        (b"XXXX" + bytes(10), "magic"),
        (encode_values([1, 2, 3], 30)[:-3], "does not decompress"),
        (encode_values([1], 30)[:14] + zstandard.compress(bytes(8)), "as many values"),
        (encode_values([1 << 40], 50)[:4] + b"\x1e" + encode_values([1 << 40], 50)[5:], "fit"),
    ],
)
def test_malformed_filters_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        decode_values(data)
