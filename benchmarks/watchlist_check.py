"""Watchlist checks at payment time: single identifiers through the broker, 1,000,000 entries.

Run: ``.venv/bin/python -m benchmarks.watchlist_check [--entries N] [--seconds S]``

The police node's watchlist (bank cards and accounts, `gateway.synthetic`) and its index
are built once into var/bench/watchlist-N.db (OPRF key beside it) and reused; each run
makes a fresh consortium whose police-1 is issued that key and pointed at that database.
Broker, police-1 and bank-a run as separate `gateway` processes; the bank's systems are
this process, calling `WatchlistClient.check` (its own database and broker client, as a
core-banking process would).

Load is open-loop: checks are started at fixed rates (50, then 200 a second), each on
its own thread, whatever the earlier ones are doing, and a check's latency runs from its
scheduled start to its answer, so a stall shows up as latency rather than as a lower
rate. About a tenth of the checks are listed identifiers; every answer is checked.

Beside it, OpenMined PSI 2.0.6's cost of one single-identifier query against the same
entries (client request, server processing, intersection with a setup message built
once and held by the client), and the size of that setup message, which the police
would have to ship to every bank and carrier after each change to the list.

Target: p99 < 50 ms at 200 checks/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from benchmarks.bench_db import key_of_current_index, new_keyed_db
from benchmarks.machine import cpu_seconds, describe
from gateway.crypto.blinded import OprfServer
from gateway.db import make_engine
from gateway.identifiers import Identifier, normalise
from gateway.localnet import Consortium, processes
from gateway.pki.custody import private_folder
from gateway.pki.keys import write_secret
from gateway.synthetic import bank_card_number, generate_bank_records
from gateway.watchlist import LABEL_FIELDS, Advice, Listed
from nodes.journal import OutboundRow
from nodes.records import RecordRow
from nodes.runtime import NodeContext, open_node
from nodes.watchlist.client import (
    DEFAULT_IN_FLIGHT,
    DEFAULT_STALL_S,
    DEFAULT_WINDOW_S,
    WatchlistClient,
)
from nodes.watchlist.store import WatchlistEntry, add_entries, reindex

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "var" / "bench"
BUCKET_BITS = 16
NODES = (("police-1", "police", "City Police"), ("bank-a", "bank", "Bank A"))
TARGET_P99_MS = 50.0
RATES = (50, 200)


def prepared(entries: int) -> tuple[Path, bytes]:
    """The bench watchlist database with its index, and the police OPRF key."""
    private_folder(BENCH)
    db, key_file = (BENCH / f"watchlist-{entries}{ext}" for ext in (".db", ".key"))
    key = key_of_current_index(db, key_file, BUCKET_BITS, LABEL_FIELDS)
    if key is not None:
        print(f"reusing {db.relative_to(ROOT)}")
        return db, key
    engine, key = new_keyed_db(db, key_file)
    started = time.perf_counter()
    advice = list(Advice)
    listed = [
        WatchlistEntry(normalise(r.kind, r.value), "MULE_ACCOUNT", advice[i % 3])
        for i, r in enumerate(generate_bank_records(entries, seed=3))
    ]
    add_entries(engine, listed)
    del listed
    print(f"{entries} entries stored in {time.perf_counter() - started:.1f} s; indexing")
    started = time.perf_counter()
    reindex(engine, key, BUCKET_BITS)
    took = time.perf_counter() - started
    print(f"index built in {took:.1f} s ({entries / took:.0f} entries/s)")
    return db, key


def sample(db: Path, entries: int, count: int, seed: int) -> list[tuple[Identifier, bool]]:
    """`count` identifiers to check, about a tenth listed; with whether each is listed."""
    rng = random.Random(seed)
    ids = rng.sample(range(1, entries + 1), max(1, count // 10))
    with make_engine(str(db)).connect() as conn:
        rows = conn.execute(
            select(RecordRow.kind, RecordRow.value).where(RecordRow.id.in_(ids))
        ).all()
    picked = [(normalise(kind, value), True) for kind, value in rows]
    while len(picked) < count:
        picked.append((normalise("bank_card", bank_card_number(rng)), False))
    rng.shuffle(picked)
    return picked


@contextmanager
def serving(db: Path, key: bytes) -> Iterator[tuple[Consortium, dict[str, int]]]:
    """Broker, police-1 (the bench watchlist) and bank-a as processes."""
    with tempfile.TemporaryDirectory(prefix="bench-watchlist-") as tmp:
        consortium = Consortium.create(Path(tmp), NODES)
        public = OprfServer(key).public_key
        consortium.pki.rotate("police-1", oprf=True, oprf_key_factory=lambda: (key, public))
        path = consortium.config_path("police-1")
        path.write_text(re.sub(r'(?m)^database = ".*"$', f'database = "{db}"', path.read_text()))
        with processes(consortium) as procs:
            procs.start_broker()
            procs.start_node("police-1")
            procs.start_node("bank-a")
            yield consortium, {name: proc.pid for name, proc in procs.procs.items()}


def sent_messages(ctx: NodeContext) -> int:
    """WATCHLIST_CHECK messages in the bank's journal of what it sent."""
    with ctx.engine.connect() as conn:
        query = select(func.count()).where(OutboundRow.kind == "WATCHLIST_CHECK")
        return int(conn.scalar(query) or 0)


