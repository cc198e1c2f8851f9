"""Alerts: the bank's or carrier's own record of the alerts it raised (the signed
envelope kept for resending), and the police node's record of those it received (the
reporter kept sealed).

Written by hand after `create_all`'s tables; created only where missing (a database
that `create_all` made may have them already).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alerts_sent",
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("branch", sa.String(length=128), nullable=False),
        sa.Column("raised_by", sa.String(length=64), nullable=False),
        sa.Column("raised_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
        if_not_exists=True,
    )
    with op.batch_alter_table("alerts_sent", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alerts_sent_state"), ["state"], unique=False, if_not_exists=True
        )

    op.create_table(
        "alerts_received",
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("identifier_kind", sa.String(length=16), nullable=False),
        sa.Column("identifier", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("seen", sa.Text(), nullable=False),
        sa.Column("seen_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("branch", sa.String(length=128), nullable=False),
        sa.Column("holder_name", sa.String(length=64), nullable=False),
        sa.Column("txn_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("txn_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("reporter_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("draft_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("alert_id"),
        if_not_exists=True,
    )
    with op.batch_alter_table("alerts_received", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alerts_received_sender"), ["sender"], unique=False, if_not_exists=True
        )
        batch_op.create_index(
            batch_op.f("ix_alerts_received_received_at_ms"),
            ["received_at_ms"],
            unique=False,
            if_not_exists=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts_received", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_received_received_at_ms"))
        batch_op.drop_index(batch_op.f("ix_alerts_received_sender"))
    op.drop_table("alerts_received")
    with op.batch_alter_table("alerts_sent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_sent_state"))
    op.drop_table("alerts_sent")
