"""The deployment files hang together: compose services, their files, the Dockerfile."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


def compose() -> dict[str, object]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_broker_every_role_postgres_and_collector() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    assert {"broker", "postgres", "otel-collector", "init"} <= set(services)
    roles = {name.split("-")[0] for name in services}
    assert {"police", "bank", "carrier", "regulator"} <= roles


def test_every_node_config_the_compose_file_names_is_written_by_init() -> None:
    init = (ROOT / "deploy" / "compose-init.sh").read_text()
    services = compose()["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        command = service.get("command", [])
        if "--config" in command:
            path = command[command.index("--config") + 1]
            node = Path(path).stem
            assert f"{node}:" in init, f"{name}: compose-init.sh does not create {path}"


def test_bind_mounted_files_exist() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="no docker compose client on this machine",
)
def test_docker_compose_config_accepts_the_file() -> None:
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_every_gateway_service_exports_telemetry_to_the_collector() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        if "command" in service and name not in ("postgres", "otel-collector"):
            env = service.get("environment", {})
            assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://otel-collector:4317", name
