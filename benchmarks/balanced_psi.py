"""Balanced bulk PSI, 100k x 100k by default: our DH-PSI against OpenMined PSI, same sets.

Run: ``.venv/bin/python -m benchmarks.balanced_psi [--size N] [--overlap K] [--in-process]``
(``make bench`` runs it with the others; OpenMined PSI comes from the ``.venv/.bench`` step).

Times, for intersection and cardinality modes:

- ours, whole protocol: a bank node (this process) runs ``nodes.bulk_psi.run_psi`` against
  a carrier node through the broker, both served as separate ``gateway`` processes as in a
  deployment (``--in-process`` serves them in this process instead). It covers reading both
  sets from the nodes' databases, every signed, sealed, policy-checked and audited
  PSI_REQUEST / PSI_RESPONSE exchange, and the crypto on both sides;
- ours, protocol without broker or database: the same two state machines wired directly,
  in this process (hashing, masking, (de)serialisation, comparison);
- with ``--crypto-only``, the bare DH-PSI steps of gateway.crypto.psi on both sets (hash,
  mask, decode, mask again, compare), on one thread and on every core;
- OpenMined PSI 2.0.6 (``private_set_intersection.python``), server setup + client request +
  server processing + client intersection, on the same canonical inputs, exact (RAW) and
  Golomb-compressed (GCS, its default, false-positive rate 1e-9) setup messages.

Every run is checked against Python's own set intersection of the planted sets. With
``--repeat N`` the implementations run in N interleaved rounds, and the best and median of
each are shown (the machine is shared: a burst of other work can double a run).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.broker.server import serve_broker
from gateway.bulk_psi import (
    Mode,
    Offer,
    Peer,
    QuerierSession,
    Responder,
    run_querier,
    save_offer,
)
from gateway.crypto import psi
from gateway.identifiers import Identifier, IdentifierKind, normalise
from gateway.localnet import Consortium, processes
from gateway.synthetic import mobile_number
from nodes.bulk_psi import run_psi
from nodes.records import upsert_records
from nodes.runtime import open_node, serve_node

QUERIER = "bank-a"
RESPONDER = "carrier-1"
NODES = (
    ("police-1", "police", "City Police"),
    (QUERIER, "bank", "Bank A"),
    (RESPONDER, "carrier", "Carrier One"),
)


@dataclass(frozen=True)
class Sets:
    bank: list[str]
    carrier: list[str]

    @property
    def expected(self) -> set[str]:
        return set(self.bank) & set(self.carrier)

    def inputs(self, values: list[str]) -> list[bytes]:
        return [Identifier(IdentifierKind.PHONE, v).canonical_input() for v in values]


def planted_sets(size: int, overlap: int, seed: int) -> Sets:
    """Two sets of `size` valid phone numbers sharing exactly `overlap`."""
    rng = random.Random(seed)
    values: set[str] = set()
    while len(values) < 2 * size - overlap:
        values.add(normalise(IdentifierKind.PHONE, mobile_number(rng)).value)
    pool = sorted(values)
    rng.shuffle(pool)
    shared, rest = pool[:overlap], pool[overlap:]
    bank = shared + rest[: size - overlap]
    carrier = shared + rest[size - overlap :]
    rng.shuffle(bank)
    rng.shuffle(carrier)
    return Sets(bank, carrier)


@dataclass(frozen=True)
class Row:
    mode: Mode
    name: str
    seconds: float
    cpu_seconds: float
    found: int


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time (user + system) of this process and of `pids`, from /proc on Linux."""
    own = os.times()
    total = own.user + own.system
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(mode: Mode, name: str, call: Callable[[], int], pids: Sequence[int] = ()) -> Row:
    cpu = cpu_seconds(pids)
    start = time.perf_counter()
    found = call()
    seconds = time.perf_counter() - start
    return Row(mode, name, seconds, cpu_seconds(pids) - cpu, found)


# -- ours --------------------------------------------------------------------------------


