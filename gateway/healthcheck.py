"""`python -m gateway.healthcheck`: is the broker or node of this container serving?

The image's HEALTHCHECK runs it without arguments: it reads the serve command that the
container runs (PID 1's command line) for the listen address and the key bundle, and
asks the standard gRPC health service over mTLS, presenting the server's own
certificate (any member may ask). With arguments, they are such a command line:
`node serve --config FILE` or `broker serve [--config FILE | --bundle DIR | --pki DIR
--node ID] [--listen HOST:PORT]`. Exit 0 when serving; 1, with one line saying why, otherwise.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.config import BrokerConfig, ConfigError, NodeConfig, load_config
from gateway.transport import TlsFiles, secure_channel

TIMEOUT_S = 5.0
ANY_ADDRESS = {"", "0.0.0.0", "[::]", "::"}


class NotServing(Exception):
    """The server could not be asked, or answered that it is not serving."""


@dataclass(frozen=True)
class Target:
    """Where a server listens and the bundle it (and so this probe) holds."""

    node_id: str
    address: str
    bundle: Path


def target(argv: list[str]) -> Target:
    """The server a `gateway ... serve` command line runs."""
    if "serve" not in argv or argv.index("serve") == 0:
        raise NotServing(f"not a serve command: {' '.join(argv) or '(empty)'}")
    kind = argv[argv.index("serve") - 1]
    options = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    for name in ("--config", "--pki", "--bundle", "--node", "--listen"):
        options.add_argument(name)
    known, _ = options.parse_known_args(argv[argv.index("serve") + 1 :])
    try:
        if kind == "node" and known.config:
            node = load_config(NodeConfig, Path(known.config))
            return Target(node.node_id, node.listen, node.pki_bundle)
        if kind == "broker" and known.config:
            broker = load_config(BrokerConfig, Path(known.config))
            return Target(broker.node_id, broker.listen, broker.pki_bundle)
    except ConfigError as exc:
        raise NotServing(str(exc)) from exc
    if kind == "broker":  # the defaults of `gateway broker serve`
        node_id = known.node or "broker"
        bundle = (
            Path(known.bundle) if known.bundle else Path(known.pki or "var/pki") / "nodes" / node_id
        )
        return Target(node_id, known.listen or "127.0.0.1:7100", bundle)
    raise NotServing(f"cannot tell what `{' '.join(argv)}` serves")


def probe(server: Target) -> None:
    """Ask the server's health service over mTLS; raise NotServing unless it serves."""
    host, _, port = server.address.rpartition(":")
    address = f"{'127.0.0.1' if host in ANY_ADDRESS else host}:{port}"
    tls = TlsFiles(server.bundle / "tls.crt", server.bundle / "tls.key", server.bundle / "ca.crt")
    try:
        with secure_channel(address, server.node_id, tls) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S
            )
    except OSError as exc:
        raise NotServing(f"cannot read the bundle {server.bundle}: {exc}") from exc
    except grpc.RpcError as exc:
        raise NotServing(f"{server.node_id} at {address}: {exc.code().name}") from exc  # type: ignore[attr-defined]
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        raise NotServing(f"{server.node_id} at {address}: {status}")


def container_command() -> list[str]:
    """The command line of PID 1, the container's `gateway ... serve`."""
    raw = Path("/proc/1/cmdline").read_bytes()
    return [part.decode() for part in raw.split(b"\0") if part]


def main(argv: list[str]) -> int:
    try:
        server = target(argv or container_command())
        probe(server)
    except (NotServing, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{server.node_id} serving")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
