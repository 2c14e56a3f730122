"""Alembic environment: runs migrations on a synchronous connection to the configured URL."""

from alembic import context
from sqlalchemy import create_engine

from models import Base
from models.db import is_sqlite, sync_url
from models.search import include_object

config = context.config


def _database_url() -> str:
    """The database to migrate: alembic.ini names none, `models.migrate.alembic_config` sets it."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set: use models.migrate.alembic_config(url)")
    return url


url = _database_url()


def run_migrations_online() -> None:
    engine = create_engine(sync_url(url), future=True)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=is_sqlite(url),
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
