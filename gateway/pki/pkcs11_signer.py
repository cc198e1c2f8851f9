"""Ed25519 signing by a key that stays in an HSM, through PKCS#11 (CKM_EDDSA).

The key is named by an RFC 7512 URI, kept in the key file in place of the key::

    pkcs11:token=gateway;object=bank1-sign?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/hsm-pin

``token`` is the token label, ``object`` the key pair's label (CKA_LABEL),
``module-path`` the vendor's PKCS#11 library, and ``pin-source`` the file holding the
user PIN (else ``GATEWAY_HSM_PIN``). A PIN in the URI itself (``pin-value``) is refused:
the key file is copied around, the PIN should not be.

Ed25519 keys (a node's signing key, the broker's log key, the directory key) and the
CA's ECDSA P-256 key (`Pkcs11CaKey`) can live here. The OPRF key cannot: evaluating the OPRF multiplies a
ristretto255 element by the secret scalar and proves it (DLEQ), operations no PKCS#11
mechanism offers. Nor can the X25519 sealing key: opening a sealed box needs the raw
X25519 shared secret fed to libsodium's XSalsa20-Poly1305, which PKCS#11 does not do.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote

from asn1crypto.core import OctetString
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PIN_ENV = "GATEWAY_HSM_PIN"
ED25519_OID = "1.3.101.112"
"""id-Ed25519 (RFC 8410), the curve of CKK_EC_EDWARDS keys made here."""
P256_OID = "1.2.840.10045.3.1.7"
"""prime256v1 (RFC 5480), the curve of the CA's key."""
_PATH_ATTRS = {"token", "object", "id", "type", "slot-id", "manufacturer", "model", "serial"}
_QUERY_ATTRS = {"module-path", "pin-source"}


