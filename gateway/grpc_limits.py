"""Resource limits of every gRPC server and channel, in one place so SECURITY.md can cite them.

A member's certificate admits it to the server, not to unbounded resources: without
these, one client could open thousands of streams on one connection, queue calls
without end behind the worker threads, ping the server continually or keep one
connection for ever past a certificate's revocation. The figures are documented in
SECURITY.md ("gRPC resource limits").
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Largest message on any connection: an envelope (4 MiB by default) with room to spare."""

SMALL_REQUEST_BYTES = 64 * 1024
"""Largest request of every method that carries no envelope (status, directory, audit
reads, health, reflection): their requests are a few ids and numbers."""

ENVELOPE_METHODS = frozenset({"/gateway.v1.Broker/Submit", "/gateway.v1.Node/Deliver"})
"""The methods whose request is an envelope, allowed up to MAX_MESSAGE_BYTES."""

QUEUED_PER_WORKER = 4
"""Calls a server admits per worker thread; past that it answers RESOURCE_EXHAUSTED at
once instead of queueing calls it cannot serve before their deadline."""

MAX_CONCURRENT_STREAMS = 64
"""Calls in flight on one HTTP/2 connection (one client)."""

KEEPALIVE_MS = 60_000
"""A client pings an idle connection this often, to notice a dead peer."""

KEEPALIVE_TIMEOUT_MS = 20_000
"""A ping unanswered this long closes the connection."""

MIN_PING_INTERVAL_MS = 30_000
"""A server accepts pings no more often than this; MAX_PING_STRIKES faster ones close
the connection (a ping flood costs the client its connection)."""

MAX_PING_STRIKES = 2

MAX_CONNECTION_AGE_MS = 30 * 60_000
"""A connection is closed after this long, so each client handshakes again and a revoked
certificate cannot keep an old connection open."""

MAX_CONNECTION_AGE_GRACE_MS = 30_000
"""Calls in flight when a connection ages out get this long to finish."""

MAX_CONNECTION_IDLE_MS = 5 * 60_000
"""A connection without calls this long is closed."""


def request_limit(method: str) -> int:
    """The largest request `method` accepts, in bytes."""
    return MAX_MESSAGE_BYTES if method in ENVELOPE_METHODS else SMALL_REQUEST_BYTES


def maximum_concurrent_rpcs(workers: int) -> int:
    return workers * QUEUED_PER_WORKER


def server_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
        ("grpc.keepalive_time_ms", KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", MAX_PING_STRIKES),
        ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
        ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
        ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
    ]


def client_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 0),
    ]
