"""Every `gateway` command, in every failure condition that applies, ends in one line.

The commands are found by walking the typer app, so a command added later is run here
too. Each runs (typer's CliRunner, in this process) against a real consortium on disk:
with its configuration missing or unparsable, its PKI folder missing, its broker down,
a recipient node down, a bad identifier or an unknown request id. Each must exit
non-zero with exactly one `error:` line on stderr and no traceback anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner, Result

from gateway.cli import app
from gateway.localnet import Consortium
from tests.consortium import running

runner = CliRunner()
SERVES = {"broker serve", "node serve"}
"""They serve until stopped when nothing is wrong: only broken configurations apply."""


@dataclass(frozen=True)
class Command:
    path: str
    params: dict[str, tuple[str, bool, bool]]
    """Parameter name: (option string or '' for an argument, required, takes many)."""

    def argv(self, given: dict[str, str]) -> list[str]:
        """The command line with every required parameter filled, `given` ones overriding."""
        argv = self.path.split()
        for name, (opt, required, _) in self.params.items():
            if name not in given and not required:
                continue
            value = given.get(name, FILL.get(name, "x"))
            argv += [value] if not opt else [opt, value]
        return argv


FILL = {
    "to": "bank-a",
    "peer": "bank-a",
    "kind": "bank_account",
    "case": "C-1",
    "basis": "Art. 1",
    "user": "o-1",
    "draft_id": "0f0f0f0f",
    "value": "6222020200112233445",
    "values": "6222020200112233445",
    "request_id": "0f0f0f0f",
    "hours": "1",
    "node": "bank-z",
    "role": "bank",
    "consortium": "test",
    "entry": "0",
    "schema": "node",
    "message": "m",
    "name": "offer",
}


def commands() -> list[Command]:
    found: list[Command] = []

    def walk(command: object, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs is not None:
            for name, sub in subs.items():
                walk(sub, [*path, name])
            return
        params = {}
        for p in command.params:  # type: ignore[attr-defined]
            if p.name == "help":
                continue
            opt = p.opts[0] if p.param_type_name == "option" else ""
            params[p.name] = (opt, bool(p.required), bool(p.multiple or p.nargs == -1))
        found.append(Command(" ".join(path), params))

    walk(typer.main.get_command(app), [])
    return found


COMMANDS = commands()


def one_error_line(result: Result, where: str) -> str:
    """The `error:` line, after checking exit code, tracebacks and the line count."""
    shown = f"{where}: exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.exit_code not in (0, None), shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, shown
    return errors[0]


def run(command: Command, given: dict[str, str]) -> Result:
    if command.path == "db backup":  # its --to is a file, not a node: never the cwd
        given = {**given, "to": given.get("out", "")}
    return runner.invoke(app, command.argv(given))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return Consortium.create(tmp_path_factory.mktemp("net"))


@pytest.fixture(autouse=True)
def quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # a relative default path (var/pki, var/broker.db) lands here
    monkeypatch.delenv("GATEWAY_VERBOSE", raising=False)
    monkeypatch.setenv("COLUMNS", "80")


def paths(tmp_path: Path) -> dict[str, str]:
    """Where each file-like parameter points when the file itself is not the mistake."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    return {
        "out": str(blocker / "out.toml"),
        "file": str(tmp_path / "no-such-list.csv"),
        "database": str(blocker / "no-such.db"),
        "folder": str(blocker / "demo"),
    }


def with_config(command: Command) -> bool:
    return "config" in command.params


Scenario = Callable[[Command, Path, Consortium], dict[str, str] | None]


def missing_config(command: Command, tmp: Path, net: Consortium) -> dict[str, str] | None:
    if not with_config(command):
        return None
    return {**paths(tmp), "config": str(tmp / "missing.toml")}


def unparsable_config(command: Command, tmp: Path, net: Consortium) -> dict[str, str] | None:
    if not with_config(command):
        return None
    bad = tmp / "bad.toml"
    bad.write_text('node_id = "bank-a"\nrole = [unclosed\n')
    return {**paths(tmp), "config": str(bad)}


def missing_pki(command: Command, tmp: Path, net: Consortium) -> dict[str, str] | None:
    if "pki_dir" not in command.params or command.path in SERVES:
        return None
    given = {**paths(tmp), "pki_dir": str(tmp / "no-pki")}
    if command.path == "pki init":
        given["pki_dir"] = str(Path(paths(tmp)["out"]).parent / "pki")
    if "database" in command.params:
        given["database"] = net.broker_database
    return given


def without_config(command: Command, tmp: Path, net: Consortium) -> dict[str, str] | None:
    """Commands with no configuration: their files and folders are the mistake."""
    if with_config(command) or "pki_dir" in command.params:
        return None
    return paths(tmp)


SCENARIOS: dict[str, Scenario] = {
    "missing config": missing_config,
    "unparsable config": unparsable_config,
    "missing PKI folder": missing_pki,
    "bad paths": without_config,
}


def cases() -> Iterator[object]:
    for command in COMMANDS:
        for name in SCENARIOS:
            yield pytest.param(command, name, id=f"{command.path}: {name}")


@pytest.mark.parametrize(("command", "scenario"), list(cases()))
def test_each_command_in_each_local_mistake(
    command: Command, scenario: str, net: Consortium, tmp_path: Path
) -> None:
    given = SCENARIOS[scenario](command, tmp_path, net)
    if given is None:
        pytest.skip(f"{scenario} does not apply to {command.path}")
    one_error_line(run(command, given), f"{command.path} ({scenario})")