def ours_direct(sets: Sets, mode: Mode) -> Row:
    """Both state machines in this process, exchanging payloads without broker or database."""
    carrier_inputs = sets.inputs(sets.carrier)
    bank_inputs = sets.inputs(sets.bank)
    offer = Offer("phone", IdentifierKind.PHONE, {"flag": "flagged"})
    responder = Responder(offers=lambda _name: offer, load_set=lambda _offer: carrier_inputs)
    peer = Peer(QUERIER, "bank", "BENCH-1")

    def transport(payload: bytes, batch_size: int) -> bytes:
        return responder.handle(peer, payload, batch_size)[0]

    def run() -> int:
        session = QuerierSession(
            bank_inputs, kind=IdentifierKind.PHONE, responder_set="phone", mode=mode
        )
        return run_querier(transport, session).cardinality

    return measure(mode, "ours, protocol only (1 process)", run)


def crypto_only(sets: Sets, workers: int) -> Row:
    """The DH-PSI steps alone (gateway.crypto.psi), no protocol: the floor for our crypto."""
    bank_inputs = sets.inputs(sets.bank)
    carrier_inputs = sets.inputs(sets.carrier)

    def run() -> int:
        a, b = psi.generate_key(), psi.generate_key()
        sent = psi.encode_elements(
            psi.exponentiate_parallel(a, psi.hash_inputs_to_group(bank_inputs), workers)
        )
        back = psi.exponentiate_parallel(b, psi.decode_elements(sent), workers)
        theirs = psi.encode_elements(
            psi.exponentiate_parallel(b, psi.hash_inputs_to_group(carrier_inputs), workers)
        )
        peer = psi.exponentiate_parallel(a, psi.decode_elements(theirs), workers)
        return len(psi.intersection_indices(back, peer))

    threads = "1 thread" if workers == 1 else f"{workers} threads"
    return measure(Mode.INTERSECTION, f"ours, crypto steps only ({threads})", run)


@contextmanager
def consortium_serving(
    root: Path, sets: Sets, in_process: bool
) -> Iterator[tuple[Consortium, list[int]]]:
    """The consortium serving, and the process ids of broker and carrier (if separate)."""
    consortium = Consortium.create(root, NODES)
    for node_id, values, flag in (
        (QUERIER, sets.bank, "mule"),
        (RESPONDER, sets.carrier, "flagged"),
    ):
        ctx = open_node(consortium.node_config(node_id))
        try:
            records = [(Identifier(IdentifierKind.PHONE, v), {"flag": flag}) for v in values]
            upsert_records(ctx.engine, records)
            if node_id == RESPONDER:
                save_offer(ctx.engine, "phone", IdentifierKind.PHONE, {"flag": "flagged"})
        finally:
            ctx.client.close()
    if in_process:
        broker = serve_broker(consortium.broker_config())
        carrier = serve_node(consortium.node_config(RESPONDER))
        try:
            yield consortium, []
        finally:
            carrier.stop(0)
            broker.stop(0)
        return
    with processes(consortium) as procs:
        procs.start_broker()
        procs.start_node(RESPONDER)
        yield consortium, [p.pid for p in procs.procs.values()]


def ours_through_broker(consortium: Consortium, pids: list[int], sets: Sets, mode: Mode) -> Row:
    ctx = open_node(consortium.node_config(QUERIER))

    def run() -> int:
        outcome = run_psi(
            ctx,
            peer=RESPONDER,
            kind="phone",
            where={"flag": "mule"},
            case_ref="BENCH-1",
            legal_basis="benchmark",
            mode=mode,
        )
        if outcome.matches is not None:
            found = {m.value for m in outcome.matches}
            assert found == sets.expected, "the intersection differs from the planted one"
        return outcome.result.cardinality

    try:
        return measure(mode, "ours, whole protocol via broker", run, pids)
    finally:
        ctx.client.close()


# -- OpenMined PSI -----------------------------------------------------------------------


