"""scheduling and reminders: message templates, reminder planning, staff-requested reminders

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-28 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0006'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template', sa.JSON(), nullable=True))

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminders_planned_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_appointments_unplanned', ['id'], unique=False, sqlite_where=sa.text('reminders_planned_at IS NULL'), postgresql_where=sa.text('reminders_planned_at IS NULL'))

    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_reminders_requested_by_id_users'), 'users', ['requested_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_reminders_requested_by_id_users'), type_='foreignkey')
        batch_op.drop_column('requested_by_id')

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index('ix_appointments_unplanned')
        batch_op.drop_column('reminders_planned_at')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('template')
