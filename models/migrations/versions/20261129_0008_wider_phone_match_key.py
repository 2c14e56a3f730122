"""phone_match_key holds international numbers too

Non-Brazilian phones are matched on their bare digits (up to 15), and typed phones no longer
get a key at all; keys of typed phones stored before are dropped.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patient_profiles") as batch_op:
        batch_op.alter_column(
            "phone_match_key", existing_type=sa.String(length=12), type_=sa.String(length=16)
        )
    # Only identities whose phone a provider proved may carry a key.
    op.execute(
        """
        UPDATE patient_profiles SET phone_match_key = NULL
        WHERE NOT EXISTS (
            SELECT 1 FROM channel_identities
            WHERE channel_identities.patient_id = patient_profiles.user_id
              AND channel_identities.verified_phone IS NOT NULL
        )
        AND NOT EXISTS (
            SELECT 1 FROM channel_identities
            WHERE channel_identities.patient_id = patient_profiles.user_id
              AND channel_identities.channel IN ('whatsapp', 'twilio', 'telegram')
        )
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("patient_profiles") as batch_op:
        batch_op.alter_column(
            "phone_match_key", existing_type=sa.String(length=16), type_=sa.String(length=12)
        )
