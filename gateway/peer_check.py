"""Clients check the server they dial: its SPIFFE id and the certificate the directory pins.

gRPC Python offers a client neither a certificate-verification hook nor the channel's
auth context, so the check is a TLS handshake of its own, made with the same client
certificate, CA and server name as the channel: the server's certificate must chain to
the consortium CA, name the dialled node id as DNS name (TLS hostname check) and as
SPIFFE id, and be byte for byte the one the signed directory lists (SHA-256 pin). A
channel is opened only after the check passes, and checked again before use once
`RECHECK_S` has passed, so a channel that reconnected (gRPC reconnects by itself,
e.g. when a connection ages out) to a server that no longer holds the pinned
certificate is closed within that time. The gRPC handshake itself still checks the
CA and the DNS name on every connection.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass

import grpc

from gateway.pki.ca import certificate_spiffe_ids, spiffe_id
from gateway.transport import TlsFiles

RECHECK_S = 60.0
"""How long a passed check holds before the channel is checked again."""


class PeerMismatch(Exception):
    """The server dialled is not the member the directory lists; the text says how."""


class PeerUnreachable(PeerMismatch):
    """No TLS session with the server at all (down, refused, timed out): retry later."""


class PeerRefused(grpc.RpcError):  # type: ignore[misc]
    """A call not made because the server failed the peer check.

    An RpcError with status UNAVAILABLE, so callers that fail over or report an
    unreachable server treat it as one, with the check's reason as its details.
    """

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self._reason = reason
        self.unreachable = unreachable

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return f"peer check: {self._reason}"


@dataclass(frozen=True)
class ExpectedPeer:
    """Who a client means to reach: node id, consortium and pinned certificate.

    `cert_sha256` None means no directory is known yet (a node's first call to the
    broker, which fetches it): the SPIFFE id is checked, the pin from the next call on.
    "" means the directory pins none, which fails.
    """

    node_id: str
    consortium: str
    cert_sha256: str | None


def _host_port(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise PeerMismatch(f"endpoint {endpoint!r} is not host:port")
    return host.strip("[]"), int(port)


def _context(tls: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=tls.ca.read_text())
    context.load_cert_chain(tls.cert, tls.key)
    context.set_alpn_protocols(["h2"])
    return context


def peer_certificate(endpoint: str, server_name: str, tls: TlsFiles, timeout_s: float) -> bytes:
    """The DER certificate the server at `endpoint` presents to us as `server_name`.

    Raises PeerMismatch when the handshake fails (wrong CA, wrong name, refused).
    """
    host, port = _host_port(endpoint)
    context = _context(tls)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as conn,
        ):
            der = conn.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        raise PeerMismatch(f"{server_name} at {endpoint}: {exc.verify_message}") from exc
    except ssl.SSLError as exc:
        raise PeerMismatch(f"{server_name} at {endpoint}: TLS handshake failed ({exc})") from exc
    except OSError as exc:
        raise PeerUnreachable(f"{server_name} at {endpoint}: cannot connect ({exc})") from exc
    if not der:
        raise PeerMismatch(f"{server_name} at {endpoint} presented no certificate")
    return der


def check_peer(endpoint: str, expected: ExpectedPeer, tls: TlsFiles, timeout_s: float) -> None:
    """Raise PeerMismatch unless `endpoint` serves the certificate `expected` pins."""
    der = peer_certificate(endpoint, expected.node_id, tls, timeout_s)
    want = spiffe_id(expected.consortium, expected.node_id)
    if certificate_spiffe_ids(der) != [want]:
        raise PeerMismatch(f"{expected.node_id} at {endpoint}: certificate does not name {want}")
    if expected.cert_sha256 is None:
        return
    if not expected.cert_sha256:  # fail closed, as the server side does
        raise PeerMismatch(f"the directory pins no certificate for {expected.node_id!r}")
    if hashlib.sha256(der).hexdigest() != expected.cert_sha256:
        raise PeerMismatch(
            f"{expected.node_id} at {endpoint}: certificate is not the one the directory lists"
        )


def own_consortium(tls: TlsFiles) -> str:
    """The consortium named by our own certificate's SPIFFE id."""
    for uri in certificate_spiffe_ids(tls.cert.read_bytes()):
        rest = uri.removeprefix("spiffe://")
        consortium, sep, _ = rest.partition("/node/")
        if sep:
            return consortium
    raise PeerMismatch(f"{tls.cert} names no SPIFFE node id")
