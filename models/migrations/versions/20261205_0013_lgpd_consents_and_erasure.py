"""versioned consents (purpose, text version, channel, withdrawal) and the erasure mark on
users; each consent timestamp recorded before versions existed becomes a service consent to
the text version "anterior"

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 14:00:00
"""

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=24), nullable=False),
        sa.Column("text_version", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("granted_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_channel", sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["users.id"],
            name=op.f("fk_consents_patient_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index("ix_consents_patient_purpose", ["patient_id", "purpose"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "INSERT INTO consents (patient_id, purpose, text_version, channel, granted_at) "
        "SELECT user_id, 'atendimento', 'anterior', 'desconhecido', lgpd_consent_at "
        "FROM patient_profiles WHERE lgpd_consent_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_patient_purpose")
    op.drop_table("consents")
