"""oauth states: the consents reps started, single-use, for minutes

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.store.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauthstate",
        sa.Column("state_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("slack_user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("browser_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("verifier", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("expires_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", bot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash"),
    )


def downgrade() -> None:
    op.drop_table("oauthstate")
