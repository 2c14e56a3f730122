"""appointment change notices: the reminders outbox also carries the notices of changes staff
made to an appointment (cancelled, rescheduled, inside blocked time), one of each kind per
appointment

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-06 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "reminder",
                    "cancelled",
                    "rescheduled",
                    "blocked",
                    name="reminderkind",
                    native_enum=False,
                    length=24,
                ),
                server_default="reminder",
                nullable=False,
            )
        )
        batch_op.drop_constraint("uq_reminders_appointment_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_reminders_appointment_id", ["appointment_id", "kind", "offset_minutes"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM reminders WHERE kind <> 'reminder'")
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_constraint("uq_reminders_appointment_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_reminders_appointment_id", ["appointment_id", "offset_minutes"]
        )
        batch_op.drop_column("kind")
