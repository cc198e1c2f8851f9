"""The operations endpoint of a running broker process: /healthz, /readyz, /metrics."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import create_engine

from gateway.envelope.build import Draft
from gateway.localnet import Consortium, broker_command, free_port
from gateway.ops_http import OpsServer, database_readiness
from nodes.runtime import serve_node
from tests.consortium import client
from tests.waiting import wait_for

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def broker(consortium: Consortium) -> Iterator[str]:
    """A broker process with its operations endpoint; yields the endpoint's base URL."""
    ops_port = free_port()
    proc = subprocess.Popen(
        broker_command(
            consortium,
            str(consortium.root / "ops-broker.db"),
            "--ops-listen",
            f"127.0.0.1:{ops_port}",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{ops_port}"

    def up() -> bool:
        try:
            return get(f"{base}/healthz")[0] == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=30)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_liveness_and_readiness(broker: str) -> None:
    assert get(f"{broker}/healthz") == (200, "ok\n")
    assert get(f"{broker}/readyz") == (200, "ready\n")
    assert get(f"{broker}/nothing")[0] == 404


def test_metrics_count_the_messages_the_broker_decided(broker: str, consortium: Consortium) -> None:
    police = client(consortium, "police-1")
    try:
        draft = Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
        police.client.submit(draft)  # bank-a is not serving: decided, then undelivered
    finally:
        police.client.close()
    status, body = get(f"{broker}/metrics")
    assert status == 200
    [line] = [
        line
        for line in body.splitlines()
        if line.startswith("gateway_messages_total{") and 'gateway_kind="PING"' in line
    ]
    assert 'gateway_decision="ALLOW"' in line and line.endswith(" 1.0")
    assert "gateway_submit_duration_milliseconds_bucket" in body


def test_readiness_fails_when_the_database_does_not_answer(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Readiness names what is wrong: here a database that cannot be opened."""
    missing = tmp_path_factory.mktemp("ops") / "no" / "such" / "folder" / "db.sqlite"
    engine = create_engine(f"sqlite:///{missing}")
    server = OpsServer(f"127.0.0.1:{free_port()}", database_readiness(engine))
    try:
        status, body = get(f"http://127.0.0.1:{server.port}/readyz")
    finally:
        server.close()
        engine.dispose()
    assert status == 503
    assert body == "not ready: database unreachable (OperationalError)\n"


def test_readiness_holds_when_the_database_answers() -> None:
    engine = create_engine("sqlite://")
    server = OpsServer(f"127.0.0.1:{free_port()}", database_readiness(engine))
    try:
        assert get(f"http://127.0.0.1:{server.port}/readyz") == (200, "ready\n")
    finally:
        server.close()
        engine.dispose()


def test_a_node_serves_the_same_endpoint(broker: str, consortium: Consortium) -> None:
    ops_port = free_port()
    node = serve_node(replace(consortium.node_config("bank-a"), ops_listen=f"127.0.0.1:{ops_port}"))
    try:
        assert get(f"http://127.0.0.1:{ops_port}/healthz") == (200, "ok\n")
        assert get(f"http://127.0.0.1:{ops_port}/readyz") == (200, "ready\n")
        assert get(f"http://127.0.0.1:{ops_port}/metrics")[0] == 200
    finally:
        node.stop(0)
    with pytest.raises(OSError):
        get(f"http://127.0.0.1:{ops_port}/healthz")  # closed with the node
