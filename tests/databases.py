"""Throwaway databases for tests: a migrated template per backend, copied for each test."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from models.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3, autocommit=True)


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        _admin_connection().close()
    except psycopg.OperationalError as exc:
        return str(exc).strip()
    return None


def require_postgres() -> None:
    reason = postgres_available()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true requires PostgreSQL at {POSTGRES_ADMIN_URL}: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis(url: str = TEST_REDIS_URL) -> None:
    """Skip (fail under CI=true) when Redis does not answer at `url`."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"CI=true requires Redis at {url}: {exc}")
        pytest.skip(f"Redis unavailable: {exc}")


def _url_for(name: str) -> str:
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


class PostgresDatabases:
    def __init__(self) -> None:
        self.template = f"omniclinica_tpl_{uuid.uuid4().hex[:12]}"
        self._created: list[str] = []

    def _execute(self, statement: sql.Composable) -> None:
        connection = _admin_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def prepare_template(self) -> None:
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.template)))
        self._created.append(self.template)
        upgrade(_url_for(self.template))

    def create(self) -> str:
        name = f"omniclinica_test_{uuid.uuid4().hex[:12]}"
        self._execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self.template)
            )
        )
        self._created.append(name)
        return _url_for(name)

    def create_empty(self) -> str:
        """A database without even the migrations, as a real clinic's starts."""
        name = f"omniclinica_test_{uuid.uuid4().hex[:12]}"
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        return _url_for(name)

    def drop(self, url: str) -> None:
        name = url.rpartition("/")[2]
        self._execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        self._created.remove(name)

    def drop_all(self) -> None:
        for name in list(reversed(self._created)):
            self._execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        self._created.clear()


class SqliteDatabases:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.template = folder / "template.db"

    def prepare_template(self) -> None:
        upgrade(f"sqlite:///{self.template}")

    def create(self) -> str:
        path = self.folder / f"test_{uuid.uuid4().hex[:12]}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
