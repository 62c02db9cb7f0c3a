"""campaign footers; copies of sent emails to append to reps' Sent folders

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign") as batch:
        batch.add_column(sa.Column("footer", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.create_table(
        "sentcopy",
        sa.Column("send_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rep_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sent_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", bot.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("done_at", bot.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["send_id"], ["send.id"]),
        sa.PrimaryKeyConstraint("send_id"),
    )
    op.create_index(
        "ix_sent_copy_due",
        "sentcopy",
        ["next_at"],
        unique=False,
        sqlite_where=sa.text("done_at IS NULL"),
        postgresql_where=sa.text("done_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_sent_copy_due", table_name="sentcopy")
    op.drop_table("sentcopy")
    with op.batch_alter_table("campaign") as batch:
        batch.drop_column("footer")
