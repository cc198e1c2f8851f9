"""Benchmark: broker throughput and latency for signed, policy-checked, audited messages.

Broker and bank run as their own `gateway` processes over mTLS on loopback, as deployed;
the police node is this process. Envelopes are signed before timing (signing is the
sender's cost, on another machine in production). All three share the machine's 2 cores.

- throughput: police submit PINGs from `--clients` threads (8) as fast as the broker answers. Each
  round trip is two messages through the broker: the PING is verified, decided, stored
  with its audit entry and delivered to the bank over mTLS; the bank's signed PONG is
  verified, decided and audited with the delivery event (three durable audit entries,
  two group commits), with a signed checkpoint and inclusion proof as the receipt.
  Action kinds are not used: policy caps them at 100 per hour per sender;
- latency at fixed rates of 50 and 100 PINGs/s (100 and 200 messages/s through the
  broker): p50 and p99 of the police's whole round trips.

CPU time per round trip is read from /proc for each process, and for the PostgreSQL server
(all its processes) when it runs on this machine.

    python -m benchmarks.broker_load [--postgres URL] [--messages N] [--repeat R]

With `--brokers N` the broker runs as 1, then as N processes over one PostgreSQL
database in the same run (the directory lists every one; the police spread their calls
over them), and the two columns are printed side by side with their ratio:

    python -m benchmarks.broker_load --brokers 2 [--messages N] [--repeat R]

The machine's speed drifts by a third within minutes, so to judge a change compare it
with another version in interleaved pairs of short runs (the order alternating), by the
median of the per-pair ratios of throughput and of the broker's CPU per round trip. The
other version is a checkout's directory or a git ref, which is checked out into a scratch
worktree for the run and removed after it; both versions run under this checkout's
benchmark code, so they get the same load and broker settings:

    python -m benchmarks.broker_load --against main [--pairs 8] [--sqlite]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks import machine
from gateway.envelope.build import Draft
from gateway.localnet import Consortium, Processes, processes
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc

PACED_PINGS_PER_S = (50.0, 100.0)
"""Fixed rates for the latency runs: 100 and 200 messages/s through the broker."""


def envelopes(c: Consortium, n: int) -> list[pb.Envelope]:
    key = c.pki.bundle("police-1").keys().signing
    return [
        Draft(
            sender="police-1",
            recipients=["bank-a"],
            kind="PING",
            payload=b"{}",
            case_ref=f"C-LOAD-{i % 50}",
            lifetime_ms=3_600_000,
        ).sign(key)
        for i in range(n)
    ]


@contextmanager
def consortium(database: str | None, brokers: int = 1) -> Iterator[tuple[Consortium, Processes]]:
    """Broker(s) and bank as their own `gateway` processes, as deployed; police is this one."""
    with tempfile.TemporaryDirectory() as folder:
        urls = {"broker": database} if database else None
        c = Consortium.create(Path(folder), database_urls=urls)
        with processes(c) as running:
            if brokers > 1:
                c.add_brokers(brokers)
            for index in range(brokers):
                # Every client's PING may be in flight to the one bank at once: the
                # default bound of 4 per recipient would answer the rest undelivered.
                config = c.broker_config_file(index, interactive_per_recipient=IN_FLIGHT)
                running.start_broker_process(index, config)
            running.start_node("bank-a")
            yield c, running


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL server process on this machine (0 if none is local)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().partition("(")[2].startswith("postgres)"):
                total += machine.cpu_seconds(int(stat.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return total


IN_FLIGHT = 64
"""The brokers' interactive deliveries per recipient: above any `--clients` used here."""


def stubs(c: Consortium) -> list[rpc.BrokerStub]:
    """One stub per broker process: calls are spread over them in turn."""
    bundle = c.pki.bundle("police-1")
    tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
    return [
        rpc.BrokerStub(secure_channel(f"127.0.0.1:{port}", "broker", tls))
        for port in c.broker_ports or [c.broker_port]
    ]


def throughput(c: Consortium, batch: list[pb.Envelope], threads: int) -> float:
    brokers = stubs(c)
    items = iter(batch)
    lock = threading.Lock()
    workers = count()

    def worker() -> None:
        broker = brokers[next(workers) % len(brokers)]
        while True:
            with lock:
                envelope = next(items, None)
            if envelope is None:
                return
            reply = broker.Submit(envelope, timeout=30)
            assert reply.decision == "ALLOW" and len(reply.responses) == 1

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker) for _ in range(threads)]:
            future.result()
    return len(batch) / (time.perf_counter() - started)


