"""A full index build that has not finished (cut short, or still running in another
process) is never answered from: its rows are partial, and an answer from them would
tell the police "no match" for a record the responder holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from gateway.cli import app
from gateway.db import make_engine
from gateway.localnet import Consortium
from gateway.matching.index_store import MatchIndexRow, MatchIndexStateRow
from nodes.filter_police import FilterModeError, held_filter, sync_filter
from nodes.matching import REFRESH_ON_QUERY
from nodes.records import RecordRow
from tests.consortium import client, running

runner = CliRunner()
HELD = "+8613900000007"
RECORDS = REFRESH_ON_QUERY + 100
"""More changes than a query may index on the spot, so the refusal cannot be healed inline."""


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    folder = tmp_path_factory.mktemp("unfinished-index")
    consortium = Consortium.create(folder)
    rows = "".join(f"phone,+86139{n:08d},C{n},ACTIVE\n" for n in range(RECORDS))
    csv = folder / "subscribers.csv"
    csv.write_text("kind,value,record_id,status\n" + rows, encoding="utf-8")
    with running(consortium, ("carrier-1",)):
        ingest = ["node", "ingest", str(csv), "--config", str(consortium.config_path("carrier-1"))]
        result = runner.invoke(app, ingest)
        assert result.exit_code == 0, result.output
        yield consortium


def query(net: Consortium, mode: str) -> str:
    args = ["query", "--config", str(net.config_path("police-1")), "--kind", "phone", HELD]
    args += ["--to", "carrier-1", "--case", "C", "--basis", "B", "--mode", mode]
    result = runner.invoke(app, args)
    return f"{result.exit_code} " + " ".join(result.output.split())


def cut_short(net: Consortium) -> None:
    """What a `reindex` killed part-way leaves: version 0, and rows missing (C7's)."""
    engine = make_engine(net.node_config("carrier-1").database)
    try:
        with engine.begin() as conn:
            conn.execute(update(MatchIndexStateRow.__table__).values(version=0))
            held = conn.execute(select(RecordRow.id).where(RecordRow.value == HELD)).scalar_one()
            conn.execute(delete(MatchIndexRow.__table__).where(MatchIndexRow.record_id == held))
    finally:
        engine.dispose()


def test_queries_are_refused_until_the_rebuild_finishes(net: Consortium, tmp_path: Path) -> None:
    assert query(net, "bucket").startswith("0 ")
    assert query(net, "filter").startswith("0 ")  # the police hold the filter
    police = client(net, "police-1")
    try:
        synced = held_filter(police, "carrier-1").version
        cut_short(net)
        with pytest.raises(FilterModeError, match="the match index is being rebuilt"):
            sync_filter(police, "carrier-1")  # a partial filter would hide C7 from them
        assert held_filter(police, "carrier-1").version == synced
    finally:
        police.client.close()
    bucket = query(net, "bucket")
    assert bucket.startswith("1 ")
    assert "FAILED_PRECONDITION match: the match index is being rebuilt" in bucket
    assert "record_id=C7" not in bucket and "absent │" not in bucket
    assert "no answer │" in bucket and "0 identifiers absent" in bucket
    filtered = query(net, "filter")
    assert filtered.startswith("1 ")
    assert "FAILED_PRECONDITION filter: the match index is being rebuilt" in filtered
    reindex = ["node", "reindex", "--config", str(net.config_path("carrier-1"))]
    result = runner.invoke(app, reindex)
    assert result.exit_code == 0, result.output
    for mode in ("bucket", "filter"):
        answered = query(net, mode)
        assert answered.startswith("0 ") and "record_id=C7" in answered, answered
