"""The broker on PostgreSQL: the same exchange and audit trail as on SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from gateway.audit.store import AuditEntryRow
from gateway.broker.models import MessageRow
from gateway.envelope.build import Draft
from gateway.localnet import Consortium
from tests.consortium import client, running
from tests.postgres import fresh_schema

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    with fresh_schema() as url:
        root: Path = tmp_path_factory.mktemp("pg")
        consortium = Consortium.create(root, database_urls={"broker": url})
        with running(consortium, ("police-1", "bank-a")):
            yield consortium


def test_ping_through_a_postgres_broker_is_stored_and_audited(pg_net: Consortium) -> None:
    ctx = client(pg_net, "police-1")
    try:
        draft = Draft(sender="police-1", recipients=["bank-a"], kind="PING", payload=b"{}")
        result = ctx.client.submit(draft)
    finally:
        ctx.client.close()
    assert [h.sender for h, _ in result.answers] == ["bank-a"]
    with Session(create_engine(pg_net.broker_database)) as s:
        assert s.get(MessageRow, draft.message_id) is not None
        leaves = [json.loads(r.leaf) for r in s.scalars(select(AuditEntryRow)).all()]
    assert any(
        e.get("message_id") == draft.message_id and e.get("decision") == "ALLOW" for e in leaves
    )
    assert any(e.get("kind") == "PONG" for e in leaves)
