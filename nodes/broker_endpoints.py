"""Every broker process a node may call, with fail-over from one to the next.

Broker processes over one PostgreSQL database share one identity, one signing key and
one log, so any of them may answer any call: the node spreads its calls over the
endpoints the signed directory lists for the broker, round robin (before it has a
directory, over the configured endpoint). A call answered UNAVAILABLE (the process is
down, restarting or unreachable) is made again, with the same request, on the next
endpoint: a resent submission keeps its message id and signature, and the broker
answers a durable message it stored before with its first outcome, so a request is
never executed twice. Any other status is the broker's answer and is raised as it is.
Each attempt has the call's deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import grpc

from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2_grpc as rpc


class BrokerEndpoints:
    """One channel per broker endpoint; `call` picks them in turn and fails over."""

    def __init__(self, broker_id: str, tls: TlsFiles, endpoints: Sequence[str]) -> None:
        self._broker_id = broker_id
        self._tls = tls
        self._lock = threading.Lock()
        """Guards the fields below; held to read or swap them, never across a call."""
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: list[tuple[str, rpc.BrokerStub]] = []
        self._next = 0
        self.use(endpoints)

    @property
    def endpoints(self) -> list[str]:
        with self._lock:
            return [endpoint for endpoint, _ in self._stubs]

    def use(self, endpoints: Sequence[str]) -> None:
        """Call these endpoints from now on (the directory changed); keep open channels."""
        wanted = list(dict.fromkeys(e for e in endpoints if e))
        if not wanted:
            return
        with self._lock:
            if wanted == [endpoint for endpoint, _ in self._stubs]:
                return
            dropped = [c for e, c in self._channels.items() if e not in wanted]
            for endpoint in wanted:
                if endpoint not in self._channels:  # a channel connects later, not here
                    self._channels[endpoint] = secure_channel(endpoint, self._broker_id, self._tls)
            self._channels = {e: self._channels[e] for e in wanted}
            self._stubs = [(e, rpc.BrokerStub(self._channels[e])) for e in wanted]
        for channel in dropped:
            channel.close()

    def _turn(self) -> list[tuple[str, rpc.BrokerStub]]:
        """Every stub, starting with the next one in turn."""
        with self._lock:
            stubs, start = self._stubs, self._next
            self._next = (start + 1) % len(stubs)
        return stubs[start:] + stubs[:start]

    def call(self, method: str, request: Any, timeout_s: float) -> Any:
        """`method` on one broker process, failing over to the next on UNAVAILABLE.

        If every endpoint is unavailable (say, all restarting at once), the first is
        tried once more, waiting for it to come up until the deadline.
        """
        order = self._turn()
        for _endpoint, stub in order:
            try:
                return getattr(stub, method)(request, timeout=timeout_s)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
        _endpoint, stub = order[0]
        return getattr(stub, method)(request, timeout=timeout_s, wait_for_ready=True)

    def close(self) -> None:
        with self._lock:
            channels, self._channels, self._stubs = list(self._channels.values()), {}, []
        for channel in channels:
            channel.close()
