"""Health, reflection and every method answer current members only, within their limits.

The cheapest moves: a revoked member (whose certificate the CA still vouches for) or a
holder of any CA-signed certificate the directory does not list asks the health service
whether the broker and a bank are up, or asks reflection what they offer; a member
sends a request far larger than the method needs, or opens more calls than the server
has threads for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway.grpc_limits import QUEUED_PER_WORKER, SMALL_REQUEST_BYTES
from gateway.pki.ca import issue_node_certificate
from gateway.transport import TlsFiles, new_server, secure_channel
from tests.consortium import Consortium
from tests.security.net import Net, serving


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    consortium = Consortium.create(tmp_path_factory.mktemp("members-only"))
    with serving(consortium, ("bank-a",)) as network:
        yield network


def _channel(net: Net, tls: TlsFiles, target: str) -> grpc.Channel:
    port = net.consortium.broker_port if target == "broker" else net.nodes[target].port
    return secure_channel(f"127.0.0.1:{port}", target, tls)


def _health(net: Net, tls: TlsFiles, target: str) -> grpc.RpcError | int:
    with _channel(net, tls, target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        except grpc.RpcError as exc:
            return exc
    return int(reply.status)


def _reflection(net: Net, tls: TlsFiles, target: str) -> grpc.RpcError | list[str]:
    with _channel(net, tls, target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        try:
            replies = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        except grpc.RpcError as exc:
            return exc
    return [s.name for s in replies[0].list_services_response.service]


def _outsider(net: Net, folder: Path) -> TlsFiles:
    """A certificate the consortium CA signed for a node id the directory never listed."""
    pki = net.consortium.pki
    issued = issue_node_certificate(pki.ca(), pki.consortium, "bank-z")
    folder.mkdir()
    (folder / "tls.crt").write_bytes(issued.cert_pem)
    (folder / "tls.key").write_bytes(issued.key_pem)
    (folder / "ca.crt").write_bytes(pki.bundle("broker").ca_cert.read_bytes())
    return TlsFiles(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")


def test_members_get_health_and_reflection(net: Net) -> None:
    for target in ("broker", "bank-a"):
        assert _health(net, net.tls("police-1"), target) == health_pb2.HealthCheckResponse.SERVING
        services = _reflection(net, net.tls("police-1"), target)
        assert isinstance(services, list) and "grpc.health.v1.Health" in services


def test_a_certificate_the_directory_does_not_list_learns_nothing(net: Net, tmp_path: Path) -> None:
    outsider = _outsider(net, tmp_path / "bank-z")
    for target in ("broker", "bank-a"):
        for answer in (_health(net, outsider, target), _reflection(net, outsider, target)):
            assert isinstance(answer, grpc.RpcError)
            assert answer.code() == grpc.StatusCode.UNAUTHENTICATED
            assert answer.details() == "identity: certificate names 'bank-z', which is not a member"


def test_a_revoked_member_learns_nothing(net: Net) -> None:
    # Last in the module: the revocation is final.
    tls = net.tls("carrier-1")
    assert _health(net, tls, "broker") == health_pb2.HealthCheckResponse.SERVING
    net.consortium.pki.revoke("carrier-1")
    net.reload_broker()
    net.refetch("bank-a")
    for target in ("broker", "bank-a"):
        for answer in (_health(net, tls, target), _reflection(net, tls, target)):
            assert isinstance(answer, grpc.RpcError)
            assert answer.code() == grpc.StatusCode.UNAUTHENTICATED
            assert answer.details() == "identity: member 'carrier-1' is revoked"


def test_a_request_larger_than_its_method_takes_is_refused(net: Net) -> None:
    # Field 15 is unknown to StatusRequest; the request is refused for its size, unparsed.
    padding = bytes([15 << 3 | 2]) + _varint(SMALL_REQUEST_BYTES) + b"x" * SMALL_REQUEST_BYTES
    with _channel(net, net.tls("police-1"), "broker") as channel:
        status = channel.unary_unary(
            "/gateway.v1.Broker/Status",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        with pytest.raises(grpc.RpcError) as info:
            status(padding, timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.details() == (
        f"request of {len(padding)} bytes; /gateway.v1.Broker/Status takes at most "
        f"{SMALL_REQUEST_BYTES}"
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_calls_past_the_servers_admission_are_refused_at_once(net: Net) -> None:
    """One worker admits QUEUED_PER_WORKER calls; the next is refused, not queued."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold(request: bytes, context: grpc.ServicerContext) -> bytes:
        started.release()
        release.wait(30)
        return request

    server = new_server(1, [])
    handler = grpc.method_handlers_generic_handler(
        "t.T", {"Hold": grpc.unary_unary_rpc_method_handler(hold)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary("/t.T/Hold")
    try:
        admitted = [call.future(b"x", timeout=30) for _ in range(QUEUED_PER_WORKER)]
        assert started.acquire(timeout=30)  # the one worker holds the first call
        with pytest.raises(grpc.RpcError) as info:
            call(b"x", timeout=30)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        release.set()
        assert [f.result() for f in admitted] == [b"x"] * QUEUED_PER_WORKER
    finally:
        release.set()
        channel.close()
        server.stop(0)
