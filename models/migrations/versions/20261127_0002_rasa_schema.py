"""PostgreSQL schema for Rasa's tracker store

Rasa's SQL tracker store keeps its `events` table in the platform's database; on PostgreSQL
it lives in its own schema (the processes run with POSTGRESQL_SCHEMA=rasa).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 21:30:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SCHEMA IF NOT EXISTS rasa")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SCHEMA IF EXISTS rasa CASCADE")
