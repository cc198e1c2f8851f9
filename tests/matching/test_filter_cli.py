"""`gateway node filters`: what a police node holds of each responder's filter, and the
sync under way, read from its database."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

import nodes.schema  # noqa: F401  (every table)
from gateway.cli import app
from gateway.config import NodeConfig, load_config
from gateway.db import NodeBase, make_engine
from gateway.localnet import Consortium
from gateway.matching.filter import TagFilter, encode_snapshot
from gateway.matching.filter_store import chunk_of, load_replica, save_chunk, save_state
from gateway.matching.filter_sync import publish_delta, publish_snapshot

runner = CliRunner()
NODES = (("police-1", "police", "City Police"), ("bank-a", "bank", "Bank A"))


def test_filters_lists_held_versions_and_transfers(tmp_path: Path) -> None:
    net = Consortium.create(tmp_path, NODES)
    police = net.config_path("police-1")
    unmigrated = runner.invoke(app, ["node", "filters", "--config", str(police)])
    assert unmigrated.exit_code == 1
    assert unmigrated.output.startswith("error: cannot read the filter tables")
    assert "gateway db upgrade --config" in unmigrated.output
    engine = make_engine(load_config(NodeConfig, police).database)
    NodeBase.metadata.create_all(engine)
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    state = TagFilter.decode(encode_snapshot([os.urandom(8) for _ in range(5_000)], 33))
    first = publish_snapshot(state, version=3, responder="bank-a", recipient="police-1", signer=key)
    replica = load_replica(engine, responder="bank-a", recipient="police-1", responder_key=public)
    replica.begin(first.signed)
    replica.add_chunk(first.chunks[0])
    save_state(engine, replica)
    second = publish_delta(
        first,
        added_tags=[os.urandom(8)],
        removed_tags=[],
        responder="bank-a",
        recipient="police-1",
        signer=key,
        chunk_bytes=10,
    )
    replica.begin(second.signed)
    replica.add_chunk(second.chunks[0])
    save_chunk(engine, "bank-a", second.signed, chunk_of(second.chunks[0]), second.chunks[0])

    result = runner.invoke(app, ["node", "filters", "--config", str(police), "--output", "json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["responder"] == "bank-a" and row["version"] == 3
    assert row["bytes"] == len(state.encode())
    assert row["transfer"] == f"version 4: 1/{len(second.chunks)} chunks"

    refused = runner.invoke(app, ["node", "filters", "--config", str(net.config_path("bank-a"))])
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        "error: bank-a is a bank node; only police nodes hold responders' filters"
    )
