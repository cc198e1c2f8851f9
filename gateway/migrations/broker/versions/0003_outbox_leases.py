"""Outbox leases, so that several broker processes can drain one outbox.

A broker claims due rows for a while (`gateway.broker.outbox`); a row claimed by a
process that died is taken over once its lease ends. Existing rows start unclaimed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=96), nullable=True))
        batch.add_column(
            sa.Column("lease_until_ms", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("lease_until_ms")
        batch.drop_column("lease_owner")
