"""Cryptography for matching identifiers without pooling them.

Public modules: `blinded` (VOPRF querier and responder, the default mode), `keyed_hash` (the
HMAC "hashed" mode) and `psi` (Diffie-Hellman PSI steps). `oprf` is RFC 9497 itself, named after
its procedures. `group` is the fenced primitive layer, the only importer of rbcl; code outside
this package does not import it.
"""
