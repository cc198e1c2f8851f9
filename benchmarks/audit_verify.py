"""Benchmark: `gateway audit verify` on a log of 100,000 (or more) entries.

Builds the log once through the broker's own `AuditLog` (batches of 1,000 entries, a
signed checkpoint after each batch, as a busy broker would) in a SQLite file under
var/bench/, then times whole-log verification: reading every row, recomputing every
leaf hash and the tree, checking every checkpoint's signature and root.

    python -m benchmarks.audit_verify [ENTRIES ...]     (default 100000)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from gateway.audit.log import Append, AuditLog
from gateway.audit.note import Ed25519Signer
from gateway.audit.source import count_entries, stored_checkpoints, stored_entries
from gateway.audit.verify import verify_log
from gateway.db import BrokerBase, make_engine

ORIGIN = "bench.gateway/gateway-audit"
SEED = bytes(range(32))
BATCH = 1000


def _batch(count: int) -> Callable[[Session, Append], None]:
    """`count` decision-like entries, numbered by their index in the log."""

    def work(_session: Session, append: Append) -> None:
        for _ in range(count):
            n = append.base + len(append.digests)
            append(
                {
                    "type": "decision",
                    "at_ms": 1_790_000_000_000 + n,
                    "message_id": f"{n:032x}",
                    "sender": "police-1",
                    "recipients": ["bank-a"],
                    "kind": "MATCH_QUERY",
                    "case_ref": f"C-{n % 997}",
                    "decision": "ALLOW",
                    "policy_ids": ["police-match-query"],
                    "payload_sha256": f"{n:064x}",
                }
            )

    return work


def build(path: Path, entries: int, signer: Ed25519Signer) -> float:
    """Append `entries` decision-like entries; returns seconds spent."""
    engine = make_engine(str(path))
    BrokerBase.metadata.create_all(engine)
    log = AuditLog(engine, signer, ORIGIN)
    started = time.perf_counter()
    while log.size < entries:  # each commit also signs a checkpoint
        log.run(_batch(min(BATCH, entries - log.size)))
    log.close()
    return time.perf_counter() - started


def run(entries: int) -> None:
    folder = Path("var/bench")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"audit-{entries}.db"
    signer = Ed25519Signer.from_seed(ORIGIN, SEED)
    engine = make_engine(str(path))
    BrokerBase.metadata.create_all(engine)
    if count_entries(engine) != entries:
        path.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        seconds = build(path, entries, signer)
        print(f"built {entries:,} entries in {seconds:.1f} s ({entries / seconds:,.0f}/s)")
        engine = make_engine(str(path))
    started = time.perf_counter()
    report = verify_log(
        stored_entries(engine), stored_checkpoints(engine), [signer.verifier()], ORIGIN
    )
    seconds = time.perf_counter() - started
    assert report.ok, report.problems[:3]
    print(
        f"audit verify: {report.entries:,} entries, {report.checkpoints:,} checkpoints "
        f"in {seconds:.2f} s ({report.entries / seconds:,.0f} entries/s)"
    )


def main(argv: list[str] | None = None) -> None:
    sizes = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [100_000]
    for entries in sizes:
        run(entries)


if __name__ == "__main__":
    main()
