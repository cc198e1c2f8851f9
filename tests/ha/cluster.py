"""Two broker processes over one PostgreSQL database, with police and bank processes.

The fault tests' harness: each broker is a `gateway broker serve` process of its own,
configured by file; the directory lists both, so the nodes and the police client in the
test spread their calls over them and fail over when one is down.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow
from gateway.db import make_engine
from gateway.localnet import Consortium, Processes, gateway_command, processes
from gateway.resources import POLICIES
from gateway.synthetic import domestic_account_number
from nodes.actions.holds import HoldRow
from nodes.actions.police import ActionRequestRow, issue_action
from nodes.journal import InboundRow
from nodes.runtime import NodeContext
from tests.actions.seed import ACCOUNT, seed_accounts, spec
from tests.consortium import client
from tests.postgres import fresh_schema

BALANCE = 10**12
ACCOUNTS = [
    domestic_account_number(random.Random(f"ha:{i}"))
    for i in range(int(os.environ.get("GATEWAY_HA_BURST", "1000")))
]
"""An account may be stopped twice (issue 13): each request of a burst stops its own."""
QUOTAS = (
    ("context.sender_kind_last_hour > 100 }", "context.sender_kind_last_hour > 1000000 }"),
    ("context.sender_actions_last_hour > 200 }", "context.sender_actions_last_hour > 1000000 }"),
)
"""The burst is one police node's thousand requests: above the hourly action quotas."""


def burst_policies(root: Path) -> Path:
    """The shipped policies with the broker's per-sender action quotas raised for the
    burst, in a folder for `PkiFolder.sign_policies`."""
    folder = root / "burst-policies"
    shutil.copytree(POLICIES, folder)
    text = (folder / "broker.cedar").read_text()
    for old, new in QUOTAS:
        assert old in text, f"the broker policy no longer says {old!r}"
        text = text.replace(old, new)
    (folder / "broker.cedar").write_text(text)
    return folder


@dataclass
class Cluster:
    consortium: Consortium
    procs: Processes
    configs: list[Path]
    police: NodeContext
    url: str

    def restart(self, index: int, sig: int) -> None:
        name = "broker" if index == 0 else f"broker-{index + 1}"
        self.procs.kill(name, sig)
        self.procs.start_broker_process(index, self.configs[index])


@contextmanager
def cluster(root: Path, **settings: str | int | float) -> Iterator[Cluster]:
    with fresh_schema() as url:
        c = Consortium.create(root, database_urls={"broker": url})
        c.add_brokers(2)
        seed_accounts(c, "bank-a", {ACCOUNT: BALANCE} | dict.fromkeys(ACCOUNTS, BALANCE))
        c.pki.sign_policies(burst_policies(root))
        configs = [c.broker_config_file(i, **settings) for i in (0, 1)]
        with processes(c) as procs:
            for i, config in enumerate(configs):
                procs.start_broker_process(i, config)
            procs.start_node("police-1")
            procs.start_node("bank-a")
            police = client(c, "police-1")
            try:
                yield Cluster(c, procs, configs, police, url)
            finally:
                police.client.close()


@dataclass
class Burst:
    """Stop-payment requests sent from several threads; who was acknowledged, who failed."""

    acknowledged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, police: NodeContext, count: int, threads: int = 8) -> None:
        def one(i: int) -> None:
            try:
                result = issue_action(
                    police,
                    spec(
                        case_ref=f"C-HA-{i % 20}",
                        amount_minor=100,
                        identifier=ACCOUNTS[i % len(ACCOUNTS)],
                    ),
                )
            except Exception as exc:  # counted and shown by the test
                with self.lock:
                    self.failed.append(f"{type(exc).__name__}: {exc}")
                return
            with self.lock:
                self.acknowledged.append(result.message_id)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(count)))

    def when(self, acknowledged: int, action: Callable[[], None]) -> threading.Thread:
        """Run `action` in a thread once `acknowledged` requests were acknowledged."""

        def wait_then_act() -> None:
            while True:
                with self.lock:
                    if len(self.acknowledged) + len(self.failed) >= acknowledged:
                        break
                threading.Event().wait(0.02)
            action()

        thread = threading.Thread(target=wait_then_act)
        thread.start()
        return thread


def police_states(c: Consortium, ids: list[str]) -> dict[str, str]:
    engine = make_engine(c.node_config("police-1").database)
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(ActionRequestRow.request_id, ActionRequestRow.state).where(
                    ActionRequestRow.request_id.in_(ids)
                )
            ).all()
    finally:
        engine.dispose()
    return {str(i): str(state) for i, state in rows}


def bank_holds(c: Consortium) -> tuple[list[str], int]:
    """The requests the bank holds money for, and how many stop-payments it took in."""
    engine = make_engine(c.node_config("bank-a").database)
    try:
        with Session(engine) as s:
            holds = [str(r) for r in s.scalars(select(HoldRow.request_id))]
            inbound = s.scalar(
                select(func.count())
                .select_from(InboundRow)
                .where(InboundRow.kind == "STOP_PAYMENT")
            )
    finally:
        engine.dispose()
    return holds, int(inbound or 0)


def audit_entries(url: str) -> list[dict[str, object]]:
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            leaves = s.scalars(select(AuditEntryRow.leaf).order_by(AuditEntryRow.idx)).all()
    finally:
        engine.dispose()
    return [json.loads(leaf) for leaf in leaves]


def verify_log(c: Consortium, url: str) -> subprocess.CompletedProcess[str]:
    """`gateway audit verify` over the broker's database, as a compliance officer runs it."""
    return subprocess.run(
        gateway_command("audit", "verify", "--database", url, "--pki", str(c.root / "pki")),
        capture_output=True,
        text=True,
        timeout=300,
    )
