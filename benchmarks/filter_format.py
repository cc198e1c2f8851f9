"""Which compressed filter of a responder's tags is smallest and fastest here.

Candidates, all at the same false-positive rate per lookup where the format allows it:
sorted truncated tags, delta-coded, byte-plane shuffled and zstd-compressed (what
gateway.matching.filter ships); the same deltas Golomb-Rice coded (a Golomb-compressed
set, as OpenMined PSI and BIP 158 use); and pyfusefilter's binary fuse filter (Fuse16,
the tightest it offers: 2^-16 per lookup). Tags are random 8-byte strings, which is what
HKDF outputs look like. Prints size, build/encode time, decode time and lookup time.

    .venv/bin/python -m benchmarks.filter_format [--records 1000000]
"""

from __future__ import annotations

import argparse
import bisect
import os
import time
from collections.abc import Callable
from typing import TypeVar

from gateway.matching import filter as tag_filter

_T = TypeVar("_T")


def _timed(work: Callable[[], _T]) -> tuple[_T, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _rice_encode(values: list[int], k: int) -> bytes:
    """Golomb-Rice code of the gaps: unary quotient, k-bit remainder (one big int)."""
    previous = 0
    chunks: list[str] = []
    for value in values:
        gap = value - previous
        previous = value
        chunks.append("1" * (gap >> k) + "0" + format(gap & ((1 << k) - 1), f"0{k}b"))
    text = "".join(chunks)
    padded = text + "0" * (-len(text) % 8)
    return int(padded, 2).to_bytes(len(padded) // 8, "big")


def _rice_decode(data: bytes, count: int, k: int) -> list[int]:
    text = format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")
    values, at, previous = [], 0, 0
    for _ in range(count):
        stop = text.index("0", at)
        quotient = stop - at
        at = stop + 1
        previous += (quotient << k) | int(text[at : at + k], 2)
        at += k
        values.append(previous)
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1_000)
    args = parser.parse_args()
    n = args.records
    tags = [os.urandom(8) for _ in range(n)]
    probes = [os.urandom(8) for _ in range(args.lookups)]
    bits = tag_filter.bits_for(n)
    print(f"{n:,} tags; {bits}-bit truncation: false-positive rate {n / 2**bits:.2e} per lookup")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"{'format':<34}{'bytes':>11}{'bits/tag':>9}{'encode s':>10}{'decode s':>10}{'1k lookups ms':>15}"
    )

    encoded, enc_wall, _ = _timed(lambda: tag_filter.encode_snapshot(tags, bits))
    held, dec_wall, _ = _timed(lambda: tag_filter.TagFilter.decode(encoded))
    _, look_wall, _ = _timed(lambda: [held.might_hold(t) for t in probes])
    _row("sorted deltas, planes + zstd", len(encoded), n, enc_wall, dec_wall, look_wall)

    values = sorted(tag_filter.value_of(t, bits) for t in tags)
    k = bits - tag_filter.ceil_log2(n)
    rice, enc_wall, _ = _timed(lambda: _rice_encode(values, k))
    decoded, dec_wall, _ = _timed(lambda: _rice_decode(rice, n, k))
    assert decoded == values
    probe_values = [tag_filter.value_of(t, bits) for t in probes]

    def rice_lookups() -> list[bool]:
        out = []
        for v in probe_values:
            at = bisect.bisect_left(decoded, v)
            out.append(at < n and decoded[at] == v)
        return out

    _, look_wall, _ = _timed(rice_lookups)
    _row(f"Golomb-Rice (k={k}), pure Python", len(rice), n, enc_wall, dec_wall, look_wall)

    try:
        import pyfusefilter  # type: ignore[import-untyped]
    except ImportError:
        print("pyfusefilter not installed: pip install --no-deps pyfusefilter==1.3.0")
        return
    # pyfusefilter hashes str(key) with xxhash, which xxhash 4 refuses ("Strings must be
    # encoded"); tags are already uniform 64-bit values, so they are the keys' hashes.
    pyfusefilter.pyfusefilter.hash = lambda key: key
    keys = [int.from_bytes(t, "big") for t in tags]

    def build() -> bytes:
        fuse = pyfusefilter.Fuse16(n)
        fuse.populate(keys)
        return bytes(fuse.serialize())

    blob, enc_wall, _ = _timed(build)
    fuse, dec_wall, _ = _timed(lambda: pyfusefilter.Fuse16.deserialize(blob))
    probe_keys = [int.from_bytes(t, "big") for t in probes]
    _, look_wall, _ = _timed(lambda: [fuse.contains(x) for x in probe_keys])
    _row("binary fuse 16 (FP 2^-16!)", len(blob), n, enc_wall, dec_wall, look_wall)


def _row(name: str, size: int, n: int, enc: float, dec: float, look: float) -> None:
    print(f"{name:<34}{size:>11,}{size * 8 / n:>9.2f}{enc:>10.2f}{dec:>10.2f}{look * 1000:>15.2f}")


if __name__ == "__main__":
    main()
