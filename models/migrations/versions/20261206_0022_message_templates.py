"""message_templates: the clinic's approved templates (WhatsApp Cloud, Twilio Content) that
staff and reminders send when a channel's messaging window is closed

Revision ID: 0022
Revises: 0024
Create Date: 2026-12-06 00:00:00
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0022"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("whatsapp", "twilio", name="templatekind", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("content_sid", sa.String(length=64), nullable=True),
        sa.Column(
            "purpose",
            sa.Enum(
                "reply",
                "reminder",
                "appointment_cancelled",
                "appointment_rescheduled",
                "appointment_blocked",
                name="templatepurpose",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_message_templates_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_templates")),
        sa.UniqueConstraint("kind", "name", "language", name=op.f("uq_message_templates_kind")),
    )


def downgrade() -> None:
    op.drop_table("message_templates")
