"""A compressed filter of a responder's tags, which the police test locally.

The filter is the multiset of the responder's tags truncated to `bits` bits, sorted,
delta-coded, split into byte planes and compressed with zstd: the low planes of the
gaps are random and cost their full width, the high planes are nearly constant and
compress to almost nothing, so the result is within a few percent of a Golomb-coded
set (benchmarks/filter_format.py measures both) while encoding and decoding at C speed.
`bits` is the record count's bit length plus FP_BITS, so a lookup of a tag the
responder does not hold hits a truncated tag by chance with probability below
2^-FP_BITS; every such false positive is caught in the label round, where the tag is
absent or the label does not open (gateway.matching.filter_query).

A tag is only computable from F_k(x), so the filter says nothing about an identifier
without an OPRF evaluation by the responder, which its quota bounds.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Final

import zstandard

from gateway.matching.derive import TAG_LENGTH

__all__ = [
    "FP_BITS",
    "MAX_COUNT",
    "FilterError",
    "TagFilter",
    "bits_for",
    "ceil_log2",
    "decode_values",
    "encode_snapshot",
    "encode_values",
    "value_of",
]

FP_BITS: Final = 20
"""False-positive rate below 2^-20 per lookup: about one wasted label lookup per 1,000
queries of 1,000 identifiers."""
MAX_BITS: Final = 8 * TAG_LENGTH
_MAGIC: Final = b"GTF1"
_HEADER: Final = struct.Struct(">4sBBQ")
"""magic, bits, bytes per gap, count."""
_LEVEL: Final = 9
_DIGEST_DST: Final = b"gateway/match/v1/filter\x00"
MAX_COUNT: Final = 1 << 28
"""268 million tags (2 GiB of gaps at most): above the largest customer base in sight."""


class FilterError(ValueError):
    """Bytes that are not a well-formed filter; says what is wrong, never any value."""


def ceil_log2(count: int) -> int:
    return max(0, (count - 1).bit_length())


def bits_for(count: int) -> int:
    """Truncation width that keeps the false-positive rate below 2^-FP_BITS for `count` tags."""
    return min(MAX_BITS, ceil_log2(max(count, 1)) + FP_BITS)


def value_of(tag: bytes, bits: int) -> int:
    """The first `bits` bits of a tag, as an integer."""
    if len(tag) != TAG_LENGTH:
        raise FilterError(f"a tag must be {TAG_LENGTH} bytes")
    return int.from_bytes(tag, "big") >> (MAX_BITS - bits)


def _little_endian(values: array[int]) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def encode_values(values: Sequence[int], bits: int) -> bytes:
    """Header || zstd(byte planes of the gaps of the sorted `values`)."""
    if not 1 <= bits <= MAX_BITS:
        raise FilterError(f"filter bits must be 1 to {MAX_BITS}")
    ordered = sorted(values)
    if ordered and (ordered[0] < 0 or ordered[-1] >> bits):
        raise FilterError(f"a filter value does not fit {bits} bits")
    gaps = [b - a for a, b in zip([0, *ordered], ordered, strict=False)]
    width = 4 if not gaps or max(gaps) < 1 << 32 else 8
    raw = _little_endian(array("I" if width == 4 else "Q", gaps))
    planes = b"".join(raw[plane::width] for plane in range(width))
    body = zstandard.ZstdCompressor(level=_LEVEL).compress(planes)
    return _HEADER.pack(_MAGIC, bits, width, len(ordered)) + body


def decode_values(data: bytes, max_count: int = MAX_COUNT) -> tuple[int, array[int]]:
    """(bits, sorted values as array('Q')) of an encode_values output; FilterError if malformed.

    A header claiming more than `max_count` values is refused before anything is
    allocated for them (the body is decompressed into 4 or 8 bytes per value).
    """
    if len(data) < _HEADER.size:
        raise FilterError("the filter is shorter than its header")
    magic, bits, width, count = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise FilterError("the filter does not start with the filter format's magic")
    if not 1 <= bits <= MAX_BITS or width not in (4, 8):
        raise FilterError("the filter's header is out of range")
    if count > max_count:
        raise FilterError(f"the filter claims {count} values, more than the {max_count} allowed")
    try:
        planes = zstandard.ZstdDecompressor().decompress(
            data[_HEADER.size :], max_output_size=width * count
        )
    except zstandard.ZstdError:
        raise FilterError("the filter's body does not decompress") from None
    if len(planes) != width * count:
        raise FilterError("the filter's body does not hold as many values as its header says")
    raw = bytearray(width * count)
    for plane in range(width):
        raw[plane::width] = planes[plane * count : (plane + 1) * count]
    gaps = array("I" if width == 4 else "Q")
    gaps.frombytes(bytes(raw))
    if sys.byteorder == "big":
        gaps.byteswap()
    values = array("Q", accumulate(gaps))
    if count and values[-1] >> bits:
        raise FilterError(f"a filter value does not fit {bits} bits")
    return bits, values


def encode_snapshot(tags: Iterable[bytes], bits: int) -> bytes:
    """The encoded filter of `tags` (8-byte tags as read from the index table)."""
    return encode_values([value_of(tag, bits) for tag in tags], bits)


class TagFilter:
    """The police's decoded copy of one responder's filter: a sorted array of truncated tags."""

    def __init__(self, bits: int, values: array[int]) -> None:
        self.bits = bits
        self._values = values

    @classmethod
    def decode(cls, data: bytes, max_count: int = MAX_COUNT) -> TagFilter:
        return cls(*decode_values(data, max_count))

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"TagFilter(<{len(self)} values, {self.bits} bits>)"

    def might_hold(self, tag: bytes) -> bool:
        """True if the responder may hold `tag` (false positives below 2^-FP_BITS)."""
        value = value_of(tag, self.bits)
        low, high = 0, len(self._values)
        while low < high:
            middle = (low + high) // 2
            if self._values[middle] < value:
                low = middle + 1
            else:
                high = middle
        return low < len(self._values) and self._values[low] == value

    def digest(self) -> bytes:
        """SHA-256 of the filter's content, independent of how it was encoded or reached."""
        header = struct.pack(">BQ", self.bits, len(self._values))
        return hashlib.sha256(_DIGEST_DST + header + _little_endian(self._values)).digest()

    def encode(self) -> bytes:
        return encode_values(self._values, self.bits)

    def apply(self, added: Sequence[int], removed: Sequence[int]) -> TagFilter:
        """A new filter with `removed` values taken out (one occurrence each) and `added` put in.

        FilterError if a removed value is not held: the delta was made for another filter.
        """
        if any(value < 0 or value >> self.bits for value in added):
            raise FilterError(f"an added value does not fit {self.bits} bits")
        values: Iterable[int] = self._values
        if removed:
            gone = Counter(removed)
            kept = []
            for value in self._values:
                if gone.get(value):
                    gone[value] -= 1
                else:
                    kept.append(value)
            if any(gone.values()):
                raise FilterError("the delta removes a value the filter does not hold")
            values = kept
        return TagFilter(self.bits, array("Q", sorted([*values, *added])))
