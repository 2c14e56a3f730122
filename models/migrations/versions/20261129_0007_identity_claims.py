"""identity claims proved by one-time codes: verified phones on channel identities, sealed
messages, merged-into pointers

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-29 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claimant_id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('destination_id', sa.Integer(), nullable=False),
    sa.Column('claimed', sa.String(length=8), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sent', 'linked', 'refused', 'expired', 'failed', name='claimstatus', native_enum=False, length=24), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=True),
    sa.Column('wrong_attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['claimant_id'], ['users.id'], name=op.f('fk_identity_claims_claimant_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['destination_id'], ['channel_identities.id'], name=op.f('fk_identity_claims_destination_id_channel_identities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_identity_claims_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identity_claims'))
    )
    with op.batch_alter_table('identity_claims', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_claims_claimant_id'), ['claimant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_claims_owner_id'), ['owner_id'], unique=False)

    # Filled from each identity's next inbound message (the provider's phone comes with it).
    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified_phone', sa.String(length=20), nullable=True))
        batch_op.create_index(batch_op.f('ix_channel_identities_verified_phone'), ['verified_phone'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sealed', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_users_merged_into_id_users'), 'users', ['merged_into_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_merged_into_id_users'), type_='foreignkey')
        batch_op.drop_column('merged_into_id')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('sealed')

    with op.batch_alter_table('channel_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_channel_identities_verified_phone'))
        batch_op.drop_column('verified_phone')

    with op.batch_alter_table('identity_claims', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_claims_owner_id'))
        batch_op.drop_index(batch_op.f('ix_identity_claims_claimant_id'))

    op.drop_table('identity_claims')
