"""Filter mode over a real match index (nodes.index_build): the filter is the index's own
tags, a record added or deleted reaches the police as a delta, and the label round finds
labels by tag; every expected tag is computed with the independent reference."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import nodes.schema  # noqa: F401  (registers every table and the tag index)
from gateway.crypto.blinded import OprfServer
from gateway.db import NodeBase, make_engine
from gateway.identifiers import Identifier, IdentifierKind
from gateway.matching.eval_quota import EvalQuota, charge
from gateway.matching.filter import TagFilter, bits_for, encode_snapshot
from gateway.matching.filter_query import (
    AnsweredQueries,
    FilterQuery,
    answer_filter_query,
    answer_label_request,
)
from gateway.matching.filter_source import iter_tags, labels_by_tag
from gateway.matching.filter_sync import FilterReplica, publish_delta, publish_snapshot
from nodes.index_build import update_index
from nodes.records import upsert_records
from tests.matching import reference

HELD = [f"+86137{n:08d}" for n in range(50)]


def phone(value: str) -> Identifier:
    return Identifier(IdentifierKind.PHONE, value)


def test_filter_mode_end_to_end_over_the_index(tmp_path: Path) -> None:
    engine = make_engine(str(tmp_path / "node.db"))
    NodeBase.metadata.create_all(engine)
    upsert_records(engine, [(phone(v), {"status": f"S{i}"}) for i, v in enumerate(HELD)])
    server = OprfServer.generate()
    key = server.private_key_bytes()
    update_index(engine, key, bucket_bits=8, label_fields=["status"])

    outputs = server.evaluate([reference.canonical("phone", v) for v in HELD])
    assert sorted(iter_tags(engine)) == sorted(reference.tag(y) for y in outputs)

    signer = Ed25519PrivateKey.generate()
    public = signer.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    tags = list(iter_tags(engine))
    first = publish_snapshot(
        TagFilter.decode(encode_snapshot(tags, bits_for(len(tags)))),
        version=1,
        responder="bank-a",
        recipient="police-a",
        signer=signer,
    )
    replica = FilterReplica(responder="bank-a", recipient="police-a", responder_key=public)
    replica.begin(first.signed)
    assert [replica.add_chunk(c) for c in first.chunks][-1]

    # A new customer: the index grows, the responder sends the delta of its tags.
    newcomer = "+8613899990000"
    upsert_records(engine, [(phone(newcomer), {"status": "NEW"})])
    update_index(engine, key, bucket_bits=8, label_fields=["status"])
    added = sorted(set(iter_tags(engine)) - set(tags))
    assert added == [reference.tag(server.evaluate([reference.canonical("phone", newcomer)])[0])]
    second = publish_delta(
        first,
        added_tags=added,
        removed_tags=[],
        responder="bank-a",
        recipient="police-a",
        signer=signer,
    )
    replica.begin(second.signed)
    assert [replica.add_chunk(c) for c in second.chunks][-1]
    assert replica.version == 2 and replica.state is not None

    answered = AnsweredQueries()
    query = FilterQuery(
        [phone(HELD[7]), phone("+8613900000001"), phone(newcomer)],
        server.public_key,
        max_batch=256,
    )
    answer, size = answer_filter_query(
        query.payload(),
        querier="police-a",
        declared_batch=query.size,
        max_batch=256,
        server=server,
        answered=answered,
        charge=lambda count: charge(engine, "police-a", count, EvalQuota(1_000, 10_000)),
    )
    assert size == 64
    assert query.test(answer, replica.state) == 2
    labels, asked = answer_label_request(
        query.label_request(),
        querier="police-a",
        answered=answered,
        labels=lambda t: labels_by_tag(engine, t),
    )
    assert asked == 2
    outcome = query.open_labels(labels)
    assert [(m.position, m.fields["status"]) for m in outcome.matches] == [(0, "S7"), (2, "NEW")]
    assert labels_by_tag(engine, [os.urandom(8)]) == {}