def latency_at_rate(c: Consortium, batch: list[pb.Envelope], rate: float) -> list[float]:
    brokers = stubs(c)
    latencies: list[float] = []
    lock = threading.Lock()
    turn = count()

    def send(envelope: pb.Envelope) -> None:
        broker = brokers[next(turn) % len(brokers)]
        t0 = time.perf_counter()
        reply = broker.Submit(envelope, timeout=30)
        assert reply.decision == "ALLOW"
        with lock:
            latencies.append((time.perf_counter() - t0) * 1000)

    futures = []
    with ThreadPoolExecutor(16) as pool:
        start = time.perf_counter()
        for i, envelope in enumerate(batch):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, envelope))
    for future in futures:
        future.result()
    return latencies


@dataclass
class Figures:
    """One configuration's results: message rate, CPU per round trip, paced latencies."""

    label: str
    median_msg_s: float
    best_msg_s: float
    cpu_ms: dict[str, float]
    latency: dict[float, tuple[float, float]] = field(default_factory=dict)
    """PINGs/s -> (p50, p99) round-trip milliseconds."""


def run(
    label: str, database: str | None, messages: int, repeat: int, clients: int, brokers: int = 1
) -> Figures:
    """`repeat` throughput runs (median and best) and `repeat` x 500 paced round trips."""
    with consortium(database, brokers) as (c, running):
        throughput(c, envelopes(c, 50), 4)
        pids = {name: proc.pid for name, proc in running.procs.items()}
        rates: list[float] = []
        server = ["postgres"] if database else []
        cpu = dict.fromkeys([*pids, "police", *server], 0.0)
        for _ in range(repeat):
            batch = envelopes(c, messages)
            before = {name: machine.cpu_seconds(pid) for name, pid in pids.items()}
            mine, postgres = time.process_time(), postgres_cpu_seconds()
            rates.append(throughput(c, batch, clients))
            for name, pid in pids.items():
                cpu[name] += machine.cpu_seconds(pid) - before[name]
            cpu["police"] += time.process_time() - mine
            if server:
                cpu["postgres"] += postgres_cpu_seconds() - postgres
        latencies: dict[float, list[float]] = {}
        for pings_per_s in PACED_PINGS_PER_S:
            lat: list[float] = []
            for _ in range(repeat):
                lat += latency_at_rate(c, envelopes(c, 500), pings_per_s)
            latencies[pings_per_s] = sorted(lat)
    median, best = statistics.median(rates), max(rates)
    figures = Figures(
        label,
        2 * median,
        2 * best,
        {name: 1000 * s / (messages * repeat) for name, s in cpu.items()},
        {
            r: (statistics.median(lat), lat[int(len(lat) * 0.99) - 1])
            for r, lat in latencies.items()
        },
    )
    per_trip = ", ".join(f"{name} {ms:.2f}" for name, ms in figures.cpu_ms.items())
    print(
        f"{label:10s} throughput, round trips/s: median {median:4.0f}, best {best:4.0f} "
        f"(= {2 * median:4.0f} / {2 * best:4.0f} msg/s; {repeat} runs of {messages} PING+PONG, "
        f"{clients} client threads)\n"
        f"{'':10s} CPU ms per round trip: {per_trip}"
    )
    for pings_per_s, (p50, p99) in figures.latency.items():
        print(
            f"{'':10s} round-trip latency at {pings_per_s:.0f} PINGs/s "
            f"({2 * pings_per_s:.0f} msg/s), {len(latencies[pings_per_s])} round trips: "
            f"p50 {p50:5.1f} ms, p99 {p99:5.1f} ms"
        )
    return figures


