"""agenda: a rep's sends by status in due order, enrollments by status and campaign; task message reposts counted

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPOSTED = sa.text("status = 'queued' AND slack_ts IS NULL AND slack_reposts < 3")
OLD_UNPOSTED = sa.text("status = 'queued' AND slack_ts IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollment_rep_id")
        batch_op.create_index("ix_enrollment_rep_status", ["rep_id", "status", "campaign_id"], unique=False)
    with op.batch_alter_table("send", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slack_reposts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_index("ix_send_rep_status")
        batch_op.create_index("ix_send_rep_status_due", ["rep_id", "status", "due_at"], unique=False)
        batch_op.drop_index("ix_send_unposted")
        batch_op.create_index(
            "ix_send_unposted", ["updated_at"], unique=False, sqlite_where=UNPOSTED, postgresql_where=UNPOSTED
        )


def downgrade() -> None:
    with op.batch_alter_table("send", schema=None) as batch_op:
        batch_op.drop_index("ix_send_unposted")
        batch_op.create_index(
            "ix_send_unposted", ["updated_at"], unique=False, sqlite_where=OLD_UNPOSTED, postgresql_where=OLD_UNPOSTED
        )
        batch_op.drop_index("ix_send_rep_status_due")
        batch_op.create_index("ix_send_rep_status", ["rep_id", "status"], unique=False)
        batch_op.drop_column("slack_reposts")
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollment_rep_status")
        batch_op.create_index("ix_enrollment_rep_id", ["rep_id"], unique=False)
