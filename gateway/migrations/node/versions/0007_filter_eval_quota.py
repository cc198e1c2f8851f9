"""Filter mode: the responder's per-querier OPRF evaluation quota (hour and day windows),
an index on match_index.tag for the label round's lookups by tag, and the police's
copies of responders' filters with the chunks of transfers under way.

Added only where missing: a database that `create_all` made may have them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oprf_eval_quota",
        sa.Column("querier", sa.String(length=128), nullable=False),
        sa.Column("period_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("querier", "period_ms"),
        if_not_exists=True,
    )
    op.create_index("ix_match_index_tag", "match_index", ["tag"], if_not_exists=True)
    op.create_table(
        "filter_replicas",
        sa.Column("responder", sa.String(length=128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("encoded", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("responder"),
        if_not_exists=True,
    )
    op.create_table(
        "filter_transfer_chunks",
        sa.Column("responder", sa.String(length=128), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("signed", sa.LargeBinary(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("responder", "chunk_index"),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("filter_transfer_chunks")
    op.drop_table("filter_replicas")
    op.drop_index("ix_match_index_tag", table_name="match_index")
    op.drop_table("oprf_eval_quota")
