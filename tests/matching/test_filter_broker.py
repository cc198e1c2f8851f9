"""Filter mode through the real broker (in-process network): sync, query, label round.

bank-a and carrier-1 load synthetic records and build their index; police-1 pulls their
filters with FILTER_SYNC and queries with FILTER_QUERY and LABEL_REQUEST. Expected labels
come from the synthetic rows and the responders' own record ids, read back from their
databases, never from the code under test.
"""

from __future__ import annotations

import json
import logging
import os
from array import array
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from gateway.db import make_engine
from gateway.envelope.build import Draft
from gateway.identifiers import Identifier, normalise
from gateway.kinds import Kind
from gateway.localnet import Consortium
from gateway.matching.filter import TagFilter, bits_for, encode_snapshot
from gateway.matching.filter_query import LABEL_TYPE, QUERY_TYPE
from gateway.matching.filter_store import save_state, sync_status
from gateway.matching.filter_sync import publish_snapshot
from gateway.matching.index_store import read_state
from gateway.synthetic import generate_bank_records, generate_carrier_records
from gateway.v1 import filter_pb2 as fpb
from gateway.v1 import gateway_pb2 as pb
from nodes import filter_responder
from nodes.filter_police import (
    FilterModeError,
    exchange,
    filter_query_responders,
    held_filter,
    sync_filter,
)
from nodes.filter_syncer import FilterSyncer
from nodes.journal import InboundRow
from nodes.runtime import NodeContext
from tests.consortium import client, running
from tests.matching.test_broker_query import expected_label, ident, load
from tests.waiting import wait_for

BANK = generate_bank_records(120, seed=31)
CARRIER = generate_carrier_records(60, seed=32)
NOBODY = [normalise("phone", "+8613012345678"), normalise("phone", "+8613912345678")]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    consortium = Consortium.create(tmp_path_factory.mktemp("filter"))
    path = consortium.config_path("carrier-1")
    path.write_text(path.read_text() + "\nfilter_eval_per_hour = 128\nfilter_eval_per_day = 128\n")
    load(consortium, "bank-a", BANK[:100])
    load(consortium, "carrier-1", CARRIER)
    with running(consortium, ("bank-a", "carrier-1")):
        yield consortium


@pytest.fixture
def police(net: Consortium) -> Iterator[NodeContext]:
    ctx = client(net, "police-1")
    yield ctx
    ctx.client.close()


def query(
    police: NodeContext, identifiers: list[Identifier], node_id: str = "bank-a"
) -> list[tuple[int, dict[str, str]]]:
    (outcome,) = filter_query_responders(
        police, identifiers, [node_id], case_ref="CASE-16", legal_basis="CPL art. 143"
    )
    assert outcome.ok, outcome.error
    return [(m.position, m.fields) for m in outcome.matches]


def test_a_synced_filter_finds_the_held_identifiers_and_no_others(
    net: Consortium, police: NodeContext
) -> None:
    synced = sync_filter(police, "bank-a")
    assert synced.tags == 100 and synced.chunks >= 1
    assert sync_filter(police, "bank-a").chunks == 0  # current: nothing more to pull
    asked = [NOBODY[0], ident(BANK[5]), ident(BANK[110]), ident(BANK[40]), NOBODY[1]]
    assert query(police, asked) == [
        (1, expected_label(net, "bank-a", BANK[5])),
        (3, expected_label(net, "bank-a", BANK[40])),
    ]


def filter_queries_received(net: Consortium) -> list[InboundRow]:
    engine = make_engine(net.node_config("bank-a").database)
    with engine.connect() as conn:
        rows = conn.execute(
            select(InboundRow.header, InboundRow.payload, InboundRow.received_at_ms)
            .where(InboundRow.kind == Kind.FILTER_QUERY)
            .order_by(InboundRow.received_at_ms)
        ).all()
    return list(rows)


