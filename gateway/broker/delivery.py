"""The broker's client side: delivering envelopes to nodes over mTLS, with deadlines.

The broker dials a node at the endpoint the directory lists, pins the server's
certificate name to the node id, and before it uses a channel checks that the server
presents the SPIFFE id and the certificate the directory lists for that node
(`gateway.peer_check`), so an answer really comes from the node it addressed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from gateway.peer_check import (
    RECHECK_S,
    ExpectedPeer,
    PeerMismatch,
    PeerUnreachable,
    check_peer,
    own_consortium,
)
from gateway.pki.directory import Member
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc


class DeliveryError(Exception):
    """A node could not be reached or refused the delivery; the reason names which."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass
class _Channel:
    channel: grpc.Channel
    checked_at: float
    stub: rpc.NodeStub
    """Made once per channel: a stub builds a callable for every method of the service."""


class NodeDialer:
    """Keeps one checked channel per node, endpoint and pinned certificate."""

    def __init__(self, tls: TlsFiles, *, timeout_s: float = 10.0) -> None:
        self._tls = tls
        self._timeout_s = timeout_s
        self._consortium = own_consortium(tls)
        self._lock = threading.Lock()
        """Guards `_channels`; never held across the peer check or a call."""
        self._channels: dict[tuple[str, str, str], _Channel] = {}

    def _stub(self, member: Member, deadline: float) -> rpc.NodeStub:
        key = (member.node_id, member.endpoint, member.cert_sha256)
        with self._lock:
            known = self._channels.get(key)
            checked_at = known.checked_at if known else None
        now = time.monotonic()
        if checked_at is None or now - checked_at > RECHECK_S:
            expected = ExpectedPeer(member.node_id, self._consortium, member.cert_sha256)
            try:
                check_peer(member.endpoint, expected, self._tls, max(deadline - now, 0.1))
            except PeerUnreachable as exc:
                raise DeliveryError(f"{member.node_id}: UNAVAILABLE {exc}") from exc
            except PeerMismatch as exc:
                self._drop(lambda k: k == key)
                raise DeliveryError(str(exc)) from exc
        stale: list[grpc.Channel] = []
        with self._lock:
            entry = self._channels.get(key)
            if entry is None:
                channel = secure_channel(member.endpoint, member.node_id, self._tls)
                entry = self._channels[key] = _Channel(channel, now, rpc.NodeStub(channel))
            entry.checked_at = max(entry.checked_at, now)
            for other in [k for k in self._channels if k[0] == member.node_id and k != key]:
                stale.append(self._channels.pop(other).channel)  # rotated or moved
        for channel in stale:
            channel.close()
        return entry.stub

    def _drop(self, which: Callable[[tuple[str, str, str]], bool]) -> None:
        with self._lock:
            keys = [k for k in self._channels if which(k)]
            dropped = [self._channels.pop(k).channel for k in keys]
        for channel in dropped:
            channel.close()

    def deliver(self, member: Member, envelope: pb.Envelope) -> pb.DeliverReply:
        if not member.endpoint:
            raise DeliveryError(f"{member.node_id} lists no endpoint", permanent=True)
        deadline = time.monotonic() + self._timeout_s
        stub = self._stub(member, deadline)
        try:
            reply: pb.DeliverReply = stub.Deliver(
                envelope, timeout=max(deadline - time.monotonic(), 0.1)
            )
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
        self._drop(lambda _key: True)
