"""`python -m gateway.healthcheck`, the image's HEALTHCHECK: it finds the server a serve
command line runs and asks its gRPC health service over mTLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.healthcheck import NotServing, Target, main, probe, target
from gateway.localnet import Consortium, free_port


def test_a_node_command_line_names_its_config(consortium: Consortium) -> None:
    config = consortium.config_path("bank-a")
    argv = [
        "/opt/gateway/bin/python",
        "/opt/gateway/bin/gateway",
        "node",
        "serve",
        "--config",
        str(config),
    ]
    server = target(argv)
    bundle = consortium.pki.bundle("bank-a").folder
    assert server == Target("bank-a", f"127.0.0.1:{consortium.node_ports['bank-a']}", bundle)


def test_a_broker_command_line_names_its_flags_or_their_defaults() -> None:
    argv = ["gateway", "broker", "serve", "--pki=/var/gateway/pki", "--listen", "0.0.0.0:7100"]
    assert target(argv) == Target("broker", "0.0.0.0:7100", Path("/var/gateway/pki/nodes/broker"))
    assert target(["gateway", "broker", "serve"]) == Target(
        "broker", "127.0.0.1:7100", Path("var/pki/nodes/broker")
    )
    exported = ["broker", "serve", "--bundle", "/run/gateway/bundle", "--listen", "0.0.0.0:7100"]
    assert target(exported) == Target("broker", "0.0.0.0:7100", Path("/run/gateway/bundle"))


def test_what_is_not_a_serve_command_is_unhealthy() -> None:
    with pytest.raises(NotServing, match="not a serve command"):
        target(["/bin/sh", "/app/deploy/compose-init.sh"])


def test_serving_broker_and_node_are_healthy(
    network: Consortium, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = ["broker", "serve", "--pki", str(network.root / "pki")]
    broker += ["--listen", f"0.0.0.0:{network.broker_port}"]  # asked on loopback
    assert main(broker) == 0
    assert main(["node", "serve", "--config", str(network.config_path("bank-a"))]) == 0
    assert capsys.readouterr().out.splitlines() == ["broker serving", "bank-a serving"]


def test_a_server_that_is_down_is_unhealthy(consortium: Consortium) -> None:
    bundle = consortium.pki.bundle("bank-a").folder
    with pytest.raises(NotServing, match="UNAVAILABLE"):
        probe(Target("bank-a", f"127.0.0.1:{free_port()}", bundle))
