"""The README's "Running a consortium by hand", run as written, with mistakes injected.

The code block is read from README.md and each line run in a fresh folder as its own
process (`python -m gateway`), changing only the ports (free ones instead of 7100-7103)
and the draft id `approve` takes; `serve` lines run in the background. As its reader
would, the walk keeps the password each `users add` prints in the file named, and
types each TOTP code (RFC 6238, computed in tests/staff/totp.py) when asked. Between the steps, the mistakes a person makes
following it are injected, and each must end in its one intended `error:` line.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.localnet import free_port
from tests.staff.totp import totp
from tests.waiting import wait_for

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_lines() -> list[str]:
    """The command lines of the by-hand section's code block, comments dropped."""
    text = README.read_text()
    section = text.split("## Running a consortium by hand", 1)[1]
    block = section.split("```", 2)[1]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [line for line in lines if line.startswith("gateway ")]


class Walk:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = {str(7100 + n): str(free_port()) for n in range(4)}
        self.background: list[subprocess.Popen[bytes]] = []

    def argv(self, line: str) -> list[str]:
        line = re.sub(r"127\.0\.0\.1:(71\d\d)", lambda m: f"127.0.0.1:{self.ports[m[1]]}", line)
        return [sys.executable, "-m", "gateway", *shlex.split(line)[1:]]

    def run(self, line: str, typed: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(line),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            input=typed,
        )

    def ok(self, line: str, typed: str | None = None) -> str:
        done = self.run(line, typed)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr
        return done.stdout

    def error(self, line: str, typed: str | None = None) -> str:
        """The one `error:` line of a command that must fail, after the usual checks."""
        done = self.run(line, typed)
        shown = f"{line}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert done.returncode == 1, shown
        assert "Traceback" not in done.stdout + done.stderr, shown
        errors = [x for x in done.stderr.splitlines() if x.startswith("error:")]
        assert len(errors) == 1, shown
        return errors[0]

    def serve(self, line: str, port: str) -> None:
        log = (self.root / f"serve-{port}.log").open("wb")
        # a node's console listens where `node init` wrote (8180): a free port here instead
        console = {"GATEWAY_CONSOLE_LISTEN": f"127.0.0.1:{free_port()}"}
        self.background.append(
            subprocess.Popen(
                self.argv(line),
                cwd=self.root,
                stdout=log,
                stderr=log,
                env={**os.environ, **console},
            )
        )
        wait_for(lambda: listening(int(self.ports[port])), timeout=60)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def walk(tmp_path: Path) -> Iterator[Walk]:
    w = Walk(tmp_path)
    yield w
    for proc in w.background:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_by_hand_section_as_written_with_each_mistake_caught(walk: Walk) -> None:
    lines = readme_lines()
    assert any("--node regulator-1" in x and "pki issue" in x for x in lines), (
        "the regulator the section uses is issued in it"
    )
    broker_port = walk.ports["7100"]
    request_id = draft_id = ""
    secrets: dict[str, str] = {}

    def code(user: str, steps_ahead: int = 0) -> str:
        """What the user types at the TOTP prompt, from their authenticator."""
        return totp(secrets[user], int(time.time() * 1000) + steps_ahead * 30_000) + "\n"

    for line in lines:
        if line.startswith("gateway broker serve"):
            # mistake: a node command before the broker runs
            assert walk.error("gateway ping --config police-1.toml --to bank-a").startswith(
                f"error: the broker at 127.0.0.1:{broker_port} is unreachable (unavailable"
            )
            walk.serve(line, "7100")
        elif line.startswith("gateway node serve"):
            # mistake: ping before the node serves
            assert (
                walk.error("gateway ping --config police-1.toml --to bank-a")
                == "error: bank-a did not answer: unavailable"
            )
            walk.serve(line, "7102")
        elif line.startswith("gateway pki issue --node bank-a"):
            walk.ok(line)
            # mistake: issuing a node twice
            assert "pki rotate" in walk.error(line)
        elif line.startswith("gateway audit verify"):
            # mistake: the compliance check run with the police node's configuration
            denied = walk.error("gateway audit verify --config police-1.toml")
            assert denied.startswith("error: refused by policy: "), denied
            assert "log verified" in walk.ok(line)
        elif line.startswith("gateway ping"):
            # the broker's channel to bank-a is in reconnect backoff after the failed ping
            # injected above, capped at 2 s (gateway.transport): the README's ping succeeds
            # within seconds of the node listening
            wait_for(lambda ping=line: walk.run(ping).returncode == 0, timeout=15, interval=1.0)
            assert "bank-a" in walk.ok(line)
        elif line.startswith("gateway users add"):
            user = shlex.split(line)[3]
            shown = walk.ok(line)
            password = re.search(rf"password for {user}: (\S+)", shown)
            secret = re.search(r"TOTP secret: ([A-Z2-7]+)", shown)
            assert password is not None and secret is not None, shown
            (walk.root / f"{user}.pw").write_text(password[1] + "\n")
            secrets[user] = secret[1]
        elif line.startswith("gateway freeze draft"):
            # mistake: a code from the wrong account's authenticator
            assert walk.error(line, code("chen")) == (
                "error: login refused: wrong user, password or code"
            )
            drafted = re.search(r"drafted ([0-9a-f]{32})", walk.ok(line, code("wang")))
            assert drafted is not None
            draft_id = drafted[1]
        elif line.startswith("gateway freeze approve"):
            line = line.replace("DRAFT", draft_id)
            # mistake: the drafter approves their own draft (with the next code: the one
            # the draft took is refused from now on)
            own = line.replace(
                "--as chen --password-file chen.pw", "--as wang --password-file wang.pw"
            )
            assert walk.error(own, code("wang", 1)) == ("error: role officer may not decide drafts")
            request_id = walk.ok(line, code("chen")).split("request ")[1].split()[0]
        elif line.startswith("gateway freeze list"):
            assert request_id in walk.ok(line), "the whole id, as freeze status takes it"
            assert "request_id" in walk.ok(f"{line} --output csv").splitlines()[0]
            # mistake: an id that is in no journal
            assert walk.error("gateway freeze status ffffffff --config police-1.toml") == (
                "error: no request ffffffff in this node's journal (see gateway freeze list)"
            )
        else:
            walk.ok(line)
