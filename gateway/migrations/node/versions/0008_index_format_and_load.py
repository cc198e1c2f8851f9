"""Match index format and load table.

`format`: which tag/key/label derivation the index rows were built with.
Format 2 (one SHA-512 for tag and label key, binary labels) reads nothing format 1 wrote,
so an index built before this revision is marked format 1 and rebuilt by the next
`gateway node ingest`/`reindex` instead of being answered from.
`match_index_load`: a full build appends its rows here by record id and moves them into
`match_index` in bucket order at the end (random-bucket inserts rewrote most of a large
index per chunk). Added only where missing, as in 0005: `create_all` may have made them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "match_index_load",
        sa.Column("record_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("tag", sa.LargeBinary(), nullable=False),
        sa.Column("label", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
        if_not_exists=True,
    )
    if "format" not in _columns("match_index_state"):
        with op.batch_alter_table("match_index_state", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("format", sa.Integer(), server_default="1", nullable=False)
            )


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def downgrade() -> None:
    op.drop_table("match_index_load")
    with op.batch_alter_table("match_index_state", schema=None) as batch_op:
        batch_op.drop_column("format")
