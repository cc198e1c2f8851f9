"""Broker logs: one line per routed, denied, refused, delivered and retried message,
as text or JSON, with ids and never an identifier."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from gateway.envelope.build import Draft
from gateway.localnet import Consortium, broker_command, gateway_command
from gateway.logs import FIELDS, JsonFormatter, TextFormatter, event, setup_logging
from nodes.actions.police import issue_action
from tests.actions.seed import ACCOUNT, spec
from tests.consortium import client, running
from tests.waiting import wait_for


@pytest.fixture(scope="module")
def net(consortium: Consortium) -> Iterator[Consortium]:
    with running(consortium, ("police-1", "bank-a")):
        yield consortium


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, object]]:
    return [getattr(r, FIELDS) for r in caplog.records if r.getMessage() == name]


def test_text_and_json_lines_carry_the_fields() -> None:
    record = logging.LogRecord("gateway.broker.core", logging.INFO, "", 0, "routed", (), None)
    setattr(record, FIELDS, {"message_id": "m1", "recipients": ["bank-a", "bank-b"], "why": "a b"})
    text = TextFormatter().format(record)
    assert text.endswith('routed message_id=m1 recipients=bank-a,bank-b why="a b"')
    assert text[:19].count("-") == 2 and "UTC" not in text  # ISO-like date first
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "routed" and line["message_id"] == "m1"
    assert line["recipients"] == ["bank-a", "bank-b"] and line["time"].endswith("Z")


def test_event_is_skipped_below_the_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("gateway.test")
    with caplog.at_level(logging.WARNING, logger="gateway.test"):
        event(logger, "quiet", n=1)
    assert caplog.records == []


def test_broker_logs_each_message_once_without_identifiers(
    net: Consortium, caplog: pytest.LogCaptureFixture
) -> None:
    police = client(net, "police-1")
    try:
        with caplog.at_level(logging.INFO, logger="gateway"):
            ping = Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
            police.client.submit(ping)
            to_down_bank = issue_action(
                police,
                spec(recipient="bank-b", case_ref="C-LOGS", amount_minor=1_000, duration_hours=2),
            ).message_id
            executed = issue_action(police, spec(case_ref="C-LOGS", amount_minor=1_000)).message_id
            bank = police.client.directory().get("bank-a")
            assert bank is not None
            denied = Draft(  # no case, no legal basis: the policy denies it
                sender="police-1",
                recipients=["bank-a"],
                kind="FREEZE",
                payload=b"{}",
                seal_to=bank.seal_key,
            )
            with pytest.raises(grpc.RpcError) as denial:
                police.client.submit(denied)
            assert denial.value.code() == grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.RpcError) as replayed:
                police.client.submit(ping)
            assert replayed.value.code() == grpc.StatusCode.ALREADY_EXISTS
            wait_for(lambda: any(e["message_id"] == to_down_bank for e in events(caplog, "retry")))
            wait_for(lambda: any(e["message_id"] == executed for e in events(caplog, "delivery")))
    finally:
        police.client.close()

    routed = {e["message_id"]: e for e in events(caplog, "routed")}
    assert routed[ping.message_id]["kind"] == "PING"
    assert routed[to_down_bank]["recipients"] == ["bank-b"]
    [deny] = [e for e in events(caplog, "denied") if e["message_id"] == denied.message_id]
    assert "forbid" in str(deny["reason"]) or "no policy" in str(deny["reason"])
    [replay] = [e for e in events(caplog, "refused") if e["message_id"] == ping.message_id]
    assert replay["check"] == "replay"
    assert [e["sender"] for e in routed.values() if e["kind"] == "PONG"] == ["bank-a"]
    [retry, *_] = [e for e in events(caplog, "retry") if e["message_id"] == to_down_bank]
    assert retry["recipient"] == "bank-b" and retry["attempt"] == 1
    [done] = [e for e in events(caplog, "delivery") if e["message_id"] == executed]
    assert done["recipient"] == "bank-a" and done["state"] == "delivered"
    receipt_id = done["detail"]  # the bank's receipt, itself routed on to the police
    assert routed[str(receipt_id)]["kind"] == "ACTION_RECEIPT"

    for record in caplog.records:
        for formatter in (TextFormatter(), JsonFormatter()):
            assert ACCOUNT not in formatter.format(record)


def test_broker_serve_writes_json_lines_naming_host_and_port(consortium: Consortium) -> None:
    command = broker_command(
        consortium, str(consortium.root / "logs-broker.db"), "--log-format", "json"
    )
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        lines: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(json.loads(line))  # every line is JSON
            if "listening on" in str(lines[-1]["event"]):
                break
        assert lines, "the broker wrote no log line"
        assert (
            lines[-1]["event"] == f"broker broker listening on 127.0.0.1:{consortium.broker_port}"
        )
        assert lines[-1]["level"] == "INFO"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_unknown_log_format_is_one_error_line(consortium: Consortium) -> None:
    done = subprocess.run(
        gateway_command("broker", "serve", "--log-format", "xml"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: --log-format must be text or json, not 'xml'"
    ]


def test_log_lines_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command run inside a test must not leave a handler on a closed capture stream."""
    saved = logging.getLogger().handlers[:], logging.getLogger().level
    try:
        setup_logging(False, "text")
        later = io.StringIO()
        monkeypatch.setattr(sys, "stderr", later)
        event(logging.getLogger("gateway.test"), "moved", n=1)
        assert later.getvalue().rstrip().endswith("gateway.test: moved n=1")
    finally:
        logging.getLogger().handlers[:], level = saved
        logging.getLogger().setLevel(level)


def test_broker_serve_without_its_policy_bundle_is_one_error_line(
    consortium: Consortium, tmp_path: Path
) -> None:
    bundle = tmp_path / "broker-bundle"
    shutil.copytree(consortium.root / "pki" / "nodes" / "broker", bundle)
    (bundle / "policy-bundle.json").unlink()
    config = tmp_path / "broker.toml"
    config.write_text(
        "\n".join(
            [
                'node_id = "broker"',
                'listen = "127.0.0.1:0"',
                f'database = "{tmp_path / "broker.db"}"',
                f'pki_bundle = "{bundle}"',
                f'directory_folder = "{consortium.root / "pki"}"',
            ]
        )
    )
    done = subprocess.run(
        gateway_command("broker", "serve", "--dev", "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot read policy bundle ") and "policy-bundle.json" in last
