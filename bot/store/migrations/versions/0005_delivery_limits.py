"""delivery limits: each send's mailbox and hand-over time; holds on reps' sends

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.store.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("send") as batch:
        batch.add_column(sa.Column("mailbox", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("handed_at", bot.store.models.UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_send_mailbox_handed", "send", ["mailbox", "handed_at"])
    op.create_table(
        "hold",
        sa.Column("rep_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("until", bot.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("told_on", sa.Date(), nullable=True),
        sa.Column("updated_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rep_id"),
    )


def downgrade() -> None:
    op.drop_table("hold")
    op.drop_index("ix_send_mailbox_handed", table_name="send")
    with op.batch_alter_table("send") as batch:
        batch.drop_column("handed_at")
        batch.drop_column("mailbox")