def run_rate(
    client: WatchlistClient, checks: list[tuple[Identifier, bool]], rate: int
) -> dict[str, Any]:
    """Open-loop: check i starts at i/rate seconds; latency from then to its answer."""
    latencies = [0.0] * len(checks)
    wrong: list[int] = []
    errors: list[str] = []
    start = time.perf_counter() + 0.05

    def one(i: int) -> None:
        identifier, listed = checks[i]
        try:
            result = client.check_identifier(identifier)
        except Exception as exc:  # counted and shown; the run goes on
            errors.append(type(exc).__name__ + ": " + str(exc)[:120])
            return
        latencies[i] = time.perf_counter() - (start + i / rate)
        if isinstance(result, Listed) != listed:
            wrong.append(i)

    threads = []
    for i in range(len(checks)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=one, args=(i,), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(30)
    assert not wrong, f"{len(wrong)} checks answered wrongly"
    done = sorted(x for x in latencies if x > 0)
    if errors:
        print(f"  {len(errors)} checks failed, e.g. {errors[0]}")
    q = statistics.quantiles(done, n=100)
    return {
        "rate": rate,
        "checks": len(done),
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": done[-1] * 1000,
        "elapsed_s": time.perf_counter() - start,
    }


def openmined(db: Path, entries: int, probes: list[Identifier]) -> dict[str, float] | None:
    """OpenMined PSI 2.0.6: one single-identifier query, setup message built once (cached)."""
    try:
        import private_set_intersection.python as psi
    except ImportError:
        return None
    key_file = BENCH / f"psi-watchlist-{entries}.key"
    setup_file = BENCH / f"psi-watchlist-{entries}-gcs.setup"
    facts_file = BENCH / f"psi-watchlist-{entries}.json"
    if key_file.exists() and setup_file.exists() and facts_file.exists():
        server = psi.server.CreateFromKey(bytes.fromhex(key_file.read_text()), True)
        setup = psi.ServerSetup()
        setup.ParseFromString(setup_file.read_bytes())
        facts: dict[str, float] = json.loads(facts_file.read_text())
    else:
        with make_engine(str(db)).connect() as conn:
            rows = conn.execute(
                select(RecordRow.kind, RecordRow.value).where(RecordRow.deleted == 0)
            )
            items = [f"{kind}\x00{value}" for kind, value in rows]
        server = psi.server.CreateWithNewKey(True)
        print(f"OpenMined PSI: building its setup message over {len(items)} entries (once)")
        started = time.perf_counter()
        setup = server.CreateSetupMessage(1e-9, 1, items, psi.DataStructure.GCS)
        facts = {"setup_s": round(time.perf_counter() - started, 1)}
        write_secret(key_file, server.GetPrivateKeyBytes().hex())
        setup_file.write_bytes(setup.SerializeToString())
        facts_file.write_text(json.dumps(facts))
    times = []
    cpu_started = time.process_time()
    for probe in probes:
        client = psi.client.CreateWithNewKey(True)
        started = time.perf_counter()
        request = client.CreateRequest([probe.canonical_input().decode()])
        response = server.ProcessRequest(request)
        client.GetIntersection(setup, response)
        times.append(time.perf_counter() - started)
    return {
        "p50_ms": statistics.median(times) * 1000,
        "cpu_ms": (time.process_time() - cpu_started) / len(probes) * 1000,
        "setup_bytes": len(setup.SerializeToString()),
        **facts,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15.0, help="Per rate.")
    parser.add_argument("--window-ms", type=float, default=DEFAULT_WINDOW_S * 1000)
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT)
    parser.add_argument(
        "--stall-ms",
        type=float,
        default=DEFAULT_STALL_S * 1000,
        help="A batch out this long lets the next leave beside it (0: never wait).",
    )
    parser.add_argument("--skip-openmined", action="store_true")
    args = parser.parse_args(argv)

    db, key = prepared(args.entries)
    print(describe())
    load = os.getloadavg()
    print(
        f"watchlist check: {args.entries} entries, {os.cpu_count()} cores, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; broker, police and bank as processes; "
        f"batching window {args.window_ms} ms, one batch in flight (another beside it once "
        f"one is out {args.stall_ms:.0f} ms, {args.in_flight} at most)"
    )
    results = []
    with serving(db, key) as (consortium, pids):
        ctx = open_node(consortium.node_config("bank-a"))
        try:
            client = WatchlistClient(
                ctx,
                window_s=args.window_ms / 1000,
                in_flight=args.in_flight,
                stall_s=args.stall_ms / 1000,
            )
            warm = sample(db, args.entries, 50, seed=1)
            run_rate(client, warm, 50)  # connections, directory, first batch
            alone = []
            for identifier, _ in sample(db, args.entries, 30, seed=2):
                started = time.perf_counter()
                client.check_identifier(identifier)
                alone.append(time.perf_counter() - started)
            print(
                f"one check at a time (no queueing, no batching): median "
                f"{statistics.median(alone) * 1000:.1f} ms, best {min(alone) * 1000:.1f} ms"
            )
            for n, rate in enumerate(RATES):
                checks = sample(db, args.entries, int(rate * args.seconds), seed=10 + n)
                cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                own = time.process_time()
                sent = sent_messages(ctx)
                result = run_rate(client, checks, rate)
                result["messages"] = sent_messages(ctx) - sent
                result["cpu_ms"] = {
                    name: (cpu_seconds(pid) - cpu_before[name]) / len(checks) * 1000
                    for name, pid in pids.items()
                }
                result["cpu_ms"]["bank systems (this process)"] = (
                    (time.process_time() - own) / len(checks) * 1000
                )
                results.append(result)
        finally:
            ctx.client.close()
    for r in results:
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_ms"].items())
        print(
            f"ours at {r['rate']}/s: {r['checks']} checks, p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms; "
            f"{r['checks'] / max(1, r['messages']):.1f} checks a message; CPU ms per check: {cpu}"
        )
    at_200 = next(r for r in results if r["rate"] == 200)
    verdict = "met" if at_200["p99_ms"] < TARGET_P99_MS else "MISSED"
    print(f"target p99 < {TARGET_P99_MS:.0f} ms at 200 checks/s: {verdict}")
    if args.skip_openmined:
        return
    probes = [i for i, _ in sample(db, args.entries, 50, seed=99)]
    theirs = openmined(db, args.entries, probes)
    if theirs is None:
        print(
            "OpenMined PSI is not installed (.venv/bin/pip install --no-deps openmined-psi==2.0.6)"
        )
        return
    print(
        f"OpenMined PSI 2.0.6 (GCS), one identifier per query, in one process, no network: "
        f"p50 {theirs['p50_ms']:.1f} ms, CPU {theirs['cpu_ms']:.1f} ms per query; its setup "
        f"message is {theirs['setup_bytes'] / 1e6:.1f} MB (built in {theirs['setup_s']} s) "
        "and must be shipped to every checker after each change to the list"
    )


if __name__ == "__main__":
    main()
