"""index conversations by channel identity: every inbound patient message looks up its channel
identity's recent conversations, which scanned the whole table without it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 12:00:00
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversations_channel_identity_id"), ["channel_identity_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_channel_identity_id"))