def openmined(sets: Sets, mode: Mode, structure: str) -> Row:
    import private_set_intersection.python as om  # type: ignore[import-untyped]

    reveal = mode is Mode.INTERSECTION
    client_items = [x.decode("latin-1") for x in sets.inputs(sets.bank)]
    server_items = [x.decode("latin-1") for x in sets.inputs(sets.carrier)]
    ds = om.DataStructure.RAW if structure == "RAW" else om.DataStructure.GCS
    fpr = 0.0 if structure == "RAW" else 1e-9

    def run() -> int:
        client = om.client.CreateWithNewKey(reveal)
        server = om.server.CreateWithNewKey(reveal)
        setup = server.CreateSetupMessage(fpr, len(client_items), server_items, ds)
        request = client.CreateRequest(client_items)
        response = server.ProcessRequest(request)
        if reveal:
            return len(client.GetIntersection(setup, response))
        return int(client.GetIntersectionSize(setup, response))

    return measure(mode, f"OpenMined PSI 2.0.6 ({structure})", run)


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="elements in each set")
    parser.add_argument("--overlap", type=int, default=10_000, help="elements in common")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--modes", default="intersection,cardinality")
    parser.add_argument(
        "--in-process", action="store_true", help="serve broker and carrier in this process"
    )
    parser.add_argument("--skip-openmined", action="store_true")
    parser.add_argument(
        "--crypto-only", action="store_true", help="also time the bare crypto steps"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds, each running every implementation once"
    )
    args = parser.parse_args(argv)
    modes = [Mode(m.strip()) for m in args.modes.split(",") if m.strip()]
    structures = () if args.skip_openmined else ("RAW", "GCS")

    sets = planted_sets(args.size, args.overlap, args.seed)
    expected = len(sets.expected)
    where = "in this process" if args.in_process else "as separate processes"
    print(
        f"balanced PSI: {args.size} x {args.size} phone numbers, {expected} in common; "
        f"{os.cpu_count()} cores; broker and carrier {where}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-psi-") as tmp:
        start = time.perf_counter()
        with consortium_serving(Path(tmp), sets, args.in_process) as (consortium, pids):
            print(f"setup (PKI, records, processes): {time.perf_counter() - start:.1f} s")
            # Rounds interleave the implementations, so that a burst of other work on the
            # machine does not land on one of them only.
            for _round in range(args.repeat):
                for mode in modes:
                    rows.append(ours_through_broker(consortium, pids, sets, mode))
                    rows.append(ours_direct(sets, mode))
                    rows.extend(openmined(sets, mode, structure) for structure in structures)
                    if mode is Mode.INTERSECTION and args.crypto_only:
                        rows.append(crypto_only(sets, 1))
                        rows.append(crypto_only(sets, os.cpu_count() or 1))
                    print(f"  {mode.value}: round done, load {os.getloadavg()[0]:.1f}", flush=True)
    report(rows, modes, expected)


def report(rows: list[Row], modes: list[Mode], expected: int) -> None:
    """Best and median wall-clock (and the CPU of the best) per implementation."""
    print(f"{'mode':<13} {'implementation':<34} {'best s':>7} {'median':>7} {'CPU s':>7}")
    best: dict[tuple[Mode, str], Row] = {}
    for mode in modes:
        names = list(dict.fromkeys(r.name for r in rows if r.mode is mode))
        for name in names:
            runs = [r for r in rows if r.mode is mode and r.name == name]
            wrong = [r.found for r in runs if r.found != expected]
            assert not wrong, f"{name} found {wrong}, expected {expected}"
            fastest = min(runs, key=lambda r: r.seconds)
            best[mode, name] = fastest
            median = statistics.median(r.seconds for r in runs)
            print(
                f"{mode.value:<13} {name:<34} {fastest.seconds:>7.2f} {median:>7.2f} "
                f"{fastest.cpu_seconds:>7.2f}"
            )
    for mode in modes:
        ours = best[mode, "ours, whole protocol via broker"]
        theirs = [row for (m, name), row in best.items() if m is mode and "OpenMined" in name]
        if theirs:
            reference = min(theirs, key=lambda r: r.seconds)
            print(
                f"{mode.value}: {reference.name} / ours (whole protocol) = "
                f"{reference.seconds / ours.seconds:.2f}x wall-clock, "
                f"{reference.cpu_seconds / ours.cpu_seconds:.2f}x CPU (best runs)"
            )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
