"""handoff_facts: each conversation's handoff facts for the analytics console (handed off,
first assignment, latest resolution and resolver, first human reply and replier), kept by the
transitions and replies from now on and backfilled set-based from the trail and messages

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 21:30:00
"""

import sqlalchemy as sa
from alembic import op

from handoff import facts
from models.base import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoff_facts",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("handed", sa.Boolean(), nullable=False),
        sa.Column("first_assigned_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolution_event_id", sa.Integer(), nullable=True),
        sa.Column("resolver_id", sa.Integer(), nullable=True),
        sa.Column("first_reply_id", sa.Integer(), nullable=True),
        sa.Column("replier_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    for statement in facts.rebuild():
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("handoff_facts")
