"""The broker's client side: delivering envelopes to nodes over mTLS, with deadlines.

The broker dials a node at the endpoint the directory lists and pins the server's
certificate name to the node id, so an answer really comes from the node it addressed.
"""

from __future__ import annotations

import threading

import grpc

from gateway.pki.directory import Member
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc


class DeliveryError(Exception):
    """A node could not be reached or refused the delivery; the reason names which."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class NodeDialer:
    """Keeps one channel per node endpoint and delivers envelopes through it."""

    def __init__(self, tls: TlsFiles, *, timeout_s: float = 10.0) -> None:
        self._tls = tls
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._channels: dict[tuple[str, str], grpc.Channel] = {}

    def _stub(self, member: Member) -> rpc.NodeStub:
        key = (member.node_id, member.endpoint)
        with self._lock:
            channel = self._channels.get(key)
            if channel is None:
                channel = secure_channel(member.endpoint, member.node_id, self._tls)
                self._channels[key] = channel
        return rpc.NodeStub(channel)

    def deliver(self, member: Member, envelope: pb.Envelope) -> pb.DeliverReply:
        if not member.endpoint:
            raise DeliveryError(f"{member.node_id} lists no endpoint", permanent=True)
        try:
            reply: pb.DeliverReply = self._stub(member).Deliver(envelope, timeout=self._timeout_s)
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            permanent = code in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.FAILED_PRECONDITION,
            )
            details = exc.details() if hasattr(exc, "details") else ""
            raise DeliveryError(
                f"{member.node_id}: {code.name} {details}".strip(), permanent=permanent
            ) from exc
        return reply

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
