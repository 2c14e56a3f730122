"""labels (managed by managers) and the labels on conversations; an index for the idle-close
sweep (open bot conversations quiet for a while)

Revision ID: 0026
Revises: 0023
Create Date: 2026-12-06 00:00:00
"""

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0026"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("colour", sa.String(length=7), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("name", name=op.f("uq_labels_name")),
    )
    op.create_table(
        "conversation_labels",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_labels_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_conversation_labels_label_id_labels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_conversation_labels_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("conversation_id", "label_id", name=op.f("pk_conversation_labels")),
    )
    op.create_index(
        "ix_conversation_labels_label_conversation",
        "conversation_labels",
        ["label_id", "conversation_id"],
    )
    op.create_index(
        "ix_conversations_open_owner_last_message",
        "conversations",
        ["status", "owner", "last_message_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_open_owner_last_message", table_name="conversations")
    op.drop_index("ix_conversation_labels_label_conversation", table_name="conversation_labels")
    op.drop_table("conversation_labels")
    op.drop_table("labels")
