"""Faults with real processes: the broker killed mid-burst, a bank killed mid-query.

Each test starts the broker and nodes as separate processes through the CLI and kills
them with SIGKILL, as a crash or an operator's `kill -9` would.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow
from gateway.db import make_engine
from gateway.demo_data import load_responder
from gateway.envelope.build import Draft
from gateway.identifiers import normalise
from gateway.localnet import Consortium, Processes, processes
from gateway.pki.keys import read_hex
from gateway.synthetic import generate_bank_records
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.actions.holds import HoldRow
from nodes.actions.orders import request_payload
from nodes.journal import InboundRow
from nodes.matching import query_responders, refresh_index
from tests.actions.seed import seed_accounts
from tests.consortium import client

pytestmark = pytest.mark.slow

ACCOUNT = "6222020200112233445"
SENDERS = 10
PER_SENDER = 50
"""Half the broker's hourly quota of action requests of one kind: a request counted before
the kill and sent again after it counts twice (quotas survive the restart)."""
BURST = SENDERS * PER_SENDER


def police_nodes() -> tuple[tuple[str, str, str], ...]:
    police = tuple((f"police-{i}", "police", f"Police {i}") for i in range(1, SENDERS + 1))
    return (*police, ("bank-a", "bank", "Bank A"))


def signed_burst(c: Consortium) -> list[pb.Envelope]:
    """Freeze requests from every police node, signed and sealed before the clock runs."""
    bank = c.pki.directory().get("bank-a")
    assert bank is not None
    payload = request_payload("bank_account", ACCOUNT)
    envelopes = []
    for i in range(1, SENDERS + 1):
        key = c.pki.bundle(f"police-{i}").keys().signing
        for n in range(PER_SENDER):
            envelopes.append(
                Draft(
                    sender=f"police-{i}",
                    recipients=["bank-a"],
                    kind="STOP_PAYMENT",
                    payload=payload,
                    case_ref="C-BURST",
                    legal_basis="art. 11",
                    seal_to=bank.seal_key,
                    lifetime_ms=3_600_000,
                    terms=pb.ActionTerms(
                        action="STOP_PAYMENT",
                        amount_minor=1 + n,
                        duration_hours=24,
                        issuing_officer="officer-7",
                        approving_officer="chief-2",
                    ),
                ).sign(key)
            )
    return envelopes


def stubs(c: Consortium) -> dict[str, rpc.BrokerStub]:
    result = {}
    for i in range(1, SENDERS + 1):
        bundle = c.pki.bundle(f"police-{i}")
        tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
        channel = secure_channel(f"127.0.0.1:{c.broker_port}", "broker", tls)
        result[f"police-{i}"] = rpc.BrokerStub(channel)
    return result


@pytest.fixture
def burst_net(tmp_path: Path) -> Iterator[tuple[Consortium, Processes]]:
    c = Consortium.create(tmp_path, police_nodes())
    seed_accounts(c, "bank-a", {ACCOUNT: 10**12})
    with processes(c) as procs:
        yield c, procs


def test_broker_killed_mid_burst_loses_no_acknowledged_request(
    burst_net: tuple[Consortium, Processes],
) -> None:
    c, procs = burst_net
    procs.start_broker()
    procs.start_node("bank-a")
    envelopes = signed_burst(c)
    ids = {pb.Header.FromString(e.header).message_id: e for e in envelopes}
    acknowledged_before_kill: set[str] = set()
    lock = threading.Lock()
    killed = threading.Event()
    channels = stubs(c)

    def send(envelope: pb.Envelope) -> None:
        header = pb.Header.FromString(envelope.header)
        try:
            channels[header.sender].Submit(envelope, timeout=10)
        except grpc.RpcError:
            return
        with lock:
            if not killed.is_set():
                acknowledged_before_kill.add(header.message_id)
                if len(acknowledged_before_kill) == BURST // 2:
                    killed.set()
                    procs.kill("broker", signal.SIGKILL)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, envelopes))
    assert killed.is_set() and len(acknowledged_before_kill) >= BURST // 2

    # Restart, then resend everything not acknowledged: a request the broker stored
    # before dying is refused as a replay (it needs no second copy); the rest are new.
    procs.start_broker()
    channels = stubs(c)
    stored_or_new = 0
    for message_id, envelope in ids.items():
        if message_id in acknowledged_before_kill:
            continue
        sender = pb.Header.FromString(envelope.header).sender
        try:
            channels[sender].Submit(envelope, timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.ALREADY_EXISTS, exc.details()
        stored_or_new += 1
    assert stored_or_new == BURST - len(acknowledged_before_kill)

    bank = make_engine(c.node_config("bank-a").database)
    deadline = time.monotonic() + 50
    held: set[str] = set()
    while time.monotonic() < deadline:
        with Session(bank) as s:
            held = set(s.scalars(select(HoldRow.request_id)).all())
        if held >= set(ids):
            break
        time.sleep(0.5)
    assert held == set(ids), f"{len(set(ids) - held)} requests never reached the bank"
    with Session(bank) as s:
        executions = s.scalar(
            select(func.count()).select_from(InboundRow).where(InboundRow.kind == "STOP_PAYMENT")
        )
    assert executions == BURST  # exactly once each

    broker = make_engine(c.broker_database)
    with Session(broker) as s:
        audited = {
            entry["message_id"]
            for entry in (json.loads(leaf) for leaf in s.scalars(select(AuditEntryRow.leaf)))
            if entry.get("type") == "decision" and entry.get("decision") == "ALLOW"
        }
    assert acknowledged_before_kill <= audited


def test_a_bank_killed_mid_query_gives_a_clean_error_not_a_hang(tmp_path: Path) -> None:
    c = Consortium.create(tmp_path)
    rows = generate_bank_records(3_000, 5)
    load_responder(c, "bank-a", rows, 5)
    config = c.node_config("bank-a")
    key = read_hex(c.pki.bundle("bank-a").oprf_key, 32)
    refresh_index(make_engine(config.database), config, key)
    wanted = [normalise(r.kind, r.value) for r in rows[:1000]]
    with processes(c) as procs:
        procs.start_broker()
        procs.start_node("bank-a")
        police = client(c, "police-1")
        try:
            # A PING first, so the broker holds an open channel to the bank; then the bank
            # is frozen, so it cannot answer before it dies however fast the machine is:
            # the query reaches a bank that is then killed, mid-query.
            ping = Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
            assert police.client.submit(ping).answers
            procs.procs["bank-a"].send_signal(signal.SIGSTOP)
            killer = threading.Timer(1.0, procs.kill, args=("bank-a", signal.SIGKILL))
            killer.start()
            started = time.monotonic()
            [outcome] = query_responders(
                police, wanted, ["bank-a"], case_ref="C-1", legal_basis="art. 11"
            )
            took = time.monotonic() - started
            killer.join()
        finally:
            police.client.close()
    assert not outcome.ok
    assert outcome.error  # says why, without any identifier
    assert not any(identifier.value in outcome.error for identifier in wanted)
    assert took < 30, f"the query waited {took:.0f} s"
