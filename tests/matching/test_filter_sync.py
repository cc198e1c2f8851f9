"""Signed snapshots and deltas: a replica follows them, and refuses what it must.

Also: a transfer interrupted by a restart resumes from the node database, on SQLite and
PostgreSQL. The attacker's cheap moves: a statement signed by another key, a delta that does not
chain onto the held filter (skipped, replayed, or for another state), a chunk swapped,
reordered or from another statement, a replayed older snapshot.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.db import NodeBase
from gateway.matching.filter import TagFilter, bits_for, encode_snapshot
from gateway.matching.filter_store import chunk_of, load_replica, save_chunk, save_state
from gateway.matching.filter_sync import (
    FilterReplica,
    Publication,
    ResyncNeeded,
    SyncError,
    publish_delta,
    publish_snapshot,
)
from gateway.v1 import filter_pb2 as fpb
from tests.postgres import Databases, opened

BANK, POLICE = "bank-a", "police-a"
KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
TAGS = [os.urandom(8) for _ in range(3_000)]


def snapshot(
    version: int = 1, chunk_bytes: int = 1_000, key: Ed25519PrivateKey = KEY
) -> Publication:
    state = TagFilter.decode(encode_snapshot(TAGS, bits_for(len(TAGS))))
    return publish_snapshot(
        state,
        version=version,
        responder=BANK,
        recipient=POLICE,
        signer=key,
        chunk_bytes=chunk_bytes,
    )


def delta(previous: Publication, added: list[bytes], removed: list[bytes]) -> Publication:
    return publish_delta(
        previous,
        added_tags=added,
        removed_tags=removed,
        responder=BANK,
        recipient=POLICE,
        signer=KEY,
        chunk_bytes=1_000,
    )


def replica() -> FilterReplica:
    return FilterReplica(responder=BANK, recipient=POLICE, responder_key=PUBLIC)


def take(held: FilterReplica, publication: Publication) -> None:
    held.begin(publication.signed)
    done = [held.add_chunk(c) for c in publication.chunks]
    assert done == [False] * (len(done) - 1) + [True]


def test_a_replica_follows_a_snapshot_and_deltas_to_the_responders_state() -> None:
    first = snapshot()
    assert len(first.chunks) > 5
    held = replica()
    take(held, first)
    assert held.version == 1 and all(held.state.might_hold(t) for t in TAGS[:100])  # type: ignore[union-attr]
    new = [os.urandom(8) for _ in range(30)]
    second = delta(first, new, TAGS[:30])
    take(held, second)
    fresh = TagFilter.decode(encode_snapshot(TAGS[30:] + new, first.state.bits))
    assert held.version == 2
    assert held.state is not None and held.state.digest() == fresh.digest()
    assert all(held.state.might_hold(t) for t in new)


def test_a_transfer_resumes_from_the_last_verified_chunk() -> None:
    first = snapshot()
    held = replica()
    held.begin(first.signed)
    for chunk in first.chunks[:3]:
        held.add_chunk(chunk)
    assert held.next_chunk == 3 and held.progress() == (3, len(first.chunks))
    with pytest.raises(SyncError, match="chunk 5 arrived; chunk 3 is next"):
        held.add_chunk(first.chunks[5])
    for chunk in first.chunks[3:]:
        held.add_chunk(chunk)
    assert held.version == 1


def test_a_statement_signed_by_another_key_is_refused() -> None:
    held = replica()
    with pytest.raises(SyncError, match="not signed by bank-a's key in the directory"):
        held.begin(snapshot(key=Ed25519PrivateKey.generate()).signed)
    forged = fpb.SignedFilterStatement.FromString(snapshot().signed)
    statement = fpb.FilterStatement.FromString(forged.statement)
    statement.recipient = "police-b"
    forged.statement = statement.SerializeToString()
    with pytest.raises(SyncError, match="not signed"):
        held.begin(forged.SerializeToString())
    assert held.state is None


def test_a_delta_that_does_not_chain_asks_for_a_full_resync() -> None:
    first = snapshot()
    second = delta(first, [os.urandom(8)], [])
    third = delta(second, [os.urandom(8)], [])
    held = replica()
    with pytest.raises(ResyncNeeded, match="full snapshot"):
        held.begin(second.signed)
    take(held, first)
    with pytest.raises(ResyncNeeded, match="applies to version 2; the held filter is version 1"):
        held.begin(third.signed)
    other = delta(snapshot(), [os.urandom(8)], [])  # version 1 -> 2, from another state
    other_first = publish_snapshot(
        TagFilter.decode(encode_snapshot(TAGS[1:], first.state.bits)),
        version=1,
        responder=BANK,
        recipient=POLICE,
        signer=KEY,
    )
    wrong = delta(other_first, [os.urandom(8)], [])
    with pytest.raises(ResyncNeeded, match="a filter other than the one held"):
        held.begin(wrong.signed)
    take(held, other)  # same state content as `first`: chains, digest matches
    assert held.version == 2


def test_a_chunk_swapped_or_from_another_statement_is_refused() -> None:
    first = snapshot()
    held = replica()
    held.begin(first.signed)
    swapped = fpb.FilterChunk.FromString(first.chunks[0])
    swapped.data = swapped.data[:-1] + bytes([swapped.data[-1] ^ 1])
    with pytest.raises(SyncError, match="chunk 0 does not match its signed digest"):
        held.add_chunk(swapped.SerializeToString())
    with pytest.raises(SyncError, match="belongs to another statement"):
        held.add_chunk(snapshot().chunks[0])
    assert held.next_chunk == 0


def test_an_older_snapshot_replayed_is_refused() -> None:
    held = replica()
    take(held, snapshot(version=5))
    with pytest.raises(SyncError, match="not newer than the held version 5"):
        held.begin(snapshot(version=4).signed)


def test_a_sync_interrupted_by_a_restart_resumes_from_the_database(databases: Databases) -> None:
    url = databases.url("police")
    first = snapshot()
    with opened(url) as engine:
        NodeBase.metadata.create_all(engine)
        held = load_replica(engine, responder=BANK, recipient=POLICE, responder_key=PUBLIC)
        held.begin(first.signed)
        for chunk in first.chunks[:4]:
            held.add_chunk(chunk)
            save_chunk(engine, BANK, first.signed, chunk_of(chunk), chunk)
    with opened(url) as engine:  # the node restarted
        held = load_replica(engine, responder=BANK, recipient=POLICE, responder_key=PUBLIC)
        assert held.next_chunk == 4 and held.state is None
        for chunk in first.chunks[4:]:
            held.add_chunk(chunk)
        save_state(engine, held)
    with opened(url) as engine:
        held = load_replica(engine, responder=BANK, recipient=POLICE, responder_key=PUBLIC)
        assert held.version == 1 and held.next_chunk is None
        assert held.state is not None and held.state.digest() == first.state.digest()
        # A stored chunk altered in the database does not verify: the transfer is dropped.
        second = delta(first, [os.urandom(8)], [])
        held.begin(second.signed)
        save_chunk(engine, BANK, second.signed, 0, b"\x00tampered")
    with opened(url) as engine:
        held = load_replica(engine, responder=BANK, recipient=POLICE, responder_key=PUBLIC)
        assert held.version == 1 and held.next_chunk is None


def test_a_filter_claiming_more_tags_than_allowed_is_refused_before_decompressing() -> None:
    first = snapshot()
    held = FilterReplica(
        responder=BANK, recipient=POLICE, responder_key=PUBLIC, max_tags=len(TAGS) - 1
    )
    held.begin(first.signed)
    for chunk in first.chunks[:-1]:
        held.add_chunk(chunk)
    with pytest.raises(SyncError, match=f"claims {len(TAGS)} values, more than the 2999 allowed"):
        held.add_chunk(first.chunks[-1])
    assert held.state is None