def test_the_responder_receives_the_same_padded_query_for_matching_and_non_matching(
    net: Consortium, police: NodeContext
) -> None:
    sync_filter(police, "bank-a")
    before = len(filter_queries_received(net))
    assert query(police, [ident(r) for r in BANK[:3]]) != []
    assert query(police, [ident(r) for r in BANK[100:103]]) == []
    matching, non_matching = filter_queries_received(net)[before:]
    headers = [pb.Header.FromString(row.header) for row in (matching, non_matching)]
    assert [h.batch_size for h in headers] == [64, 64]
    assert len(matching.payload) == len(non_matching.payload)
    regulator = client(net, "regulator-1")
    try:
        log = [json.loads(e.leaf) for e in regulator.client.read_audit()]
    finally:
        regulator.client.close()
    audited = {e["message_id"]: e for e in log if e.get("kind") == "FILTER_QUERY"}
    for header in headers:
        entry = audited[header.message_id]
        assert (entry["batch_size"], entry["payload_bytes"]) == (64, len(matching.payload))
        assert "payload" not in entry, "the audit log records the padded size, not the payload"


def test_a_label_request_naming_no_answered_query_is_refused(
    net: Consortium, police: NodeContext
) -> None:
    member = police.client.directory().get("bank-a")
    assert member is not None
    request = fpb.LabelRequest(version=1, query_id=os.urandom(16).hex(), tags=[os.urandom(8)])
    draft = Draft(
        sender=police.node_id,
        recipients=["bank-a"],
        kind=Kind.LABEL_REQUEST,
        payload=request.SerializeToString(),
        payload_type=LABEL_TYPE,
        case_ref="CASE-16",
        legal_basis="CPL art. 143",
        batch_size=1,
        seal_to=member.seal_key,
    )
    with pytest.raises(FilterModeError, match="names no query this responder answered"):
        exchange(police, draft, Kind.LABEL_ANSWER)


def test_an_unpadded_batch_is_refused_by_the_broker_policy(
    net: Consortium, police: NodeContext
) -> None:
    member = police.client.directory().get("bank-a")
    assert member is not None
    payload = fpb.FilterQuery(version=1, blinded=[os.urandom(32)] * 100).SerializeToString()
    draft = Draft(
        sender=police.node_id,
        recipients=["bank-a"],
        kind=Kind.FILTER_QUERY,
        payload=payload,
        payload_type=QUERY_TYPE,
        case_ref="CASE-16",
        legal_basis="CPL art. 143",
        batch_size=100,
        seal_to=member.seal_key,
    )
    with pytest.raises(FilterModeError, match="no policy allows FILTER_QUERY"):
        exchange(police, draft, Kind.FILTER_ANSWER)


def test_the_evaluation_quota_refuses_the_query_over_it(
    net: Consortium, police: NodeContext
) -> None:
    sync_filter(police, "carrier-1")
    assert query(police, [ident(CARRIER[2])], "carrier-1") == [
        (0, expected_label(net, "carrier-1", CARRIER[2]))
    ]
    assert query(police, [ident(CARRIER[3])], "carrier-1") != []
    (outcome,) = filter_query_responders(
        police, [ident(CARRIER[4])], ["carrier-1"], case_ref="C", legal_basis="L"
    )
    assert not outcome.ok
    assert "exceed your quota of 128 per hour" in outcome.error


def test_record_changes_arrive_as_a_delta(net: Consortium, police: NodeContext) -> None:
    held = sync_filter(police, "bank-a")
    load(net, "bank-a", BANK[100:105])
    synced = sync_filter(police, "bank-a")
    assert (synced.version, synced.tags, synced.resynced) == (held.version + 1, 105, False)
    assert query(police, [ident(BANK[103])]) == [(0, expected_label(net, "bank-a", BANK[103]))]


