"""A local consortium on loopback: PKI, configuration files, and its processes.

Used by `gateway demo` and by the tests, so that what the demo shows is what is tested:
a consortium created under one folder, and broker and nodes run as separate processes
through the same CLI an operator uses.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.config import BrokerConfig, NodeConfig, load_config
from gateway.crypto.oprf import generate_key_pair
from gateway.node_config_template import render
from gateway.pki.store import PkiFolder
from gateway.transport import TlsFiles, secure_channel

CONSORTIUM = "demo.gateway"

DEFAULT_NODES = (
    ("police-1", "police", "City Police"),
    ("bank-a", "bank", "Bank A"),
    ("bank-b", "bank", "Bank B"),
    ("carrier-1", "carrier", "Carrier One"),
    ("regulator-1", "regulator", "Regulator"),
)


DEFAULT_JURISDICTIONS = {"police-1": ("310000",)}
"""The demo's police node answers for Shanghai (GB/T 2260 310000), so alerts have a
recipient; other nodes of a test consortium have none unless a test sets them."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Consortium:
    """PKI and configuration files of a consortium under `root`."""

    root: Path
    broker_port: int
    node_ports: dict[str, int] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    broker_database: str = ""
    name: str = CONSORTIUM
    broker_ports: list[int] = field(default_factory=list)
    """Every broker process's port when the broker runs as several (`add_brokers`)."""
    console_ports: dict[str, int] = field(default_factory=dict)
    """Each node's staff console port, when created with consoles=True."""

    @property
    def pki(self) -> PkiFolder:
        return PkiFolder(self.root / "pki")

    @classmethod
    def create(
        cls,
        root: Path,
        nodes: tuple[tuple[str, str, str], ...] = DEFAULT_NODES,
        *,
        database_urls: dict[str, str] | None = None,
        name: str = CONSORTIUM,
        consoles: bool = False,
    ) -> Consortium:
        urls = database_urls or {}
        consortium = cls(root=root, broker_port=free_port(), name=name)
        root.mkdir(parents=True, exist_ok=True)
        pki = consortium.pki
        pki.init(name)
        pki.issue(
            "broker",
            "broker",
            agency="Consortium broker",
            endpoint=f"127.0.0.1:{consortium.broker_port}",
            dev=True,
        )
        consortium.broker_database = urls.get("broker", str(root / "broker.db"))
        for node_id, role, agency in nodes:
            port = free_port()
            consortium.node_ports[node_id] = port
            consortium.roles[node_id] = role
            if consoles:
                consortium.console_ports[node_id] = free_port()
            pki.issue(
                node_id,
                role,
                agency=agency,
                endpoint=f"127.0.0.1:{port}",
                oprf_key_factory=generate_key_pair,
                dev=True,
                jurisdictions=DEFAULT_JURISDICTIONS.get(node_id, ()) if role == "police" else (),
            )
            config_text = render(
                node=node_id,
                role=role,
                listen=f"127.0.0.1:{port}",
                broker=f"127.0.0.1:{consortium.broker_port}",
                bundle=pki.bundle(node_id).folder,
                database=urls.get(node_id, str(root / f"{node_id}.db")),
                console_listen=(
                    f"127.0.0.1:{consortium.console_ports[node_id]}" if consoles else ""
                ),
            )
            consortium.config_path(node_id).write_text(config_text)
        return consortium

    def config_path(self, node_id: str) -> Path:
        return self.root / f"{node_id}.toml"

    def node_config(self, node_id: str) -> NodeConfig:
        return load_config(NodeConfig, self.config_path(node_id))

    def add_brokers(self, count: int) -> list[int]:
        """Run the broker as `count` processes (one PostgreSQL database): a port for
        each, all listed as the broker's endpoints in a newly signed directory."""
        self.broker_ports = [self.broker_port, *(free_port() for _ in range(count - 1))]
        self.pki.set_endpoints("broker", [f"127.0.0.1:{port}" for port in self.broker_ports])
        return self.broker_ports

    def broker_config_file(self, index: int = 0, **settings: str | int | float) -> Path:
        """A TOML file for broker process `index`, with `settings` beyond the usual."""
        ports = self.broker_ports or [self.broker_port]
        values: dict[str, str | int | float] = {
            "node_id": "broker",
            "listen": f"127.0.0.1:{ports[index]}",
            "database": self.broker_database,
            "pki_bundle": str(self.pki.bundle("broker").folder),
            "directory_folder": str(self.root / "pki"),
            **settings,
        }
        path = self.root / f"{broker_name(index)}.toml"
        path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
        return path

    def broker_config(self, **overrides: object) -> BrokerConfig:
        values: dict[str, object] = {
            "node_id": "broker",
            "listen": f"127.0.0.1:{self.broker_port}",
            "database": self.broker_database,
            "pki_bundle": self.pki.bundle("broker").folder,
            "directory_folder": self.root / "pki",
        }
        values.update(overrides)
        return BrokerConfig(**values)  # type: ignore[arg-type]


