"""Indexes for the manager's analytics console: the dates its figures filter by, and the
look-ups it makes per conversation (a reopen by the same patient) and per appointment (the
appointment that replaced it)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 20:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_conversations_opened_at", "conversations", ["opened_at"]),
    ("ix_conversations_handed_off_at", "conversations", ["handed_off_at"]),
    ("ix_conversations_patient_handed_off", "conversations", ["patient_id", "handed_off_at"]),
    ("ix_appointments_created_at", "appointments", ["created_at"]),
    ("ix_appointments_starts_at", "appointments", ["starts_at"]),
    ("ix_appointments_rescheduled_from_id", "appointments", ["rescheduled_from_id"]),
    ("ix_appointment_events_created_at", "appointment_events", ["created_at"]),
    ("ix_reminders_due_at", "reminders", ["due_at"]),
]


# Each conversation's first human reply, without reading the patient's and the bot's messages.
REPLIES = "ix_messages_attendant_replies"


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    op.create_index(
        REPLIES,
        "messages",
        ["conversation_id", "id"],
        sqlite_where=sa.text("author_kind = 'attendant' AND internal = 0"),
        postgresql_where=sa.text("author_kind = 'attendant' AND internal = false"),
    )


def downgrade() -> None:
    op.drop_index(REPLIES, table_name="messages")
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