def test_a_delta_that_does_not_chain_triggers_a_full_resync(
    net: Consortium, police: NodeContext
) -> None:
    held = sync_filter(police, "bank-a")
    # The police's stored copy no longer is the responder's state at that version.
    replica = held_filter(police, "bank-a")
    other = [os.urandom(8) for _ in range(held.tags)]
    replica.restore(TagFilter.decode(encode_snapshot(other, bits_for(len(other)))), held.version)
    save_state(police.engine, replica)
    load(net, "bank-a", BANK[105:110])
    synced = sync_filter(police, "bank-a")
    assert synced.resynced and synced.tags == held.tags + 5
    assert query(police, [ident(BANK[107])]) == [(0, expected_label(net, "bank-a", BANK[107]))]


def test_a_responder_restart_means_a_new_snapshot(net: Consortium, police: NodeContext) -> None:
    held = sync_filter(police, "bank-a")
    filter_responder._states.clear()  # what a restart of the responder loses
    synced = sync_filter(police, "bank-a")
    assert synced.version > held.version and synced.tags == held.tags and not synced.resynced


def test_the_background_sync_keeps_every_responders_filter(
    net: Consortium, police: NodeContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nodes.filter_syncer")
    filter_responder._states.clear()  # both responders publish a new snapshot
    syncer = FilterSyncer(police, 0.05)
    syncer.start()
    try:
        wait_for(lambda: "filter of carrier-1 synced" in caplog.text, timeout=30)
    finally:
        syncer.stop()
    versions = {row["responder"]: row["version"] for row in sync_status(police.engine)}
    assert set(versions) == {"bank-a", "carrier-1"}
    assert "filter of bank-a synced" in caplog.text
    assert sync_filter(police, "bank-a").chunks == 0, "the background sync left it current"


def test_a_filter_signed_by_another_key_is_refused(net: Consortium, police: NodeContext) -> None:
    held = sync_filter(police, "bank-a")
    bank = net.node_config("bank-a")
    engine = make_engine(bank.database)
    index = read_state(engine)
    assert index is not None
    # bank-a's published chain for police-1, replaced by one signed with a key the
    # directory does not list for bank-a (what a forger between them would send).
    tags = [os.urandom(8) for _ in range(10)]
    forged = publish_snapshot(
        TagFilter.decode(encode_snapshot(tags, bits_for(len(tags)))),
        version=held.version + 10,
        responder="bank-a",
        recipient="police-1",
        signer=Ed25519PrivateKey.generate(),
    )
    key = f"bank-a@{engine.url.render_as_string(hide_password=True)}"
    state = filter_responder._states[key]
    state.chains["police-1"] = filter_responder._Chain(
        forged.state.bits, array("Q"), index.version, [forged]
    )
    try:
        with pytest.raises(FilterModeError, match="not signed by bank-a's key in the directory"):
            sync_filter(police, "bank-a")
        assert held_filter(police, "bank-a").version == held.version, "the held copy stays"
    finally:
        filter_responder._states.clear()


class _Cut(Exception):
    """The police node stopping mid-transfer."""


def test_a_sync_cut_short_resumes_at_the_next_chunk(
    net: Consortium, police: NodeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_filter(police, "bank-a")
    monkeypatch.setattr(filter_responder, "CHUNK_BYTES", 64)  # a snapshot of many chunks
    filter_responder._states.clear()  # bank-a publishes a new snapshot

    def stop_after_the_first(node_id: str, done: int, total: int) -> None:
        raise _Cut

    with pytest.raises(_Cut):
        sync_filter(police, "bank-a", stop_after_the_first)
    seen: list[tuple[int, int]] = []
    synced = sync_filter(police, "bank-a", lambda _, done, total: seen.append((done, total)))
    total = seen[0][1]
    assert total > 3
    assert seen[0] == (2, total), "the first chunk, verified and stored, is not fetched again"
    assert synced.chunks == total - 1 and not synced.resynced
    assert query(police, [ident(BANK[2])]) == [(0, expected_label(net, "bank-a", BANK[2]))]
    filter_responder._states.clear()
