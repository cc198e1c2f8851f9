"""Match index build rate (records/s) against OpenMined PSI's server setup, same records.

Run: ``.venv/bin/python -m benchmarks.index_build [--records N] [--workers W]``

Loads N synthetic bank records (cards and accounts, default 100,000) into a fresh node
database under var/bench/, then times:

- ours: `update_index` over all cores (one OPRF evaluation, HKDF, ChaCha20-Poly1305
  label and one row write per record), then the cost per record of each step on one
  core, to show where the time goes;
- OpenMined PSI 2.0.6: `CreateSetupMessage` over the same canonical inputs (its server's
  per-record work: hash to P-256 and one exponentiation), RAW and GCS (fpr 1e-9).

Target: >= 25,000 records/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks import machine
from gateway.crypto.blinded import OprfServer
from gateway.db import NodeBase, make_engine
from gateway.identifiers import Identifier, normalise
from gateway.matching.derive import bucket_of, seal_label, tag_and_key
from gateway.matching.index_store import write_entries
from gateway.synthetic import generate_bank_records
from nodes.index_build import update_index
from nodes.records import upsert_records

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "var" / "bench"
LABEL_FIELDS = ("record_id", "status", "opened_on")
TARGET = 25_000


def records(count: int, seed: int = 7) -> list[tuple[Identifier, dict[str, str]]]:
    rows = generate_bank_records(count, seed)
    return [(normalise(r.kind, r.value), r.attributes) for r in rows]


def fresh_db(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return str(path)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ours(loaded: list[tuple[Identifier, dict[str, str]]], workers: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a full build over `workers` processes."""
    BENCH.mkdir(parents=True, exist_ok=True)
    engine = make_engine(fresh_db(BENCH / f"index-build-{len(loaded)}.db"))
    NodeBase.metadata.create_all(engine)
    upsert_records(engine, loaded)
    key = OprfServer.generate().private_key_bytes()
    with Progress(
        TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        task = bar.add_task("index", total=len(loaded))
        cpu = cpu_seconds()
        started = time.perf_counter()
        update_index(
            engine,
            key,
            bucket_bits=16,
            label_fields=LABEL_FIELDS,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        return time.perf_counter() - started, cpu_seconds() - cpu


def breakdown(
    loaded: list[tuple[Identifier, dict[str, str]]], sample: int = 4000
) -> dict[str, float]:
    """Microseconds per record of each step, on one core, over `sample` records."""
    part = loaded[:sample]
    server = OprfServer.generate()
    inputs = [identifier.canonical_input() for identifier, _ in part]
    started = time.perf_counter()
    outputs = server.evaluate(inputs)
    oprf = time.perf_counter() - started
    started = time.perf_counter()
    entries = []
    for n, ((_, attrs), x, y) in enumerate(zip(part, inputs, outputs, strict=True)):
        tag, key = tag_and_key(y)
        label = {k: attrs[k] for k in LABEL_FIELDS if k in attrs} | {"handle": str(n)}
        entries.append((bucket_of(x, 16), n, tag, seal_label(key, label)))
    derive = time.perf_counter() - started
    engine = make_engine(fresh_db(BENCH / "index-breakdown.db"))
    NodeBase.metadata.create_all(engine)
    started = time.perf_counter()
    write_entries(engine, entries, [], replace=False)
    write = time.perf_counter() - started
    per = 1e6 / sample
    return {
        "OPRF Evaluate (hash to group, scalar mult, finalize)": oprf * per,
        "bucket, HKDF tag/key, JSON, ChaCha20-Poly1305 label": derive * per,
        "index row insert (SQLite)": write * per,
    }


def openmined(loaded: list[tuple[Identifier, dict[str, str]]], structure: str) -> float | None:
    try:
        import private_set_intersection.python as psi
    except ImportError:
        return None
    items = [identifier.canonical_input().decode() for identifier, _ in loaded]
    server = psi.server.CreateWithNewKey(True)
    kind = psi.DataStructure.RAW if structure == "RAW" else psi.DataStructure.GCS
    started = time.perf_counter()
    server.CreateSetupMessage(1e-9, 1000, items, kind)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--skip-openmined", action="store_true")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    workers = args.workers or cores
    print(f"index build: {args.records} bank records, {workers} workers on {cores} cores")
    print(machine.describe())
    loaded = records(args.records)
    load = os.getloadavg()[0]
    seconds, cpu = ours(loaded, workers)
    rate = args.records / seconds
    results = {"ours": rate}
    print(f"{'implementation':<44} {'seconds':>8} {'records/s':>10}")
    print(
        f"{'ours, update_index (' + str(workers) + ' workers)':<44} {seconds:>8.2f} {rate:>10.0f}"
    )
    if not args.skip_openmined:
        for structure in ("RAW", "GCS"):
            theirs = openmined(loaded, structure)
            if theirs is None:
                print("OpenMined PSI is not installed (make bench installs it)")
                break
            results[f"openmined_{structure}"] = args.records / theirs
            name = f"OpenMined PSI setup ({structure}, 1 core)"
            print(f"{name:<44} {theirs:>8.2f} {args.records / theirs:>10.0f}")
    print(
        f"ours: {cpu:.1f} CPU-seconds in all, {args.records / cpu:.0f} records per CPU-second "
        f"(so ~{cores * args.records / cpu:.0f} records/s with {cores} idle cores); "
        f"load average {load:.1f} at start"
    )
    verdict = "met" if rate >= TARGET else "MISSED"
    print(f"target {TARGET} records/s: {verdict} ({rate:.0f} records/s)")
    print("where the time goes, us per record on one core:")
    for step, micros in breakdown(loaded).items():
        print(f"  {step:<54} {micros:>7.1f}")
    print(json.dumps({k: round(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
