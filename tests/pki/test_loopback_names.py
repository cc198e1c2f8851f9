"""Loopback names (localhost, 127.0.0.1, ::1) only in certificates issued with --dev.

The cheapest move: a client (or whoever can change its configuration) dials a member
by the name `localhost`, which every certificate used to carry, so any member's server
passes the name check. Without --dev no certificate names it: the handshake fails, and
only the member whose node id is the dialled name is reached.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from typer.testing import CliRunner

from gateway.cli import app
from gateway.cli.pki_cmd import oprf_key_pair
from gateway.pki.store import PkiFolder
from gateway.transport import TlsFiles, new_server, secure_channel, server_credentials


def _sans(cert_pem: bytes) -> tuple[list[str], list[str]]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        san.get_values_for_type(x509.DNSName),
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)],
    )


def _tls(pki: PkiFolder, node_id: str) -> TlsFiles:
    bundle = pki.bundle(node_id)
    return TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)


@pytest.fixture
def pki(tmp_path: Path) -> PkiFolder:
    folder = PkiFolder(tmp_path / "pki")
    folder.init("test.consortium")
    folder.issue("police-1", "police")
    folder.issue("bank-a", "bank", oprf_key_factory=oprf_key_pair)
    folder.issue("bank-b", "bank", oprf_key_factory=oprf_key_pair, dev=True)
    return folder


def test_certificates_name_loopback_only_when_issued_for_development(pki: PkiFolder) -> None:
    assert _sans(pki.bundle("bank-a").tls_cert.read_bytes()) == (["bank-a"], [])
    dns, ips = _sans(pki.bundle("bank-b").tls_cert.read_bytes())
    assert dns == ["bank-b", "localhost"]
    assert all(ipaddress.ip_address(ip).is_loopback for ip in ips) and len(ips) == 2


def test_rotating_a_certificate_keeps_what_it_was_issued_for(pki: PkiFolder) -> None:
    pki.rotate("bank-a", tls=True)
    pki.rotate("bank-b", tls=True)
    assert _sans(pki.bundle("bank-a").tls_cert.read_bytes()) == (["bank-a"], [])
    assert "localhost" in _sans(pki.bundle("bank-b").tls_cert.read_bytes())[0]


def test_cli_issues_loopback_names_with_dev_only(tmp_path: Path) -> None:
    runner = CliRunner()
    root = tmp_path / "pki"
    init = runner.invoke(app, ["pki", "init", "--consortium", "c.test", "--dir", str(root)])
    assert init.exit_code == 0, init.output
    for node, extra in (("police-1", []), ("police-2", ["--dev"])):
        args = ["pki", "issue", "--node", node, "--role", "police", "--dir", str(root), *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    folder = PkiFolder(root)
    assert _sans(folder.bundle("police-1").tls_cert.read_bytes())[0] == ["police-1"]
    assert "localhost" in _sans(folder.bundle("police-2").tls_cert.read_bytes())[0]


@pytest.fixture
def bank_a_server(pki: PkiFolder) -> Iterator[int]:
    """A server holding bank-a's (non-dev) certificate that answers one echo method."""
    server = new_server(1, [])
    echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", {"E": echo}),))
    port = server.add_secure_port("127.0.0.1:0", server_credentials(_tls(pki, "bank-a")))
    server.start()
    try:
        yield port
    finally:
        server.stop(0)


def _echo(port: int, name: str, tls: TlsFiles) -> grpc.StatusCode:
    with secure_channel(f"127.0.0.1:{port}", name, tls) as channel:
        call = channel.unary_unary("/t.T/E")
        try:
            call(b"x", timeout=10, wait_for_ready=False)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_dialling_localhost_no_longer_reaches_a_member(pki: PkiFolder, bank_a_server: int) -> None:
    police = _tls(pki, "police-1")
    assert _echo(bank_a_server, "bank-a", police) == grpc.StatusCode.OK
    assert _echo(bank_a_server, "localhost", police) == grpc.StatusCode.UNAVAILABLE
    assert _echo(bank_a_server, "127.0.0.1", police) == grpc.StatusCode.UNAVAILABLE
    assert _echo(bank_a_server, "bank-b", police) == grpc.StatusCode.UNAVAILABLE
