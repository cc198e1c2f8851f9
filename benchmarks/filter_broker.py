"""Filter mode through the broker, for benchmarks/targeted_query.py --mode filter.

The same consortium as bucket mode's (benchmarks.targeted_query.serving: bank-a serving
the bench database under the bench key): police-1 syncs bank-a's filter with
FILTER_SYNC (a snapshot, chunked), then queries with FILTER_QUERY and LABEL_REQUEST
(nodes.filter_police), each run timed with the CPU time of every process.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from gateway.identifiers import normalise
from gateway.localnet import Consortium
from nodes.filter_police import filter_query_responders, sync_filter
from nodes.runtime import open_node

__all__ = ["QUOTA_TOML", "run"]

QUOTA_TOML = "\nfilter_eval_per_hour = 1000000000\nfilter_eval_per_day = 1000000000\n"
"""The bank's evaluation quota for the bench: charged for real, never reached."""


def run(
    consortium: Consortium,
    pids: dict[str, int],
    cpu_seconds: Callable[[int], float],
    raw: list[tuple[str, str]],
    expected: set[str],
    repeat: int,
) -> dict[str, object]:
    """Sync and query figures: sync wall and CPU time, and each online run's."""
    ctx = open_node(consortium.node_config("police-1"))
    try:

        def cpu() -> dict[str, float]:
            own = {"police": time.process_time()}
            return own | {name: cpu_seconds(pid) for name, pid in pids.items()}

        before, started = cpu(), time.perf_counter()
        synced = sync_filter(ctx, "bank-a")
        sync_s = time.perf_counter() - started
        sync_cpu = {k: v - before[k] for k, v in cpu().items()}
        runs = []
        for _ in range(repeat):
            before, started = cpu(), time.perf_counter()
            identifiers = [normalise(kind, value) for kind, value in raw]
            [outcome] = filter_query_responders(
                ctx, identifiers, ["bank-a"], case_ref="BENCH-1", legal_basis="benchmark"
            )
            total = time.perf_counter() - started
            assert outcome.ok, outcome.error
            got = {identifiers[m.position].value for m in outcome.matches}
            assert got == expected, f"{len(got)} matches, expected {len(expected)}"
            runs.append({"total": total, **{k: v - before[k] for k, v in cpu().items()}})
    finally:
        ctx.client.close()
    best = min(runs, key=lambda r: r["total"])
    return {
        "sync_s": sync_s,
        "sync_cpu": sync_cpu,
        "tags": synced.tags,
        "chunks": synced.chunks,
        "best": best,
        "median": statistics.median(r["total"] for r in runs),
        "runs": len(runs),
    }


def report(figures: dict[str, object]) -> None:
    sync_cpu = figures["sync_cpu"]
    best = figures["best"]
    assert isinstance(sync_cpu, dict) and isinstance(best, dict)
    print(
        f"filter mode through the broker: sync of {figures['tags']} tags in "
        f"{figures['chunks']} chunks {figures['sync_s']:.2f} s (CPU "
        + ", ".join(f"{k} {v:.2f} s" for k, v in sync_cpu.items())
        + ")"
    )
    print(
        f"  online, both rounds: best {best['total']:.3f} s, median {figures['median']:.3f} s "
        f"over {figures['runs']} runs (CPU "
        + ", ".join(f"{k} {v:.3f} s" for k, v in best.items() if k != "total")
        + ")"
    )
