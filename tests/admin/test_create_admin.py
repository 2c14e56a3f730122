"""`make admin` (processes.create_admin) on an empty PostgreSQL database, as a real clinic
starts: the first admin logs in; the password is read from standard input and never shown;
a second admin only when asked; a weak password creates nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from accounts.auth import password_matches
from core.settings import ROOT, Settings
from models import Role, User
from models.db import Database
from tests.databases import PostgresDatabases, require_postgres

EMAIL = "direcao@clinica-real.com.br"
PASSWORD = "Jacarandá-em-flor-2026"


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    require_postgres()
    databases = PostgresDatabases()
    yield databases.create_empty()
    databases.drop_all()


def _create_admin(
    url: str, password: str, *extra: str, email: str = EMAIL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "processes.create_admin", "--name", "Direção"),
            *("--email", email, "--password-stdin", *extra),
        ],
        input=f"{password}\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        timeout=120,
    )


async def _admins(url: str, password: str) -> tuple[int, User | None]:
    db = Database(url)
    try:
        async with db.session() as session:
            count = await session.scalar(select(func.count(User.id)))
            user = await session.scalar(select(User).where(User.email == EMAIL))
    finally:
        await db.dispose()
    if user is None or not await password_matches(password, user.password_hash):
        return count or 0, None
    return count or 0, user


async def test_the_first_admin_of_an_empty_database_logs_in(empty_postgres):
    done = _create_admin(empty_postgres, PASSWORD)
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    count, admin = await _admins(empty_postgres, PASSWORD)
    assert count == 1
    assert admin is not None and admin.role == Role.ADMIN


async def test_a_second_admin_is_refused_unless_asked(empty_postgres):
    assert _create_admin(empty_postgres, PASSWORD).returncode == 0
    refused = _create_admin(empty_postgres, PASSWORD)
    assert refused.returncode == 1
    assert "já tem um(a) administrador(a)" in refused.stderr
    assert (await _admins(empty_postgres, PASSWORD))[0] == 1
    # The same e-mail is never taken over, even when asked.
    taken = _create_admin(empty_postgres, PASSWORD, "--another")
    assert taken.returncode == 1
    assert "Já existe uma conta com este e-mail" in taken.stderr
    # A lost password with nobody left to reset it: another admin, on purpose.
    other = _create_admin(empty_postgres, PASSWORD, "--another", email="ti@clinica-real.com.br")
    assert other.returncode == 0, other.stderr
    assert (await _admins(empty_postgres, PASSWORD))[0] == 2


@pytest.mark.parametrize("weak", ["curta-123", "aaaaaaaaaaaaaaaa", "direcao-2026-senha"])
async def test_a_weak_password_creates_nothing(empty_postgres, weak):
    done = _create_admin(empty_postgres, weak)
    assert done.returncode == 1
    assert weak not in done.stdout + done.stderr
    assert (await _admins(empty_postgres, weak))[0] == 0


def test_only_the_embedded_default_gets_the_demo_clinic_unless_asked():
    assert Settings.from_env({}).seed_demo
    assert not Settings.from_env({"SEED_DEMO": "false"}).seed_demo
    production = "postgresql://clinica@db.internal/clinica"
    assert not Settings.from_env({"DATABASE_URL": production}).seed_demo
    assert Settings.from_env({"DATABASE_URL": production, "SEED_DEMO": "true"}).seed_demo
