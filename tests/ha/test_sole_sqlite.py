"""SQLite takes one broker process: a second broker on the same file is refused by name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.broker.models import DeliveryRow
from gateway.broker.server import serve_broker
from gateway.broker.sole import SecondBroker, hold_sole_broker, lock_path
from gateway.localnet import Consortium, broker_command, free_port, processes


def test_a_second_broker_in_one_process_is_refused_and_the_first_serves_on(
    tmp_path: Path,
) -> None:
    consortium = Consortium.create(tmp_path)
    first = serve_broker(consortium.broker_config())
    try:
        with pytest.raises(SecondBroker, match="SQLite takes one broker process"):
            serve_broker(consortium.broker_config(listen=f"127.0.0.1:{free_port()}"))
        assert first.broker.audit.checkpoint()
    finally:
        first.stop(0)
    again = serve_broker(consortium.broker_config())  # the lock ended with the first
    again.stop(0)


def test_postgres_and_memory_urls_take_no_lock() -> None:
    assert lock_path("postgresql+psycopg://u@h/db") is None
    assert lock_path("sqlite://") is None
    assert lock_path("sqlite:///:memory:") is None
    assert hold_sole_broker("postgresql+psycopg://u@h/db").release() is None


@pytest.mark.slow
def test_gateway_broker_serve_on_a_served_sqlite_file_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    consortium = Consortium.create(tmp_path)
    with processes(consortium) as procs:
        procs.start_broker()
        pid = procs.procs["broker"].pid
        command = broker_command(consortium, consortium.broker_database)
        command[command.index("--listen") + 1] = f"127.0.0.1:{free_port()}"
        second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    lines = (second.stdout + second.stderr).strip().splitlines()
    assert second.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert f"another broker (pid {pid}) already serves the SQLite database" in lines[0]
    assert "PostgreSQL" in lines[0]


def test_the_sole_broker_on_sqlite_takes_back_the_claims_of_the_process_before(
    tmp_path: Path,
) -> None:
    """The broker killed while delivering held claims; the next one, alone on the file,
    delivers those rows at once instead of waiting for their leases to end."""
    consortium = Consortium.create(tmp_path)
    first = serve_broker(consortium.broker_config())
    first.outbox.stop()  # so that only the rows below are in play
    with first.broker.audit.session() as session:
        session.add(
            DeliveryRow(
                message_id="0" * 32,
                recipient="bank-a",
                next_attempt_at_ms=2**62,  # not due: the new broker will not attempt it
                lease_owner="host:1:dead",
                lease_until_ms=2**62,
            )
        )
        session.commit()
    first.stop(0)
    again = serve_broker(consortium.broker_config())
    try:
        with again.broker.audit.session() as session:
            row = session.scalars(select(DeliveryRow)).one()
            assert row.lease_until_ms == 0
    finally:
        again.stop(0)
