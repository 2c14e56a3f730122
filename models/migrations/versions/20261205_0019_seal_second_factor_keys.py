"""second_factors.secret sealed with AES-GCM under DATA_ENCRYPTION_KEY (core/encryption.py):
the column widens and the keys stored as they were are sealed in place

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-05 21:00:00
"""

import sqlalchemy as sa
from alembic import op

from accounts.second_factor import open_secret, seal_secret
from core.settings import Settings

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None

SEALED_LENGTH = 160
PLAIN_LENGTH = 64
factors = sa.table(
    "second_factors", sa.column("user_id", sa.Integer), sa.column("secret", sa.String)
)


def _rewrite(change) -> None:
    """Each stored key through `change(keys, user_id, secret)`, with this process's keys
    (the same DATA_ENCRYPTION_KEY, or var/secrets/, as the services it migrates for)."""
    keys = Settings.from_env().data_keys
    connection = op.get_bind()
    for user_id, secret in connection.execute(sa.select(factors.c.user_id, factors.c.secret)).all():
        connection.execute(
            factors.update()
            .where(factors.c.user_id == user_id)
            .values(secret=change(keys, user_id, secret))
        )


def upgrade() -> None:
    with op.batch_alter_table("second_factors", schema=None) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(length=PLAIN_LENGTH),
            type_=sa.String(length=SEALED_LENGTH),
            existing_nullable=False,
        )
    _rewrite(seal_secret)


def downgrade() -> None:
    _rewrite(open_secret)
    with op.batch_alter_table("second_factors", schema=None) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(length=SEALED_LENGTH),
            type_=sa.String(length=PLAIN_LENGTH),
            existing_nullable=False,
        )
