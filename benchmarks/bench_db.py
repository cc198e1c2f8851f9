"""The benchmarks' SQLite databases under var/bench: made afresh, or reused with their key.

A million-record index takes minutes to build, so a benchmark keeps its database and the
OPRF key beside it and builds again only when the index no longer matches the key,
bucket size and label fields it asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from gateway.crypto.blinded import OprfServer
from gateway.db import SIDE_FILES, NodeBase, make_engine
from gateway.matching.index_store import read_state
from gateway.pki.keys import write_secret
from nodes.index_build import index_params

__all__ = ["fresh_db", "key_of_current_index", "new_keyed_db"]


def fresh_db(path: Path) -> str:
    """`path` with no database there (nor its WAL and journal files), as a URL for
    `make_engine`."""
    for suffix in ("", *SIDE_FILES):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return str(path)


def key_of_current_index(
    db: Path, key_file: Path, bucket_bits: int, label_fields: Sequence[str]
) -> bytes | None:
    """The key beside `db` if its index was built with it, `bucket_bits` and
    `label_fields`; None if either file is missing or the index is another's."""
    if not (db.exists() and key_file.exists()):
        return None
    key = bytes.fromhex(key_file.read_text())
    state = read_state(make_engine(str(db)))
    built_for = index_params(OprfServer(key).public_key, bucket_bits, label_fields)
    return key if state is not None and state.params == built_for else None


def new_keyed_db(db: Path, key_file: Path) -> tuple[Engine, bytes]:
    """An empty node database at `db` and a new OPRF key written to `key_file`."""
    key = OprfServer.generate().private_key_bytes()
    write_secret(key_file, key.hex())
    engine = make_engine(fresh_db(db))
    NodeBase.metadata.create_all(engine)
    return engine, key