START_TIMEOUT_S = 30.0


def broker_name(index: int) -> str:
    """The process name of broker process `index`: "broker", then "broker-2", ..."""
    return "broker" if index == 0 else f"broker-{index + 1}"


def gateway_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def broker_command(consortium: Consortium, database: str, *options: str) -> list[str]:
    """`gateway broker serve` for the consortium's broker on `database`, with `options`."""
    return gateway_command(
        "broker",
        "serve",
        "--dev",
        "--pki",
        str(consortium.root / "pki"),
        "--listen",
        f"127.0.0.1:{consortium.broker_port}",
        "--database",
        database,
        *options,
    )


@dataclass
class Processes:
    """The processes started for one test, by node id, with their log files."""

    consortium: Consortium
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start_broker(self, env: dict[str, str] | None = None) -> None:
        """Start the broker; `env` adds variables (a test's crash point, say)."""
        c = self.consortium
        self._start(
            "broker",
            broker_command(c, c.broker_database),
            c.broker_port,
            "broker",
            env,
        )

    def start_broker_process(self, index: int, config: Path) -> None:
        """Start broker process `index` of several, from its configuration file."""
        ports = self.consortium.broker_ports or [self.consortium.broker_port]
        command = gateway_command("broker", "serve", "--dev", "--config", str(config))
        self._start(broker_name(index), command, ports[index], "broker")

    def start_node(self, node_id: str, env: dict[str, str] | None = None) -> None:
        """Start a node; `env` adds variables (a test's crash point, say)."""
        c = self.consortium
        command = gateway_command("node", "serve", "--dev", "--config", str(c.config_path(node_id)))
        self._start(node_id, command, c.node_ports[node_id], node_id, env)

    def _start(
        self,
        name: str,
        command: list[str],
        port: int,
        server_name: str,
        env: dict[str, str] | None = None,
    ) -> None:
        log = self.consortium.root / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            self.procs[name] = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        self._wait_serving(name, port, server_name)

    def _wait_serving(self, name: str, port: int, server_name: str) -> None:
        """Poll the standard health service over mTLS until the process serves."""
        bundle = self.consortium.pki.bundle("broker")  # any member may probe health
        tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.logs[name].read_text()[-2000:]}")
            with secure_channel(f"127.0.0.1:{port}", server_name, tls) as channel:
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not serve within {START_TIMEOUT_S} s")

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def wait_exit(self, name: str, timeout_s: float) -> int:
        """Wait for a process to end by itself (a crash it was told to have); its code."""
        proc = self.procs.pop(name)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@contextmanager
def processes(consortium: Consortium) -> Iterator[Processes]:
    """Processes started inside the block are stopped when it ends, whatever happens."""
    running = Processes(consortium)
    try:
        yield running
    finally:
        running.stop_all()
