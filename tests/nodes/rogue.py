"""A server holding the broker's certificate: what a node must not trust blindly."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc

from gateway.localnet import Consortium
from gateway.transport import TlsFiles, server_credentials, server_options
from gateway.v1 import gateway_pb2_grpc as rpc


def tls(consortium: Consortium, node_id: str) -> TlsFiles:
    bundle = consortium.pki.bundle(node_id)
    return TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)


@contextmanager
def as_broker(consortium: Consortium, servicer: rpc.BrokerServicer) -> Iterator[int]:
    """Serve `servicer` on loopback with the broker's certificate; yields its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=server_options())
    rpc.add_BrokerServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(tls(consortium, "broker")))
    server.start()
    try:
        yield port
    finally:
        server.stop(0)
