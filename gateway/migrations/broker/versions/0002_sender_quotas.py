"""Per-sender quota counters, durable and shared by every broker process.

One row per (sender, scope) with the current and previous hourly windows
(`gateway.broker.quotas`). A new table: nothing to carry over.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sender_quotas",
        sa.Column("sender", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("window_no", sa.BigInteger(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("prev_messages", sa.BigInteger(), nullable=False),
        sa.Column("prev_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sender", "scope"),
    )


def downgrade() -> None:
    op.drop_table("sender_quotas")
