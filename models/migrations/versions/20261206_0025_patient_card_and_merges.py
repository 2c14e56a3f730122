"""the patient's card and merges: staff notes on the patient profile, and the record of each
merge of two patients a manager made

Revision ID: 0025
Revises: 0022
Create Date: 2026-12-06 00:00:00
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0025"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patient_profiles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
    op.create_table(
        "patient_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_patient_merges_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["users.id"],
            name=op.f("fk_patient_merges_source_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["users.id"],
            name=op.f("fk_patient_merges_target_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_merges")),
    )
    with op.batch_alter_table("patient_merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_merges_source_id"), ["source_id"])
        batch_op.create_index(batch_op.f("ix_patient_merges_target_id"), ["target_id"])


def downgrade() -> None:
    with op.batch_alter_table("patient_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_merges_target_id"))
        batch_op.drop_index(batch_op.f("ix_patient_merges_source_id"))
    op.drop_table("patient_merges")
    with op.batch_alter_table("patient_profiles", schema=None) as batch_op:
        batch_op.drop_column("notes")
