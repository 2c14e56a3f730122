"""outbound parts and early statuses: every provider id of an outbound message (long texts go
out in parts) with the latest status heard for it, kept even when the status arrives before
the send recorded the id; send progress and the provider's retry-after on messages; when an
inbound message was recorded

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00
"""

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbound_parts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=24), nullable=False),
    sa.Column('provider_message_id', sa.String(length=255), nullable=False),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.Column('delivery_status', sa.Enum('received', 'pending', 'sent', 'delivered', 'read', 'failed', name='deliverystatus', native_enum=False, length=24), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('status_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_outbound_parts_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_parts')),
    sa.UniqueConstraint('channel', 'provider_message_id', name=op.f('uq_outbound_parts_channel'))
    )
    with op.batch_alter_table('outbound_parts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_parts_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_parts_message_id'), ['message_id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parts_sent', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('retry_not_before', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('recorded_at', models.base.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE messages SET recorded_at = created_at")
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('recorded_at', existing_type=models.base.UTCDateTime(timezone=True), nullable=False)

    # Messages sent before this revision were sent whole: their one id is their one part.
    op.execute(
        """
        INSERT INTO outbound_parts
            (message_id, channel, provider_message_id, position, delivery_status, status_at, created_at)
        SELECT id, channel, provider_message_id, 0, delivery_status, created_at, created_at
        FROM messages
        WHERE direction = 'out' AND provider_message_id IS NOT NULL
        """
    )
    op.execute("UPDATE messages SET parts_sent = 1 WHERE direction = 'out' AND provider_message_id IS NOT NULL")



def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('recorded_at')
        batch_op.drop_column('retry_not_before')
        batch_op.drop_column('parts_sent')

    with op.batch_alter_table('outbound_parts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_parts_message_id'))
        batch_op.drop_index(batch_op.f('ix_outbound_parts_created_at'))

    op.drop_table('outbound_parts')
