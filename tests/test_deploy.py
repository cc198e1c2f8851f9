"""The deployment files hang together: compose services, their files, the Dockerfile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def test_compose_runs_two_brokers_on_one_database_listed_in_the_directory() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    brokers = [s for s in services.values() if s.get("command", [])[:2] == ["broker", "serve"]]
    assert len(brokers) == 2
    databases = {b["command"][b["command"].index("--database") + 1] for b in brokers}
    assert len(databases) == 1 and next(iter(databases)).startswith("postgresql")
    init = (ROOT / "deploy" / "compose-init.sh").read_text()
    assert "--endpoint broker:7100 --endpoint broker-2:7100" in init


def test_bind_mounted_files_exist() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def compose_command() -> list[str]:
    """A real compose implementation: Docker's plugin, or Debian's `docker-compose`.

    `.ci/run` installs the latter, so in CI the validation below never skips.
    """
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    if found := shutil.which("docker-compose"):
        return [found]
    if os.environ.get("CI"):
        pytest.fail("no compose implementation: .ci/run installs docker-compose")
    pytest.skip("no compose implementation on this machine (apt-get install docker-compose)")


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(), "-f", str(path), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_validates_the_file(tmp_path: Path) -> None:
    done = compose_config(COMPOSE)
    assert done.returncode == 0, done.stderr
    # The validator validates: a service with a misspelt key is refused.
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    command:", "    comand:", 1))
    (tmp_path / "deploy").symlink_to(ROOT / "deploy")
    refused = compose_config(broken)
    assert refused.returncode != 0 and "comand" in refused.stderr, refused.stderr


def test_nodes_wait_for_a_healthy_broker_and_init_has_no_healthcheck() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        if "node" in service.get("command", []):
            assert service["depends_on"]["broker"] == {"condition": "service_healthy"}, name
    assert services["init"]["healthcheck"] == {"disable": True}


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per stage."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        if stages:  # global ARGs before the first FROM belong to no stage
            stages[-1].append(line)
    return stages


def test_image_installs_the_built_wheel_and_runs_unprivileged_with_a_healthcheck() -> None:
    *builders, final = dockerfile_stages()
    assert builders, "a build stage makes the wheel"
    assert any("pip wheel" in line for line in builders[0])
    text = " ".join(final)
    assert (
        "COPY --from=build /dist" in text
        and "pip install --no-cache-dir --no-deps /tmp/dist/*.whl" in text
    )
    assert "--require-hashes --only-binary=:all: -r /tmp/image.lock" in text
    assert "-e " not in text and "COPY gateway" not in text, "the image runs the wheel only"
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    (check,) = [line for line in final if line.startswith("HEALTHCHECK ")]
    assert 'CMD ["python", "-m", "gateway.healthcheck"]' in check
    assert (ROOT / "gateway" / "healthcheck.py").exists()


def test_every_stage_starts_from_the_one_pinnable_base_image() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    (arg,) = [line for line in lines if line.startswith("ARG PYTHON_IMAGE=")]
    image = arg.split("=", 1)[1]
    assert image.startswith("python:3.11-slim")
    if "@" in image:  # pinned by `make pin-base-image`
        assert re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", image), image
    for stage in dockerfile_stages():
        assert stage[0].startswith("FROM ${PYTHON_IMAGE}"), stage[0]


def test_the_image_lock_pins_every_runtime_dependency_with_hashes() -> None:
    text = (ROOT / "requirements" / "image.lock").read_text().replace("\\\n", " ")
    pins = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    assert pins
    for line in pins:
        assert re.match(r"^[a-z0-9._-]+==\S+ ", line) and "--hash=sha256:" in line, line
    names = {line.split("==")[0] for line in pins}
    assert {"grpcio", "protobuf", "cryptography", "pynacl", "cedarpy"} <= names


def locked_names(lock: str) -> set[str]:
    text = (ROOT / "requirements" / lock).read_text()
    return {
        line.split("==")[0]
        for line in text.splitlines()
        if "==" in line[:80] and not line.startswith(("#", " "))
    }


def declared_names(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(spec).name) for spec in specs}


def test_the_locks_pin_every_dependency_pyproject_declares() -> None:
    """A dependency added to pyproject.toml without `make lock` would be missing from a
    locked install (CI, the image) only."""
    assert declared_names() - locked_names("image.lock") == set()
    assert declared_names("dev") - locked_names("dev.lock") == set()


def test_every_file_the_dockerfile_copies_exists() -> None:
    for stage in dockerfile_stages():
        for line in stage:
            if line.startswith("COPY ") and "--from=" not in line:
                for source in line.split()[1:-1]:
                    assert (ROOT / source).exists(), line


def test_every_gateway_service_exports_telemetry_to_the_collector() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        if "command" in service and name not in ("postgres", "otel-collector"):
            env = service.get("environment", {})
            assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT") == "http://otel-collector:4317", name