def side_by_side(one: Figures, many: Figures) -> None:
    """The 1-broker and N-broker columns, and their ratio."""
    rows = [("msg/s, median", one.median_msg_s, many.median_msg_s)]
    rows.append(("msg/s, best", one.best_msg_s, many.best_msg_s))
    for rate in PACED_PINGS_PER_S:
        for i, name in enumerate(("p50", "p99")):
            rows.append(
                (f"{name} ms at {2 * rate:.0f} msg/s", one.latency[rate][i], many.latency[rate][i])
            )
    print(f"\n{'':26s} {one.label:>12s} {many.label:>12s}  ratio")
    for name, a, b in rows:
        print(f"{name:26s} {a:12.1f} {b:12.1f}  {b / a:5.2f}")
    print("CPU ms per round trip:")
    for figures in (one, many):
        print(f"  {figures.label}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.cpu_ms.items()))


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    """A throw-away PostgreSQL schema, so the run starts from an empty broker database."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


_PAIR_RUN = """
import benchmarks.broker_load as b
b.PACED_PINGS_PER_S = ()
if {postgres!r}:
    with b.pg_schema({postgres!r}) as url:
        b.run("postgresql", url, {messages}, 1, {clients})
else:
    b.run("sqlite", None, {messages}, 1, {clients})
"""


@contextmanager
def checkout(against: str) -> Iterator[Path]:
    """`against` as a directory: itself if it is one, else a scratch worktree of that git ref."""
    if Path(against).is_dir():
        yield Path(against).resolve()
        return
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder) / "against"
        git = ["git", "-C", str(here), "worktree"]
        subprocess.run(
            [*git, "add", "--detach", str(tree), against], check=True, capture_output=True
        )
        try:
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=False, capture_output=True)


@dataclass
class PairFigures:
    """One short run's throughput and broker CPU per round trip."""

    msg_s: float
    broker_cpu_ms: float


def short_run(tree: Path, code: str) -> PairFigures:
    """One short run of the code in `tree`, in a process of its own, measured by this
    checkout's benchmark (copied beside it, so that both sides run the same load)."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copytree(
            Path(__file__).resolve().parent,
            Path(folder) / "benchmarks",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([folder, str(tree)])},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    rate = re.search(r"median\s+(\d+)", out)
    cpu = re.search(r"broker (\d+\.\d+)", out)
    if rate is None or cpu is None:
        raise RuntimeError(f"no figures from the checkout at {tree}")
    return PairFigures(2 * float(rate[1]), float(cpu[1]))


def compare(against: str, pairs: int, postgres: str, messages: int, clients: int) -> None:
    """This checkout against the version `against`, in interleaved pairs of short runs."""
    code = _PAIR_RUN.format(postgres=postgres, messages=messages, clients=clients)
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores); {machine.describe()}")
    with checkout(against) as other:
        trees = {"this": Path(__file__).resolve().parent.parent, "other": other}
        runs: dict[str, list[PairFigures]] = {name: [] for name in trees}
        for pair in range(pairs):
            for name in sorted(trees, reverse=pair % 2 == 1):
                runs[name].append(short_run(trees[name], code))
            this, that = runs["this"][-1], runs["other"][-1]
            print(
                f"pair {pair + 1}: msg/s this {this.msg_s:.0f}, other {that.msg_s:.0f}; "
                f"broker CPU ms per round trip this {this.broker_cpu_ms:.2f}, "
                f"other {that.broker_cpu_ms:.2f}"
            )

    def medians(pick: Callable[[PairFigures], float]) -> tuple[float, float, float]:
        mine, theirs = [pick(r) for r in runs["this"]], [pick(r) for r in runs["other"]]
        ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
        return statistics.median(mine), statistics.median(theirs), statistics.median(ratios)

    store = "PostgreSQL" if postgres else "SQLite"
    rate, cpu = medians(lambda r: r.msg_s), medians(lambda r: r.broker_cpu_ms)
    print(
        f"{store}, {pairs} pairs of {messages} round trips against {against}:\n"
        f"  msg/s, median: this {rate[0]:.0f}, other {rate[1]:.0f}; "
        f"median ratio this/other {rate[2]:.2f}\n"
        f"  broker CPU ms per round trip, median: this {cpu[0]:.2f}, other {cpu[1]:.2f}; "
        f"median ratio this/other {cpu[2]:.2f}\n"
        f"load average at end: {os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="concurrent Submit calls")
    parser.add_argument(
        "--against", help="a git ref or another checkout's directory to compare with"
    )
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--sqlite", action="store_true", help="compare on SQLite")
    parser.add_argument(
        "--brokers", type=int, default=0, help="PostgreSQL: 1 broker, then this many, side by side"
    )
    args = parser.parse_args(argv if argv is not None else None)
    if args.against:
        postgres = "" if args.sqlite else args.postgres
        compare(args.against, args.pairs, postgres, min(args.messages, 1000), args.clients)
        return
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores); {machine.describe()}")
    if args.brokers > 1:
        with pg_schema(args.postgres) as url:
            one = run("1 broker", url, args.messages, args.repeat, args.clients)
        with pg_schema(args.postgres) as url:
            many = run(
                f"{args.brokers} brokers",
                url,
                args.messages,
                args.repeat,
                args.clients,
                args.brokers,
            )
        side_by_side(one, many)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        return
    run("sqlite", None, args.messages, args.repeat, args.clients)
    if args.postgres:
        with pg_schema(args.postgres) as url:
            run("postgresql", url, args.messages, args.repeat, args.clients)


if __name__ == "__main__":
    main()
