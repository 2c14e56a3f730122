"""full-text search for the staff: PostgreSQL GIN indexes over unaccented Portuguese text
(the `unaccent` extension and an immutable wrapper), SQLite FTS5 tables kept by triggers;
and the assignments by attendant and patient, for "the patients an attendant has served"

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-06 00:00:00
"""

from alembic import op

from models import search

revision = "0024"
down_revision = "0021"
branch_labels = None
depends_on = None

SERVED = "ix_handoff_events_to_attendant_patient"


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_index(SERVED, "handoff_events", ["to_attendant_id", "patient_id"])
    for statement in search.SQLITE_CREATE if _is_sqlite() else search.POSTGRES_CREATE:
        op.execute(statement)


def downgrade() -> None:
    for statement in search.SQLITE_DROP if _is_sqlite() else search.POSTGRES_DROP:
        op.execute(statement)
    op.drop_index(SERVED, table_name="handoff_events")
