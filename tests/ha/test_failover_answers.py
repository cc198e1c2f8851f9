"""What a node's fail-over client makes of each answer, one broker process at a time.

Two servers holding the broker's certificate stand in for two broker processes, each
answering Submit as the test scripts it. The cheapest way to be fooled here is the
resend after a crash: the first process stored the message, then went away before
answering, and the second calls the resend a replay. The caller must hear the first
failure (UNAVAILABLE, ask again under a new id), never "already exists" as if the
message were refused, and never a success it did not get.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import grpc
import pytest

from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.broker_endpoints import BrokerEndpoints
from tests.consortium import Consortium
from tests.nodes.rogue import as_broker, tls

SUBMIT_TIMEOUT_S = 5.0


class Scripted(rpc.BrokerServicer):
    """Answers every Submit with `status` (or with a reply if None), recording each request."""

    def __init__(self, status: grpc.StatusCode | None) -> None:
        self.status = status
        self.seen: list[bytes] = []

    def Submit(self, request: pb.Envelope, context: grpc.ServicerContext) -> Any:
        self.seen.append(request.SerializeToString())
        if self.status is not None:
            context.abort(self.status, f"scripted {self.status.name}")
        return pb.SubmitReply()


@pytest.fixture
def serve(consortium: Consortium) -> Iterator[Any]:
    with ExitStack() as stack:

        def start(*servicers: Scripted) -> BrokerEndpoints:
            ports = [stack.enter_context(as_broker(consortium, s)) for s in servicers]
            client = BrokerEndpoints(
                "broker", tls(consortium, "police-1"), [f"127.0.0.1:{p}" for p in ports]
            )
            stack.callback(client.close)
            return client

        yield start


def envelope() -> pb.Envelope:
    return pb.Envelope(header=b"a signed header", signature=b"s" * 64)


def test_a_resend_called_a_replay_reports_the_first_failure(serve: Any) -> None:
    crashed, survivor = (
        Scripted(grpc.StatusCode.UNAVAILABLE),
        Scripted(grpc.StatusCode.ALREADY_EXISTS),
    )
    client = serve(crashed, survivor)
    with pytest.raises(grpc.RpcError) as raised:
        client.call("Submit", envelope(), SUBMIT_TIMEOUT_S)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "scripted UNAVAILABLE" in (raised.value.details() or "")
    # The resend was the same message, not a new one: same bytes at both processes.
    assert crashed.seen == survivor.seen == [envelope().SerializeToString()]


def test_a_resend_the_other_process_accepts_is_the_answer(serve: Any) -> None:
    crashed, survivor = Scripted(grpc.StatusCode.UNAVAILABLE), Scripted(None)
    client = serve(crashed, survivor)
    reply = client.call("Submit", envelope(), SUBMIT_TIMEOUT_S)
    assert isinstance(reply, pb.SubmitReply)
    assert len(crashed.seen) == len(survivor.seen) == 1


def test_a_replay_without_a_failure_first_is_the_brokers_answer(serve: Any) -> None:
    replayed, untouched = Scripted(grpc.StatusCode.ALREADY_EXISTS), Scripted(None)
    client = serve(replayed, untouched)
    with pytest.raises(grpc.RpcError) as raised:
        client.call("Submit", envelope(), SUBMIT_TIMEOUT_S)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert untouched.seen == []


def test_any_other_refusal_is_not_failed_over(serve: Any) -> None:
    refusing, untouched = Scripted(grpc.StatusCode.PERMISSION_DENIED), Scripted(None)
    client = serve(refusing, untouched)
    with pytest.raises(grpc.RpcError) as raised:
        client.call("Submit", envelope(), SUBMIT_TIMEOUT_S)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert untouched.seen == []
