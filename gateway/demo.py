"""`gateway demo`: a whole consortium on loopback, run as separate processes, then stopped.

Each step prints what it shows. The walking skeleton shows identity and routing: a
signed PING from the police node reaches every bank and carrier through the broker,
each answers with its own signed PONG, and every step lands in the audit log.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gateway.envelope.build import Draft
from gateway.localnet import Consortium, Processes, processes
from nodes.runtime import open_node

console = Console()


def start_all(consortium: Consortium, procs: Processes) -> None:
    with console.status("starting broker and nodes") as status:
        procs.start_broker()
        for node_id in consortium.node_ports:
            status.update(f"starting {node_id}")
            procs.start_node(node_id)
    table = Table(title="Consortium on loopback (mTLS)")
    for column in ("node", "role", "endpoint", "pid"):
        table.add_column(column)
    broker_pid = str(procs.procs["broker"].pid)
    table.add_row("broker", "broker", f"127.0.0.1:{consortium.broker_port}", broker_pid)
    for node_id, port in consortium.node_ports.items():
        pid = str(procs.procs[node_id].pid)
        table.add_row(node_id, consortium.roles[node_id], f"127.0.0.1:{port}", pid)
    console.print(table)


def ping_everyone(consortium: Consortium) -> int:
    """Police pings every responder; returns how many answered with a verified PONG."""
    ctx = open_node(consortium.node_config("police-1"))
    responders = [n for n, r in consortium.roles.items() if r in ("bank", "carrier")]
    try:
        result = ctx.client.submit(
            Draft(
                sender="police-1",
                recipients=responders,
                kind="PING",
                payload=b"{}",
                purpose="connectivity check",
            )
        )
    finally:
        ctx.client.close()
    table = Table(title=f"PING from police-1: audit entry {result.leaf_index}, {result.decision}")
    table.add_column("responder")
    table.add_column("signed answer (verified)")
    for header, payload in result.answers:
        table.add_row(header.sender, json.dumps(json.loads(payload)))
    for name in result.undelivered:
        table.add_row(name, "[red]no answer[/]")
    console.print(table)
    return len(result.answers)


def run_demo(folder: Path | None = None, keep: bool = False) -> int:
    """Run the scenario; returns a process exit code (0 when every step worked)."""
    root = folder or Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    try:
        with console.status("creating the consortium: CA, node keys, signed directory"):
            consortium = Consortium.create(root)
        console.print(f"consortium [bold]{consortium.name}[/] in {root}")
        with processes(consortium) as procs:
            start_all(consortium, procs)
            answered = ping_everyone(consortium)
        expected = sum(1 for r in consortium.roles.values() if r in ("bank", "carrier"))
        ok = answered == expected
        console.print(
            "[bold green]demo complete[/]" if ok else f"[bold red]{answered}/{expected} answered[/]"
        )
        return 0 if ok else 1
    finally:
        if not keep and folder is None:
            shutil.rmtree(root, ignore_errors=True)
