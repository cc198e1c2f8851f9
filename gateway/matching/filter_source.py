"""What filter mode reads from the responder's index table (gateway.matching.index_store).

The tags come from the index rows as built, never recomputed here, so the filter is
always the index's own. The label round looks rows up by tag; the table's index on the
tag column (`TAG_INDEX`) makes that a point lookup instead of a scan of every record.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Final, cast

from sqlalchemy import Engine, Index, Table, select

from gateway.matching.index_store import MatchIndexRow

__all__ = ["TAG_INDEX", "iter_tags", "labels_by_tag"]

_CHUNK: Final = 2_000
_ROWS = cast(Table, MatchIndexRow.__table__)
TAG_INDEX: Final[Index] = next(i for i in _ROWS.indexes if i.name == "ix_match_index_tag")


def iter_tags(engine: Engine) -> Iterator[bytes]:
    """Every tag in the index, one per record (duplicates kept), in no particular order."""
    with engine.connect() as conn:
        for (tag,) in conn.execution_options(yield_per=50_000).execute(select(_ROWS.c.tag)):
            yield bytes(tag)


def labels_by_tag(engine: Engine, tags: Collection[bytes]) -> dict[bytes, list[bytes]]:
    """tag -> sealed labels of the records with that tag (tags held by none are left out)."""
    found: dict[bytes, list[bytes]] = {}
    ordered = sorted(set(tags))
    with engine.connect() as conn:
        for start in range(0, len(ordered), _CHUNK):
            rows = conn.execute(
                select(_ROWS.c.tag, _ROWS.c.label).where(
                    _ROWS.c.tag.in_(ordered[start : start + _CHUNK])
                )
            )
            for tag, label in rows:
                found.setdefault(bytes(tag), []).append(bytes(label))
    return found