class Pkcs11Error(ValueError):
    """The HSM key cannot be reached or used; the message says what to fix."""


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 URI this signer uses."""

    module_path: str
    token: str
    label: str
    pin_source: str = ""

    @classmethod
    def parse(cls, uri: str, *, where: str = "the key file") -> Pkcs11Uri:
        if not uri.startswith("pkcs11:"):
            raise Pkcs11Error(f"{where}: a PKCS#11 URI starts with 'pkcs11:'")
        body = uri[len("pkcs11:") :].strip()
        path, _, query = body.partition("?")
        attrs: dict[str, str] = {}
        for part, allowed in ((path, _PATH_ATTRS), (query, _QUERY_ATTRS)):
            separator = ";" if allowed is _PATH_ATTRS else "&"
            for item in filter(None, part.split(separator)):
                name, eq, value = item.partition("=")
                if name == "pin-value":
                    raise Pkcs11Error(
                        f"{where}: a PIN in the URI is refused; use pin-source=file:... "
                        f"or {PIN_ENV}"
                    )
                if not eq or name not in allowed:
                    raise Pkcs11Error(f"{where}: unknown PKCS#11 URI attribute {name!r}")
                attrs[name] = unquote(value)
        missing = [a for a in ("module-path", "token", "object") if not attrs.get(a)]
        if missing:
            raise Pkcs11Error(f"{where}: the PKCS#11 URI needs {', '.join(missing)}")
        return cls(
            attrs["module-path"], attrs["token"], attrs["object"], attrs.get("pin-source", "")
        )

    def pin(self) -> str:
        if self.pin_source:
            source = self.pin_source.removeprefix("file:")
            try:
                return Path(source).read_text().rstrip("\r\n")
            except OSError as exc:
                raise Pkcs11Error(
                    f"the HSM PIN file {source} cannot be read ({exc.strerror})"
                ) from None
        pin = os.environ.get(PIN_ENV)
        if not pin:
            raise Pkcs11Error(f"no HSM PIN: add pin-source=file:... to the URI or set {PIN_ENV}")
        return pin


@dataclass
class _TokenSession:
    """The one logged-in session this process keeps per token, and who may use it now."""

    session: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


_sessions: dict[tuple[str, str], _TokenSession] = {}
_sessions_lock = threading.Lock()


def _token_session(uri: Pkcs11Uri) -> _TokenSession:
    """The process's session with `uri`'s token, opened and logged in on first use.

    PKCS#11 logs in an application, not a session: a second login fails and closing a
    logged-in session logs every session out. So all signers on one token share one
    session, kept until the process ends. The registry lock is held while the token
    opens and logs in (a call into the vendor library that takes none of our locks).
    """
    import pkcs11

    key = (uri.module_path, uri.token)
    with _sessions_lock:
        found = _sessions.get(key)
        if found is None:
            try:
                token = pkcs11.lib(uri.module_path).get_token(token_label=uri.token)
                found = _TokenSession(token.open(rw=True, user_pin=uri.pin()))
            except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
                raise Pkcs11Error(
                    f"cannot open HSM token {uri.token!r} with {uri.module_path} "
                    f"({type(exc).__name__}): check the module path, token label and PIN"
                ) from None
            _sessions[key] = found
        return found


class Pkcs11Ed25519Signer:
    """An Ed25519 private key held in a PKCS#11 token; signs with CKM_EDDSA.

    PKCS#11 does not let two threads use one session at once, so signing takes the
    token session's lock; it is held only for the token's own signing call, which waits
    on nothing of ours.
    """

    def __init__(self, uri: Pkcs11Uri) -> None:
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.types import SignMixin

        self.uri = uri
        self._token = _token_session(uri)
        try:
            with self._token.lock:
                session = self._token.session
                self._private = cast(
                    SignMixin,
                    session.get_key(
                        object_class=ObjectClass.PRIVATE_KEY,
                        key_type=KeyType.EC_EDWARDS,
                        label=uri.label,
                    ),
                )
                public = session.get_key(
                    object_class=ObjectClass.PUBLIC_KEY,
                    key_type=KeyType.EC_EDWARDS,
                    label=uri.label,
                )
                point = OctetString.load(public[Attribute.EC_POINT]).native
        except (pkcs11.PKCS11Error, ValueError) as exc:
            raise Pkcs11Error(
                f"token {uri.token!r} has no single Ed25519 key pair labelled {uri.label!r} "
                f"({type(exc).__name__})"
            ) from None
        self._public = Ed25519PublicKey.from_public_bytes(point)

    @classmethod
    def from_uri(cls, uri: str, *, where: str = "the key file") -> Pkcs11Ed25519Signer:
        return cls(Pkcs11Uri.parse(uri, where=where))

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism

        with self._token.lock:
            signature: bytes = self._private.sign(data, mechanism=Mechanism.EDDSA)
        return signature

    def public_key(self) -> Ed25519PublicKey:
        return self._public


class Pkcs11CaKey:
    """The consortium CA's ECDSA P-256 key held in a PKCS#11 token (CKM_ECDSA).

    `cryptography` signs certificates only with keys it holds, so the certificate is
    built and signed with a throwaway key, and its to-be-signed part, which does not
    depend on the signing key, is signed again by the token and reassembled
    (asn1crypto) with the same signature algorithm.
    """

    def __init__(self, uri: Pkcs11Uri) -> None:
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.types import SignMixin

        self.uri = uri
        self._token = _token_session(uri)
        try:
            with self._token.lock:
                session = self._token.session
                self._private = cast(
                    SignMixin,
                    session.get_key(
                        object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=uri.label
                    ),
                )
                public = session.get_key(
                    object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC, label=uri.label
                )
                point = OctetString.load(public[Attribute.EC_POINT]).native
        except (pkcs11.PKCS11Error, ValueError) as exc:
            raise Pkcs11Error(
                f"token {uri.token!r} has no single EC key pair labelled {uri.label!r} "
                f"({type(exc).__name__})"
            ) from None
        self._public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)

    @classmethod
    def from_uri(cls, uri: str, *, where: str = "the key file") -> Pkcs11CaKey:
        return cls(Pkcs11Uri.parse(uri, where=where))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        from asn1crypto import x509 as asn1_x509
        from pkcs11 import Mechanism
        from pkcs11.util.ec import encode_ecdsa_signature

        scratch = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        tbs = scratch.tbs_certificate_bytes
        digest = hashlib.sha256(tbs).digest()
        with self._token.lock:
            raw: bytes = self._private.sign(digest, mechanism=Mechanism.ECDSA)
        outer = asn1_x509.Certificate.load(scratch.public_bytes(serialization.Encoding.DER))
        signed = asn1_x509.Certificate(
            {
                "tbs_certificate": outer["tbs_certificate"],
                "signature_algorithm": outer["signature_algorithm"],
                "signature_value": encode_ecdsa_signature(raw),
            }
        )
        return x509.load_der_x509_certificate(signed.dump())


ED25519, P256 = "ed25519", "p256"
KEY_TYPES = (ED25519, P256)
"""What `generate_hsm_key` makes: Ed25519 for signing keys, P-256 for the CA."""


def generate_hsm_key(uri: Pkcs11Uri, key_type: str = ED25519) -> bytes:
    """Generate a key pair in the token, labelled as `uri` says; its raw public key.

    The private key is a token object marked sensitive and not extractable: the token
    signs with it and never hands out its value. A label already in use is refused, so
    a second run cannot leave two keys that the signers could not tell apart.
    """
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_named_curve_parameters

    if key_type not in KEY_TYPES:
        raise Pkcs11Error(f"key type {key_type!r} is not one of {', '.join(KEY_TYPES)}")
    edwards = key_type == ED25519
    token = _token_session(uri)
    with token.lock:
        session = token.session
        if any(True for _ in session.get_objects({Attribute.LABEL: uri.label})):
            raise Pkcs11Error(f"token {uri.token!r} already holds an object labelled {uri.label!r}")
        params = session.create_domain_parameters(
            KeyType.EC_EDWARDS if edwards else KeyType.EC,
            {
                Attribute.EC_PARAMS: encode_named_curve_parameters(
                    ED25519_OID if edwards else P256_OID
                )
            },
            local=True,
        )
        public, _ = params.generate_keypair(
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN if edwards else Mechanism.EC_KEY_PAIR_GEN,
            store=True,
            label=uri.label,
            private_template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
            },
        )
        point: bytes = OctetString.load(public[Attribute.EC_POINT]).native
    return point
