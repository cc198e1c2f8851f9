"""How the node's signing key is kept: encrypted, in an HSM, or (a warning) in the clear.

Plain key files still work, so a node issued before keys were encrypted starts; the
warning says how to encrypt them (`gateway pki protect-keys`).
"""

from __future__ import annotations

from gateway.config import NodeConfig
from gateway.pki.key_files import ENCRYPTED, PKCS11, key_file_format, plain_key_files
from nodes.preflight.checks import Check, ok, skip, warn

KEY_STORAGE = "key storage"


def check_key_storage(config: NodeConfig) -> Check:
    sign_key = config.pki_bundle / "sign.key"
    if not sign_key.is_file():
        return skip(KEY_STORAGE, "not checked: the bundle has no sign.key")
    plain = plain_key_files(config.pki_bundle)
    if plain:
        names = ", ".join(p.name for p in plain)
        return warn(
            KEY_STORAGE,
            f"{names} unencrypted in {config.pki_bundle}: encrypt with GATEWAY_KEY_PASSPHRASE_FILE"
            f" set and `gateway pki protect-keys --dir {config.pki_bundle}`",
        )
    kind = key_file_format(sign_key)
    where = {ENCRYPTED: "encrypted PKCS#8", PKCS11: "in an HSM (PKCS#11)"}.get(kind, kind)
    return ok(KEY_STORAGE, f"signing key {where}")
