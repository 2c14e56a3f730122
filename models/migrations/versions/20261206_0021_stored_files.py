"""stored_files: files patients and staff exchanged, and messages.files_pending, the inbound
messages whose attachments are still to fetch from the provider

Revision ID: 0021
Revises: 0026
Create Date: 2026-12-06 00:00:00
"""

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = "0021"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("mime_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_stored_files_patient_id", "stored_files", ["patient_id"])
    op.create_index("ix_stored_files_message_id", "stored_files", ["message_id"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("files_pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_messages_files_pending",
        "messages",
        ["id"],
        sqlite_where=sa.text("files_pending = 1"),
        postgresql_where=sa.text("files_pending = true"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_files_pending", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("files_pending")
    op.drop_index("ix_stored_files_message_id", table_name="stored_files")
    op.drop_index("ix_stored_files_patient_id", table_name="stored_files")
    op.drop_table("stored_files")
