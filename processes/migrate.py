"""`make migrate`: apply the Alembic migrations to DATABASE_URL (else the SQLite default)."""

from __future__ import annotations

from core.private_files import keep_private
from core.settings import Settings
from models.migrate import upgrade

if __name__ == "__main__":
    keep_private()
    upgrade(Settings.from_env().database_url)
