"""identity claims without owner or destination: decoys answered like real claims, so the
widget's identity step does not tell known CPFs and phones from unknown ones

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity_claims", schema=None) as batch_op:
        batch_op.alter_column("owner_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("destination_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # Decoys carry nothing worth keeping once the columns are required again.
    op.execute("DELETE FROM identity_claims WHERE owner_id IS NULL OR destination_id IS NULL")
    with op.batch_alter_table("identity_claims", schema=None) as batch_op:
        batch_op.alter_column("destination_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("owner_id", existing_type=sa.Integer(), nullable=False)
