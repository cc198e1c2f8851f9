"""The node's PKI bundle: files, certificate against keys and CA, and the directory.

Catches the mistakes that otherwise surface as a refused handshake or an envelope that
does not verify at the first request: a bundle of another node, keys replaced by a new
`pki issue`, an expired certificate, a member the consortium revoked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from gateway.config import NodeConfig
from gateway.crypto.blinded import OprfServer
from gateway.pki.ca import certificate_fingerprint, node_id_from_spiffe
from gateway.pki.directory import Directory, DirectoryError, SignedDirectoryBlob, verify_directory
from gateway.pki.keys import NodeKeys, read_hex
from gateway.pki.store import OPRF_KEY_ROLES, NodeBundle
from gateway.transport import TlsFiles, secure_channel
from gateway.v1 import gateway_pb2 as pb
from gateway.v1 import gateway_pb2_grpc as rpc
from nodes.preflight.checks import Check, fail, ok, skip, warn

BUNDLE, BROKER, MEMBER = "PKI bundle", "broker and directory", "directory membership"
DIRECTORY_DEADLINE_S = 10.0


@dataclass(frozen=True)
class BundleFacts:
    """What the bundle holds, for comparing with the directory."""

    keys: NodeKeys
    cert_pem: bytes
    oprf_public: bytes


def check_bundle(
    config: NodeConfig, now: dt.datetime | None = None
) -> tuple[Check, BundleFacts | None]:
    bundle = NodeBundle(config.pki_bundle)
    reissue = f"ask the consortium administrator for {config.node_id}'s bundle"
    try:
        consortium = bundle.consortium()
        keys = bundle.keys()
        cert_pem = bundle.tls_cert.read_bytes()
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca = x509.load_pem_x509_certificate(bundle.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(bundle.tls_key.read_bytes(), password=None)
        bundle.directory_verify_key()
        oprf_public = b""
        if config.role in OPRF_KEY_ROLES and (config.role != "police" or bundle.oprf_key.exists()):
            oprf_public = OprfServer(read_hex(bundle.oprf_key, 32)).public_key
    except FileNotFoundError as exc:
        return fail(BUNDLE, f"{exc.filename} is missing; {reissue}"), None
    except (OSError, ValueError) as exc:
        return fail(BUNDLE, f"{config.pki_bundle} cannot be read ({exc}); {reissue}"), None
    spiffe = [
        u
        for u in _san(cert).get_values_for_type(x509.UniformResourceIdentifier)
        if node_id_from_spiffe(u, consortium) is not None
    ]
    named = [node_id_from_spiffe(u, consortium) for u in spiffe]
    if config.node_id not in named:
        shown = ", ".join(n or "?" for n in named) or "no node of this consortium"
        return fail(
            BUNDLE,
            f"the certificate names {shown}, not {config.node_id}: pki_bundle points at "
            f"another node's bundle; point it at {config.node_id}'s",
        ), None
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        return fail(BUNDLE, f"tls.key does not belong to tls.crt; {reissue}"), None
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return fail(BUNDLE, f"tls.crt is not issued by the bundle's CA (ca.crt); {reissue}"), None
    when = now or dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc <= when:
        expired = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
        return fail(
            BUNDLE,
            f"the certificate expired on {expired}; have it renewed with "
            f"`gateway pki rotate --node {config.node_id} --tls`",
        ), None
    if cert.not_valid_before_utc > when:
        return fail(BUNDLE, "the certificate is not valid yet; check this machine's clock"), None
    until = cert.not_valid_after_utc.strftime("%Y-%m-%d")
    facts = BundleFacts(keys, cert_pem, oprf_public)
    return ok(BUNDLE, f"certificate for {config.node_id}, valid until {until}"), facts


def _san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return x509.SubjectAlternativeName([])


def fetch_directory(config: NodeConfig, *, serve: bool) -> tuple[Check, Directory | None]:
    """The signed directory from the broker, verified under the bundle's directory key.

    An unreachable broker fails `node check`; `node serve` only warns, since every
    request reaches the node through the broker and it fetches the directory then.
    """
    bundle = NodeBundle(config.pki_bundle)
    tls = TlsFiles(bundle.tls_cert, bundle.tls_key, bundle.ca_cert)
    deadline = min(config.call_timeout_s, DIRECTORY_DEADLINE_S)
    try:
        with secure_channel(config.broker_endpoint, config.broker_id, tls) as channel:
            reply = rpc.BrokerStub(channel).GetDirectory(pb.DirectoryRequest(), timeout=deadline)
    except grpc.RpcError as exc:
        code = exc.code().name  # type: ignore[attr-defined]
        if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return fail(
                BROKER,
                f"the broker refused this node ({code}): {config.node_id} is revoked, or its "
                "certificate is not the one the directory lists; ask the consortium "
                "administrator",
            ), None
        what = (
            f"broker {config.broker_id} at {config.broker_endpoint} is unreachable ({code}); "
            "start it, or fix broker_endpoint/broker_id"
        )
        return (warn if serve else fail)(BROKER, what), None
    try:
        directory = verify_directory(
            SignedDirectoryBlob(reply.directory, reply.signature), bundle.directory_verify_key()
        )
    except DirectoryError as exc:
        return fail(
            BROKER,
            f"the broker's directory does not verify under the bundle's directory key ({exc}); "
            "the bundle is from another consortium, or the broker's PKI folder is",
        ), None
    return ok(BROKER, f"directory serial {directory.serial} verifies"), directory


def check_member(
    config: NodeConfig, directory: Directory | None, facts: BundleFacts | None
) -> Check:
    if directory is None or facts is None:
        return skip(MEMBER, "not checked: needs the bundle and the directory")
    member = directory.get(config.node_id)
    admin = "ask the consortium administrator"
    if member is None:
        return fail(MEMBER, f"{config.node_id} is not in the directory; {admin} to issue it")
    if not member.active:
        return fail(MEMBER, f"{config.node_id} is revoked in the directory; {admin} to readmit it")
    if member.role != config.role:
        return fail(
            MEMBER,
            f"the directory lists {config.node_id} as a {member.role}, the configuration says "
            f"role = {config.role}; fix role",
        )
    stale = [
        name
        for name, mine, listed in (
            ("signing key", facts.keys.sign_public, member.sign_key),
            ("sealing key", facts.keys.seal_public, member.seal_key),
            ("OPRF key", facts.oprf_public, member.oprf_key),
        )
        if config.role in OPRF_KEY_ROLES or name != "OPRF key"
        if mine != listed
    ]
    if certificate_fingerprint(facts.cert_pem) != member.cert_sha256:
        stale.append("certificate")
    if stale:
        return fail(
            MEMBER,
            f"the bundle's {', '.join(stale)} differ from the directory's (key version "
            f"{member.key_version}): copy {config.node_id}'s current bundle here",
        )
    return ok(MEMBER, f"active {member.role}, keys at version {member.key_version}")
