"""Apply Alembic migrations: `python -m models.migrate` (DATABASE_URL, else the SQLite default)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from settings import Settings

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


if __name__ == "__main__":
    upgrade(Settings.from_env().database_url)
