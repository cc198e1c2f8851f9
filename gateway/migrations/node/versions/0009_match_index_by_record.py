"""Match index keyed by record id; the load table goes.

`match_index` was clustered by bucket (SQLite WITHOUT ROWID, primary key (bucket,
record_id)), and a full build moved its rows over from `match_index_load` at the end. It
is now keyed by record id, a build writes its rows in place, and the indexes are made at
its end: on the tag, and on the bucket (on SQLite covering the entries, so that an asked
bucket is still read in one range scan). The index is derived data: the old table goes
with its rows, and the state row with them, so the next `gateway node ingest` or
`reindex` builds it afresh (queries are answered NOT_READY until then). A table that
`create_all` already made in the new layout is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if inspector.has_table("match_index_load"):
        op.drop_table("match_index_load")
    keyed_by = inspector.get_pk_constraint("match_index")["constrained_columns"]
    if keyed_by != ["record_id"]:
        op.drop_table("match_index")
        op.create_table(
            "match_index",
            sa.Column("record_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("bucket", sa.Integer(), nullable=False),
            sa.Column("tag", sa.LargeBinary(), nullable=False),
            sa.Column("label", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("record_id"),
        )
        op.execute(sa.text("DELETE FROM match_index_state"))
    else:  # made by `create_all`, then adopted: 0002 gave it an index the key already is
        op.drop_index("ix_match_index_record", table_name="match_index", if_exists=True)
    if op.get_bind().dialect.name == "sqlite":
        columns, name = ["bucket", "tag", "label"], "ix_match_index_bucket_entries"
    else:
        columns, name = ["bucket"], "ix_match_index_bucket"
    op.create_index(name, "match_index", columns, if_not_exists=True)
    op.create_index("ix_match_index_tag", "match_index", ["tag"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("match_index")
    op.create_table(
        "match_index",
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.LargeBinary(), nullable=False),
        sa.Column("label", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "record_id"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_match_index_record", "match_index", ["record_id"], unique=True)
    op.create_index("ix_match_index_tag", "match_index", ["tag"])
    op.create_table(
        "match_index_load",
        sa.Column("record_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("tag", sa.LargeBinary(), nullable=False),
        sa.Column("label", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.execute(sa.text("DELETE FROM match_index_state"))
