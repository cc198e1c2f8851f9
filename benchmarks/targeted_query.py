"""Targeted query: 1,000 identifiers against 1,000,000 records, online, through the broker.

Run: ``.venv/bin/python -m benchmarks.targeted_query [--mode filter|bucket|both] [--records N]
[--queries Q]``

``--mode bucket`` is the bucket-mode query through the broker; ``--mode filter`` the
filter mode's filter size, sync, 1% delta and online time (benchmarks/filter_mode.py);
``both`` (the default) prints both beside OpenMined PSI.

The responder's records and match index are built once into var/bench/match-N.db (with
its OPRF key beside it, var/bench/match-N.key) and reused by later runs; each run makes a
fresh consortium whose bank-a is issued that key and pointed at that database. Broker and
bank-a run as separate `gateway` processes (``--in-process`` serves them here instead).

Online time is what an officer waits for: normalising the identifiers, blinding, the
sealed, signed, policy-checked and audited MATCH_QUERY to the bank and its MATCH_RESPONSE,
verifying the proof, unblinding, matching tags and opening labels. Side by side,
OpenMined PSI 2.0.6 on the same data: client request, server processing and client
intersection against a setup message built once (cached under var/bench/ as well).
Every run is checked: exactly the planted identifiers must match.

Buckets are sized from the record count (`bucket_bits_for`: ~16 records per bucket, 16
bits at 1M, 19 at 10M), and both nodes are configured with that size. Besides online
time it prints the index's size on disk per record, the bank node's memory (peak RSS
from /proc) during the queries, and an incremental update of 1% of the records.

Targets: online time < 1 s at 1M records, < 1.5 s at 10M.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine, func, select

from benchmarks import filter_broker, filter_mode
from benchmarks.bench_db import key_of_current_index, new_keyed_db
from benchmarks.machine import cpu_seconds
from gateway.crypto.blinded import OprfServer
from gateway.db import make_engine
from gateway.identifiers import Identifier, IdentifierKind, normalise
from gateway.localnet import Consortium, processes
from gateway.matching.derive import bucket_bits_for
from gateway.matching.index_store import fetch_buckets
from gateway.matching.querier import Match, PendingQuery
from gateway.matching.responder import ResponderLimits, answer_query
from gateway.pki.custody import private_folder
from gateway.pki.keys import write_secret
from gateway.synthetic import bank_card_number, iter_bank_records
from nodes import matching
from nodes.index_build import update_index
from nodes.records import RecordRow, upsert_records
from nodes.runtime import open_node
from tests.consortium import running

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "var" / "bench"
LABEL_FIELDS = ("record_id", "status", "opened_on")
LOAD_CHUNK = 500_000
"""Records generated, normalised and stored at a time: 10M at once would need ~10 GB."""
NODES = (("police-1", "police", "City Police"), ("bank-a", "bank", "Bank A"))
TARGETS_S = ((1_000_000, 1.0), (10_000_000, 1.5))
"""(up to this many records, online time target)."""


# -- the responder's data, built once ------------------------------------------------------


def prepared(records: int, bits: int) -> tuple[Path, bytes, dict[str, Any]]:
    """The bench database with records and index, its OPRF key, and its build figures."""
    private_folder(BENCH)
    db, key_file, facts_file = (BENCH / f"match-{records}{ext}" for ext in (".db", ".key", ".json"))
    reused = key_of_current_index(db, key_file, bits, LABEL_FIELDS)
    if reused is not None and facts_file.exists():
        facts: dict[str, Any] = json.loads(facts_file.read_text())
        if facts.get("records") == records:
            print(f"reusing {db.relative_to(ROOT)} (built {facts['built']})")
            return db, reused, facts
    engine, key = new_keyed_db(db, key_file)
    started = time.perf_counter()
    rows = iter_bank_records(records, seed=1)
    while chunk := list(itertools.islice(rows, LOAD_CHUNK)):
        upsert_records(engine, [(normalise(r.kind, r.value), r.attributes) for r in chunk])
    load_s = time.perf_counter() - started
    records_bytes = _db_bytes(engine, db)
    print(f"{records} records generated and stored in {load_s:.1f} s; building the index")
    started = time.perf_counter()
    cpu = _children_cpu()
    update_index(
        engine,
        key,
        bucket_bits=bits,
        label_fields=LABEL_FIELDS,
        progress=_progress_printer(records),
    )
    index_s = time.perf_counter() - started
    index_cpu = _children_cpu() - cpu
    index_bytes = _db_bytes(engine, db) - records_bytes
    facts = {
        "records": records,
        "built": time.strftime("%Y-%m-%d %H:%M"),
        "load_s": round(load_s, 1),
        "index_s": round(index_s, 1),
        "index_rate": round(records / index_s),
        "index_cpu_s": round(index_cpu, 1),
        "bucket_bits": bits,
        "records_bytes": records_bytes,
        "index_bytes": index_bytes,
        "build_load": round(os.getloadavg()[0], 1),
    }
    facts_file.write_text(json.dumps(facts))
    print(
        f"index built in {index_s:.1f} s ({records / index_s:.0f} records/s, {index_cpu:.0f} "
        f"CPU-s); {index_bytes / records:.0f} bytes per record on disk"
    )
    return db, key, facts


def _children_cpu() -> float:
    """CPU time of this process and its finished children (the build's workers)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _db_bytes(engine: Engine, db: Path) -> int:
    """Bytes of the database's pages in use (pages freed by a rebuild stay in the file for
    the next one and are not counted)."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
        size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    return int((pages - free) * size)


def _progress_printer(total: int) -> Callable[[int, int], None]:
    step = max(1, total // 20)
    last = [0]

    def show(done: int, _total: int) -> None:
        if done - last[0] >= step or done == total:
            last[0] = done
            print(f"  indexed {done}/{total}", flush=True)

    return show


def sample(
    engine: Engine, records: int, planted: int, queries: int, seed: int
) -> tuple[list[Identifier], set[str]]:
    """`planted` held identifiers among `queries`, shuffled; and the planted values."""
    rng = random.Random(seed)
    ids = rng.sample(range(1, records + 1), planted)
    with engine.connect() as conn:
        held = conn.execute(
            select(RecordRow.kind, RecordRow.value).where(RecordRow.id.in_(ids))
        ).all()
    identifiers = [normalise(kind, value) for kind, value in held]
    while len(identifiers) < queries:
        identifiers.append(normalise("bank_card", bank_card_number(rng)))
    rng.shuffle(identifiers)
    with engine.connect() as conn:
        found = conn.scalars(
            select(RecordRow.value).where(RecordRow.value.in_([i.value for i in identifiers]))
        ).all()
    return identifiers, set(found)


# -- ours, through the broker --------------------------------------------------------------


@contextmanager
def serving(
    db: Path, key: bytes, bits: int, in_process: bool
) -> Iterator[tuple[Consortium, dict[str, int]]]:
    """A fresh consortium whose bank-a holds the bench key and database; `bits` everywhere."""
    with tempfile.TemporaryDirectory(prefix="bench-match-") as tmp:
        consortium = Consortium.create(Path(tmp), NODES)
        public = OprfServer(key).public_key
        # Consortium.create issues every node; bank-a's OPRF key becomes the bench key.
        consortium.pki.rotate("bank-a", oprf=True, oprf_key_factory=lambda: (key, public))
        path = consortium.config_path("bank-a")
        path.write_text(re.sub(r'(?m)^database = ".*"$', f'database = "{db}"', path.read_text()))
        path.write_text(path.read_text() + filter_broker.QUOTA_TOML)
        for node_id in ("bank-a", "police-1"):
            _set_bucket_bits(consortium.config_path(node_id), bits)
        if in_process:
            with running(consortium, ("bank-a",)):
                yield consortium, {}
        else:
            with processes(consortium) as procs:
                procs.start_broker()
                procs.start_node("bank-a")
                yield consortium, {name: proc.pid for name, proc in procs.procs.items()}


def _set_bucket_bits(path: Path, bits: int) -> None:
    """match_bucket_bits = `bits` in a node's config (a top-level key, after `database`)."""
    text = re.sub(r"(?m)^#? ?match_bucket_bits = \d+\n", "", path.read_text())
    path.write_text(
        re.sub(r"(?m)^(database = .*)$", rf"\1\nmatch_bucket_bits = {bits}", text, count=1)
    )


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, from /proc, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


class _Timed(PendingQuery):
    """PendingQuery that records its client-side time: blinding, and verify + unblind + match."""

    spent: ClassVar[dict[str, float]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        super().__init__(*args, **kwargs)
        _Timed.spent["blind"] = time.perf_counter() - started

    def open(self, payload: bytes) -> list[Match]:
        started = time.perf_counter()
        try:
            return super().open(payload)
        finally:
            _Timed.spent["open"] = time.perf_counter() - started
            _Timed.spent["answer_bytes"] = len(payload)


def ours(
    consortium: Consortium,
    pids: dict[str, int],
    raw: list[tuple[str, str]],
    expected: set[str],
    repeat: int,
) -> list[dict[str, float]]:
    matching.PendingQuery = _Timed  # type: ignore[attr-defined,misc]
    ctx = open_node(consortium.node_config("police-1"))
    runs = []
    try:
        for _ in range(repeat):
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            own_before = time.process_time()
            started = time.perf_counter()
            identifiers = [normalise(kind, value) for kind, value in raw]
            normalised = time.perf_counter() - started
            [outcome] = matching.query_responders(
                ctx, identifiers, ["bank-a"], case_ref="BENCH-1", legal_basis="benchmark"
            )
            total = time.perf_counter() - started
            assert outcome.ok, outcome.error
            got = {identifiers[m.position].value for m in outcome.matches}
            assert got == expected, f"{len(got)} matches, expected {len(expected)}"
            spent = _Timed.spent
            cpu = {f"cpu_{name}": cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            runs.append(
                {
                    **cpu,
                    "cpu_police": time.process_time() - own_before,
                    "total": total,
                    "normalise": normalised,
                    "blind": spent["blind"],
                    "open": spent["open"],
                    "rest": total - normalised - spent["blind"] - spent["open"],
                    "answer_bytes": spent["answer_bytes"],
                    "matches": len(got),
                }
            )
    finally:
        ctx.client.close()
        matching.PendingQuery = PendingQuery  # type: ignore[attr-defined,misc]
    return runs


def responder_alone(db: Path, key: bytes, bits: int, identifiers: list[Identifier]) -> float:
    """The bank's own work for the query, without broker or network: evaluate, prove, fetch."""
    server = OprfServer(key)
    engine = make_engine(str(db))
    query = PendingQuery(
        identifiers, server.public_key, bucket_bits=bits, max_batch=len(identifiers)
    )
    payload = query.payload()
    started = time.perf_counter()
    answer_query(
        payload,
        declared_batch=len(query),
        server=server,
        buckets=lambda asked: fetch_buckets(engine, asked),
        limits=ResponderLimits(bits, len(identifiers)),
        workers=os.cpu_count() or 1,
    )
    return time.perf_counter() - started


# -- OpenMined PSI -------------------------------------------------------------------------


def openmined(
    db: Path, records: int, identifiers: list[Identifier], queries: int
) -> dict[str, float] | None:
    try:
        import private_set_intersection.python as psi
    except ImportError:
        return None
    key_file = BENCH / f"psi-{records}.key"
    setup_file = BENCH / f"psi-{records}-q{queries}-gcs.setup"
    facts_file = BENCH / f"psi-{records}-q{queries}.json"
    facts: dict[str, float] = {}
    if key_file.exists() and setup_file.exists() and facts_file.exists():
        server = psi.server.CreateFromKey(bytes.fromhex(key_file.read_text()), True)
        setup = psi.ServerSetup()
        setup.ParseFromString(setup_file.read_bytes())
        facts = json.loads(facts_file.read_text())
    else:
        engine = make_engine(str(db))
        with engine.connect() as conn:
            rows = conn.execute(
                select(RecordRow.kind, RecordRow.value).where(RecordRow.deleted == 0)
            )
            items = [f"{kind}\x00{value}" for kind, value in rows]
        server = psi.server.CreateWithNewKey(True)
        print(f"OpenMined PSI: building its setup message over {len(items)} records (once)")
        started = time.perf_counter()
        setup = server.CreateSetupMessage(1e-9, queries, items, psi.DataStructure.GCS)
        facts = {"setup_s": round(time.perf_counter() - started, 1)}
        write_secret(key_file, server.GetPrivateKeyBytes().hex())
        setup_file.write_bytes(setup.SerializeToString())
        facts_file.write_text(json.dumps(facts))
    client = psi.client.CreateWithNewKey(True)
    mine = [i.canonical_input().decode() for i in identifiers]
    started = time.perf_counter()
    request = client.CreateRequest(mine)
    response = server.ProcessRequest(request)
    found = len(client.GetIntersection(setup, response))
    online = time.perf_counter() - started
    return {
        "online": online,
        "found": found,
        "setup_bytes": len(setup.SerializeToString()),
        **facts,
    }


# -- main ----------------------------------------------------------------------------------


def update_share(db: Path, key: bytes, bits: int, share: float, seed: int = 9) -> dict[str, float]:
    """Change the status of `share` of the records at random, then time the index update.

    The records' own write is the bank's business and not timed; the update must redo
    only those records (an incremental update, not a rebuild).
    """
    engine = make_engine(str(db))
    with engine.connect() as conn:
        top = int(conn.scalar(select(func.max(RecordRow.id))) or 0)
        ids = random.Random(seed).sample(range(1, top + 1), max(1, int(top * share)))
        rows = conn.execute(
            select(RecordRow.kind, RecordRow.value, RecordRow.attributes).where(
                RecordRow.id.in_(ids)
            )
        ).all()
    changed = []
    for kind, value, text in rows:
        attributes = json.loads(text)
        attributes["status"] = "FROZEN" if attributes.get("status") != "FROZEN" else "ACTIVE"
        changed.append((Identifier(IdentifierKind(kind), value), attributes))
    upsert_records(engine, changed)
    cpu = _children_cpu()
    started = time.perf_counter()
    done = update_index(engine, key, bucket_bits=bits, label_fields=LABEL_FIELDS)
    seconds = time.perf_counter() - started
    assert not done.rebuilt and done.indexed == len(changed), done
    return {"records": len(changed), "seconds": seconds, "cpu": _children_cpu() - cpu}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--planted", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--bucket-bits", type=int, default=0, help="0: from the record count (bucket_bits_for)"
    )
    parser.add_argument(
        "--update-share", type=float, default=0.01, help="records changed for the update line"
    )
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--skip-openmined", action="store_true")
    parser.add_argument("--mode", choices=("filter", "bucket", "both"), default="both")
    args = parser.parse_args(argv)
    bits = args.bucket_bits or bucket_bits_for(args.records)

    db, key, facts = prepared(args.records, bits)
    identifiers, expected = sample(
        make_engine(str(db)), args.records, args.planted, args.queries, seed=5
    )
    raw = [(i.kind.value, i.value) for i in identifiers]
    print(
        f"targeted query: {args.queries} identifiers ({len(expected)} held) against "
        f"{args.records} records, {bits} bucket bits; index built at {facts['index_rate']} "
        f"records/s; {os.cpu_count()} cores; "
        f"broker and bank {'in this process' if args.in_process else 'as processes'}"
    )
    if "index_bytes" in facts:
        print(
            f"  on disk: index {facts['index_bytes'] / 1e6:.0f} MB "
            f"({facts['index_bytes'] / args.records:.0f} bytes per record), records "
            f"{facts['records_bytes'] / 1e6:.0f} MB; build {facts['index_s']} s, "
            f"{facts.get('index_cpu_s', '?')} CPU-s"
        )
    load = os.getloadavg()[0]
    theirs = None if args.skip_openmined else openmined(db, args.records, identifiers, args.queries)
    if args.mode in ("filter", "both"):
        figures = filter_mode.run(db, key, identifiers, expected)
        filter_mode.report(figures, int(theirs["setup_bytes"]) if theirs else None)
        with serving(db, key, bits, args.in_process) as (consortium, pids):
            through = filter_broker.run(consortium, pids, cpu_seconds, raw, expected, args.repeat)
        filter_broker.report(through)
    if args.mode != "filter":
        bucket_mode(args, db, key, bits, identifiers, raw, expected, load)
    if theirs is None:
        if not args.skip_openmined:
            print("OpenMined PSI is not installed (make bench installs it)")
    else:
        print(
            f"OpenMined PSI (GCS, intersection): online {theirs['online']:.3f} s, found {theirs['found']}; "
            f"setup {theirs['setup_bytes'] / 1e6:.2f} MB built in {theirs['setup_s']} s "
            "and shipped to the client beforehand"
        )
    print(f"load average at start: {load:.1f} on {os.cpu_count()} cores")


def bucket_mode(
    args: argparse.Namespace,
    db: Path,
    key: bytes,
    bits: int,
    identifiers: list[Identifier],
    raw: list[tuple[str, str]],
    expected: set[str],
    load: float,
) -> None:
    with serving(db, key, bits, args.in_process) as (consortium, pids):
        before = {name: memory_kib(pid) for name, pid in pids.items()}
        runs = ours(consortium, pids, raw, expected, args.repeat)
        after = {name: memory_kib(pid) for name, pid in pids.items()}
    alone = responder_alone(db, key, bits, identifiers)
    best = min(runs, key=lambda r: r["total"])
    median = statistics.median(r["total"] for r in runs)
    print(
        f"bucket mode, online through the broker: best {best['total']:.3f} s, median {median:.3f} s "
        f"over {len(runs)} runs; answer {best['answer_bytes'] / 1e6:.2f} MB; {best['matches']} matches"
    )
    print(
        f"  normalise {best['normalise']:.3f} s | blind {best['blind']:.3f} s | "
        f"sign, seal, broker, bank, back {best['rest']:.3f} s | verify, unblind, match, open {best['open']:.3f} s"
    )
    print(
        f"  the bank's own part (evaluate, DLEQ proof, bucket fetch), measured alone: {alone:.3f} s"
    )
    cpu = ", ".join(f"{k[4:]} {v:.3f} s" for k, v in best.items() if k.startswith("cpu_"))
    print(f"  CPU time used per query (best run): {cpu}")
    if "bank-a" in after:
        print(
            f"  bank node memory: RSS {before['bank-a']['VmRSS'] / 1024:.0f} MB before the "
            f"queries, {after['bank-a']['VmRSS'] / 1024:.0f} MB after, peak "
            f"{after['bank-a']['VmHWM'] / 1024:.0f} MB"
        )
    print(
        f"  load average at start: {load:.1f} on {os.cpu_count()} cores (other work slows all this)"
    )
    target = next((t for n, t in TARGETS_S if args.records <= n), TARGETS_S[-1][1])
    verdict = "met" if best["total"] < target else "MISSED"
    print(f"target < {target} s online: {verdict}")
    if args.update_share > 0:
        upd = update_share(db, key, bits, args.update_share)
        print(
            f"incremental update of {upd['records']:.0f} changed records "
            f"({args.update_share:.0%} of the index): {upd['seconds']:.2f} s, {upd['cpu']:.1f} CPU-s "
            f"({upd['records'] / upd['seconds']:.0f} records/s); no rebuild"
        )


if __name__ == "__main__":
    main()
