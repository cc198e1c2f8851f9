"""Every broker process a node may call, with fail-over from one to the next.

Broker processes over one PostgreSQL database share one identity, one signing key and
one log, so any of them may answer any call: the node spreads its calls over the
endpoints the signed directory lists for the broker, round robin (before it has a
directory, over the configured endpoint). A call answered UNAVAILABLE (the process is
down, restarting or unreachable) is made again, with the same request, on the next
endpoint: a resent submission keeps its message id and signature, and the broker
answers a durable message it stored before with its first outcome, so a request is
never executed twice. Any other status is the broker's answer and is raised as it is.
Each attempt has the call's deadline. Before a channel is used, and again every
`RECHECK_S`, the server behind the endpoint must present the broker's SPIFFE id and
the certificate the signed directory pins for it (`gateway.peer_check`); one that does
not is treated as unavailable, and its channel is closed and opened afresh.
`GetDirectory` needs the SPIFFE id only: the directory proves itself (signed by the
consortium key, never older than the one held), and after the broker's certificate
is rotated the node could not otherwise learn the new pin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from gateway.peer_check import (
    RECHECK_S,
    ExpectedPeer,
    PeerMismatch,
    PeerRefused,
    PeerUnreachable,
    check_peer,
    own_consortium,
)
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2_grpc as rpc

SELF_PROVING = frozenset({"GetDirectory"})
"""Methods whose answer carries its own proof, called with the SPIFFE id check only."""

UP_POLL_S = 0.25
"""While every broker endpoint is down, how often the first one is tried again."""

DOWN_WAIT_S = 2.0
"""While every broker endpoint is down, how long the first is waited for (a broker that
restarts is back within it) before the call fails as unavailable: a user whose broker is
not running hears so at once, not at the end of the call's deadline."""


def _lost_answer(exc: grpc.RpcError) -> bool:
    """Whether `exc`, met on a resend after UNAVAILABLE, says the first attempt got through.

    A resend the broker calls a replay (ALREADY_EXISTS) reached it the first time and
    lost only its answer: an interactive message is not answered twice, so the caller
    hears the first failure (UNAVAILABLE) and may ask again under a new message id.
    Durable messages are answered with their first outcome and never get here.
    """
    return bool(exc.code() == grpc.StatusCode.ALREADY_EXISTS)


class BrokerEndpoints:
    """One channel per broker endpoint; `call` picks them in turn and fails over."""

    def __init__(
        self,
        broker_id: str,
        tls: TlsFiles,
        endpoints: Sequence[str],
        pin: Callable[[], str | None] = lambda: None,
    ) -> None:
        """`pin` gives the broker's certificate fingerprint from the current directory
        (None before there is one)."""
        self._broker_id = broker_id
        self._tls = tls
        self._pin = pin
        self._consortium = own_consortium(tls)
        self._lock = threading.Lock()
        """Guards the fields below; held to read or swap them, never across a call."""
        self._checked: dict[tuple[str, str | None], float] = {}
        """(endpoint, pin) -> when the server there last passed the peer check."""
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
            if not stubs:
                raise PeerRefused("the broker client is closed", unreachable=True)
            self._next = (start + 1) % len(stubs)
        return stubs[start:] + stubs[:start]

    def call(
        self,
        method: str,
        request: Any,
        timeout_s: float,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Any:
        """`method` on one broker process, failing over to the next on UNAVAILABLE.

        If every endpoint is unavailable (say, all restarting at once), the first of them
        to come up within `DOWN_WAIT_S` is called, waiting for its channel to connect.
        """
        order = self._turn()
        pinned = method not in SELF_PROVING
        unavailable: grpc.RpcError | None = None
        for endpoint, stub in order:
            try:
                self._check(endpoint, timeout_s, pinned=pinned)
                return getattr(stub, method)(request, timeout=timeout_s, metadata=metadata)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE:
                    unavailable = unavailable or exc
                    continue
                if unavailable is not None and _lost_answer(exc):
                    raise unavailable from exc
                raise
        waited = min(timeout_s, DOWN_WAIT_S)
        endpoint = self._first_up([e for e, _ in order], time.monotonic() + waited, pinned=pinned)
        with self._lock:
            channel = self._channels.get(endpoint)
        if channel is None:
            raise PeerRefused(f"{endpoint} is no longer a broker endpoint")
        stub = rpc.BrokerStub(channel)
        try:
            return getattr(stub, method)(
                request, timeout=timeout_s, metadata=metadata, wait_for_ready=True
            )
        except grpc.RpcError as exc:
            if unavailable is not None and _lost_answer(exc):
                raise unavailable from exc
            raise

    def _first_up(self, endpoints: list[str], deadline: float, *, pinned: bool) -> str:
        """The first of `endpoints` whose server passes a fresh peer check, polling them
        in turn until `deadline`. Fresh, not the check remembered for `RECHECK_S`: the
        server that passed it a moment ago may be the one that just went down, while
        another, just back, is still in its channel's reconnect backoff."""
        while True:
            refused: PeerRefused | None = None
            for endpoint in endpoints:
                try:
                    left = max(deadline - time.monotonic(), 0.1)
                    self._check(endpoint, min(left, UP_POLL_S * 4), pinned=pinned, fresh=True)
                    return endpoint
                except PeerRefused as exc:
                    if refused is None or not exc.unreachable:
                        refused = exc  # a server that failed the check says more
            assert refused is not None
            if time.monotonic() + UP_POLL_S >= deadline:
                raise refused
            time.sleep(UP_POLL_S)

    def _check(self, endpoint: str, timeout_s: float, *, pinned: bool, fresh: bool = False) -> None:
        """Raise PeerRefused unless the server at `endpoint` passed the peer check lately
        (with `fresh`, now)."""
        pin = self._pin() if pinned else None
        with self._lock:
            checked_at = self._checked.get((endpoint, pin))
        now = time.monotonic()
        if not fresh and checked_at is not None and now - checked_at <= RECHECK_S:
            return
        expected = ExpectedPeer(self._broker_id, self._consortium, pin)
        try:
            check_peer(endpoint, expected, self._tls, timeout_s)
        except PeerUnreachable as exc:
            raise PeerRefused(str(exc), unreachable=True) from exc
        except PeerMismatch as exc:
            self._reopen(endpoint)
            raise PeerRefused(str(exc)) from exc
        with self._lock:
            self._checked[(endpoint, pin)] = now

    def _reopen(self, endpoint: str) -> None:
        """Close the channel to a server that failed the check; the next one is fresh."""
        with self._lock:
            old = self._channels.get(endpoint)
            if old is None:
                return
            self._checked = {k: v for k, v in self._checked.items() if k[0] != endpoint}
            fresh = secure_channel(endpoint, self._broker_id, self._tls)
            self._channels[endpoint] = fresh
            self._stubs = [
                (e, rpc.BrokerStub(fresh) if e == endpoint else stub) for e, stub in self._stubs
            ]
        old.close()

    def close(self) -> None:
        with self._lock:
            channels, self._channels, self._stubs = list(self._channels.values()), {}, []
        for channel in channels:
            channel.close()
