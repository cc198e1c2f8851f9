"""The built wheel is the whole gateway: installed alone into a fresh virtual environment,
it runs a consortium (pki init, broker serve, node serve, ping) from a folder that holds
no source, and its health check answers.

Slow: it builds the wheel and installs it with its dependencies from the package index.
uv does both (as `python -m build` and pip would), since its cache of downloaded wheels
makes a repeat take seconds where pip, here, downloads everything again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gateway.localnet import free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).with_name("uv"))
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*_cache", "var"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a clean copy of the tree (no stale build/ can slip in)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    dist = work / "dist"
    run([UV, "build", "--quiet", "--wheel", "--out-dir", str(dist), str(source)])
    (built,) = dist.glob("agency_gateway-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel and its dependencies; its bin folder."""
    env = tmp_path_factory.mktemp("venv") / "venv"
    run([UV, "venv", "--quiet", "--python", sys.executable, str(env)])
    run([UV, "pip", "install", "--quiet", "--python", str(env / "bin" / "python"), str(wheel)])
    return env / "bin"


def run(command: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    return done.stdout


def clean_env() -> dict[str, str]:
    """This environment less what would let the source tree or our venv leak in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["COLUMNS"] = "200"
    return env


def test_wheel_holds_every_file_of_the_packages(wheel: Path) -> None:
    """Every file under gateway/ and nodes/ (code and data), computed from the tree."""
    expected = {
        path.relative_to(ROOT).as_posix()
        for package in ("gateway", "nodes")
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert expected - names == set()
    assert {"gateway/policies/broker.cedar", "gateway/migrations/node/script.py.mako"} <= names


def test_installed_wheel_runs_a_consortium(installed: Path, tmp_path: Path) -> None:
    here = tmp_path / "deploy"
    here.mkdir()
    where = run([str(installed / "python"), "-c", "import gateway; print(gateway.__file__)"], here)
    assert Path(where.strip()).is_relative_to(installed.parent)

    gateway = str(installed / "gateway")
    broker_port, police_port, bank_port = free_port(), free_port(), free_port()
    broker = f"127.0.0.1:{broker_port}"
    run([gateway, "pki", "init", "--consortium", "wheel.test", "--dir", "pki"], here)
    for node, role, port in (
        ("broker", "broker", broker_port),
        ("police-1", "police", police_port),
        ("bank-a", "bank", bank_port),
    ):
        issue = ["pki", "issue", "--node", node, "--role", role, "--dir", "pki"]
        run([gateway, *issue, "--endpoint", f"127.0.0.1:{port}"], here)
        if role != "broker":
            init = ["node", "init", "--node", node, "--role", role, "--pki", "pki"]
            listen = ["--listen", f"127.0.0.1:{port}", "--broker", broker]
            run([gateway, *init, *listen, "--out", f"{node}.toml"], here)

    serve_broker = ["broker", "serve", "--dev", "--pki", "pki", "--listen", broker]
    serve_broker += ["--database", "b.db"]
    serve_bank = ["node", "serve", "--dev", "--config", "bank-a.toml"]
    with (
        started(installed, here, serve_broker) as broker_log,
        started(installed, here, serve_bank) as bank_log,
    ):
        answered = run([gateway, "ping", "--config", "police-1.toml", "--to", "bank-a"], here)
        assert "bank-a" in answered and "no answer" not in answered, (
            answered + broker_log.read_text() + bank_log.read_text()
        )


class started:
    """A `gateway ... serve` process of the venv, up once its health check passes."""

    def __init__(self, bin_dir: Path, cwd: Path, args: list[str]) -> None:
        self.bin_dir, self.cwd, self.args = bin_dir, cwd, args
        self.log = cwd / f"{args[0]}-{len(list(cwd.glob('*.log')))}.log"

    def __enter__(self) -> Path:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(self.bin_dir / "gateway"), *self.args],
                cwd=self.cwd,
                env=clean_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        health = [str(self.bin_dir / "python"), "-m", "gateway.healthcheck", *self.args]
        wait_for(lambda: self.healthy(health), timeout=60, interval=0.5)
        return self.log

    def healthy(self, health: list[str]) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        done = subprocess.run(
            health, cwd=self.cwd, env=clean_env(), capture_output=True, text=True, timeout=30
        )
        return done.returncode == 0

    def __exit__(self, *_exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