def test_every_command_is_covered_by_some_mistake(net: Consortium, tmp_path: Path) -> None:
    uncovered = [
        c.path for c in COMMANDS if all(s(c, tmp_path, net) is None for s in SCENARIOS.values())
    ]
    assert uncovered == []


BROKER_USERS = {
    "ping",
    "query",
    "psi",
    "audit witness",
    "audit verify",
    "audit checkpoint",
    "audit search",
    "audit export",
    "audit prove",
}
"""Commands that must reach the broker before they can do anything."""


@pytest.mark.parametrize(
    "command",
    [c for c in COMMANDS if with_config(c) and c.path not in SERVES],
    ids=lambda c: c.path,
)
def test_the_broker_down(command: Command, net: Consortium, tmp_path: Path) -> None:
    """Nothing listens on the broker's port: unreachable, never 'refused', no traceback."""
    node = "regulator-1" if command.path.startswith("audit") else "police-1"
    given = {**paths(tmp_path), "config": str(net.config_path(node)), "to": "bank-a"}
    given.pop("file")
    given.pop("database")
    result = run(command, {**given, "amount": "10", "values": FILL["values"]})
    if command.path not in BROKER_USERS and result.exit_code == 0:
        return  # a local command (offers, ingest...) need not reach the broker
    line = one_error_line(result, f"{command.path} (broker down)")
    if command.path in BROKER_USERS:
        assert f"the broker at 127.0.0.1:{net.broker_port} is unreachable" in line, line
        assert "is it running?" in line
        assert "refused by policy" not in line


@pytest.fixture(scope="module")
def broker_only(net: Consortium) -> Iterator[None]:
    with running(net, nodes=()):
        yield


def test_ping_to_a_node_that_is_down(net: Consortium, broker_only: None) -> None:
    result = runner.invoke(
        app, ["ping", "--config", str(net.config_path("police-1")), "--to", "bank-a"]
    )
    assert one_error_line(result, "ping") == "error: bank-a did not answer: unavailable"


def test_query_to_a_node_that_is_down(net: Consortium, broker_only: None) -> None:
    result = runner.invoke(
        app,
        [
            "query",
            "6222020200112233445",
            "--config",
            str(net.config_path("police-1")),
            "--kind",
            "bank_account",
            "--to",
            "bank-a",
            "--case",
            "C-1",
            "--basis",
            "Art. 1",
        ],
    )
    line = one_error_line(result, "query")
    assert "bank-a" in line and "unavailable" in line.lower(), line


@pytest.mark.parametrize("path", ["freeze status", "freeze extend", "freeze release"])
def test_an_unknown_request_id(
    path: str, net: Consortium, broker_only: None, tmp_path: Path
) -> None:
    command = next(c for c in COMMANDS if c.path == path)
    result = run(command, {"config": str(net.config_path("police-1"))})
    line = one_error_line(result, path)
    assert "no request" in line and FILL["request_id"] in line, line


@pytest.mark.parametrize("path", ["freeze approve", "freeze reject"])
def test_an_unknown_draft_id(path: str, net: Consortium, broker_only: None) -> None:
    command = next(c for c in COMMANDS if c.path == path)
    result = run(command, {"config": str(net.config_path("police-1"))})
    line = one_error_line(result, path)
    assert "no draft" in line and FILL["draft_id"] in line, line


def test_a_bad_identifier(net: Consortium, broker_only: None, tmp_path: Path) -> None:
    from nodes.runtime import open_node
    from nodes.staff.accounts import add_user

    police = str(net.config_path("police-1"))
    ctx = open_node(net.node_config("police-1"))
    ctx.client.close()
    password = tmp_path / "pw"
    password.write_text("a password long enough\n")
    add_user(ctx.engine, "wang", "officer", password="a password long enough", totp=False)
    result = runner.invoke(
        app,
        [
            "freeze",
            "draft",
            "12ab",
            "--config",
            police,
            "--to",
            "bank-a",
            "--amount",
            "10",
            "--case",
            "C-1",
            "--basis",
            "b",
            "--as",
            "wang",
            "--password-file",
            str(password),
            "--totp",
            "",
        ],
    )
    line = one_error_line(result, "freeze draft")
    assert "identifier: invalid bank_account" in line and "12ab" not in line, line
    result = runner.invoke(
        app,
        [
            "query",
            "12ab",
            "--config",
            police,
            "--kind",
            "phone",
            "--to",
            "carrier-1",
            "--case",
            "C-1",
            "--basis",
            "b",
        ],
    )
    assert "12ab" not in one_error_line(result, "query")


def test_an_internal_error_is_one_line_and_verbose_shows_the_traceback(
    net: Consortium, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is not hidden, but a user sees one line unless they ask for the traceback."""
    import gateway.pki.store as store

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(store.PkiFolder, "directory", broken)
    pki = str(net.root / "pki")
    result = runner.invoke(app, ["pki", "show", "--dir", pki])
    assert one_error_line(result, "pki show") == (
        "error: internal error: ZeroDivisionError; run with --verbose for details"
    )
    result = runner.invoke(app, ["--verbose", "pki", "show", "--dir", pki])
    assert "Traceback" in result.stderr and "ZeroDivisionError: bug" in result.stderr
