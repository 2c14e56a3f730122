"""Production mode on this machine (`make production`, scripts/production.py) on PostgreSQL and
Redis: 2 web replicas, 2 assistant replicas, a worker and an action server behind Debian's
nginx over TLS. A real clinic's database starts empty; its first admin comes from
`processes.create_admin`."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from core.audit import AuditAction
from core.settings import ROOT, Settings
from messaging.assistant import AssistantClient
from models import AuditLog, ChannelIdentity, Role, User
from models.db import Database
from tests.channels.fake_provider import FakeProvider
from tests.channels.webhooks import channel_env, signed, text_message, webhook_path
from tests.clinic import MODEL, START_TIMEOUT, answers_200, start_logged, stop_group
from tests.databases import (
    TEST_REDIS_URL,
    PostgresDatabases,
    require_postgres,
    require_redis,
)
from tests.factories import second_factor_optional

pytestmark = pytest.mark.integration

ADMIN_EMAIL = "direcao@clinica-real.com.br"
ADMIN_PASSWORD = "Ipê-amarelo-floresce-2026"
# The test talks to the proxy from its own loopback address, so that the address the platform
# records can only have come from the proxy's X-Forwarded-For.
CLIENT_ADDRESS = "127.0.0.3"
SPOOFED = "198.51.100.7"


def _consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    while True:
        first = random.randrange(20_000, 40_000)
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first


@dataclass
class Production:
    settings: Settings
    proxy_url: str
    web_urls: list[str]
    bot_urls: list[str]
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 80) -> str:
        logged = self.log.read_text(errors="replace").splitlines()
        return "\n".join([line for line in logged if "/healthz" not in line][-lines:])


def create_admin(database_url: str, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "processes.create_admin", "--name", "Direção Clínica Real"),
            *("--email", ADMIN_EMAIL, "--password-stdin", *extra),
        ],
        input=f"{password}\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        timeout=120,
    )


@pytest.fixture(scope="module")
def production(
    tmp_path_factory: pytest.TempPathFactory, provider: FakeProvider, smtp_server, imap_server
) -> Iterator[Production]:
    require_postgres()
    require_redis()
    # `make test` trains the model and installs nginx first; run alone, say what is missing.
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train`")
    if shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
        pytest.fail("nginx is missing: scripts/ensure-nginx.sh installs it")
    folder = tmp_path_factory.mktemp("production")
    databases = PostgresDatabases()
    database_url = databases.create_empty()
    web, bot, actions = (_consecutive_free_ports(n) for n in (2, 2, 1))
    https, http = _consecutive_free_ports(1), _consecutive_free_ports(1)
    env = {
        **os.environ,
        "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin",
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "WEB_URL": f"http://127.0.0.1:{web}",
        "BOT_URL": f"http://127.0.0.1:{bot}",
        "ACTION_SERVER_URL": f"http://127.0.0.1:{actions}/webhook",
        "PROXY_LISTEN": f"127.0.0.1:{https}",
        "PROXY_HTTP_LISTEN": f"127.0.0.1:{http}",
        "INTERNAL_TOKEN": "production-internal-token",
        "SESSION_SECRET": "production-session-secret",
        "RASA_TOKEN": "production-rasa-token",
        "ACTION_SERVER_TOKEN": "production-actions-token",
        **channel_env(provider.url, smtp_server.url, imap_server.url),
    }
    env.pop("PUBLIC_BASE_URL", None)
    created = create_admin(database_url, ADMIN_PASSWORD)
    assert created.returncode == 0, created.stderr
    command = [sys.executable, "scripts/production.py", "--web", "2", "--assistant", "2"]
    command += ["--workers", "1", "--actions", "1", "--run-dir", str(folder / "run")]
    log = folder / "production.log"
    process = start_logged(command, env, log)
    running = Production(
        settings=Settings.from_env(env),
        proxy_url=f"https://127.0.0.1:{https}",
        web_urls=[f"http://127.0.0.1:{web + i}" for i in range(2)],
        bot_urls=[f"http://127.0.0.1:{bot + i}" for i in range(2)],
        process=process,
        log=log,
    )
    checks = [f"{url}/healthz" for url in running.web_urls]
    checks += [f"{url}/" for url in running.bot_urls]
    checks += [f"http://127.0.0.1:{actions}/health"]
    deadline = time.monotonic() + START_TIMEOUT
    while not all(answers_200(url) for url in checks):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_group(process)
            raise RuntimeError(f"production mode did not start; log:\n{running.log_tail()}")
        time.sleep(1)
    yield running
    stop_group(process)
    databases.drop_all()


def _client(**headers: str) -> aiohttp.ClientSession:
    """A client of the proxy from CLIENT_ADDRESS; the certificate is the self-signed one."""
    connector = aiohttp.TCPConnector(ssl=False, local_addr=(CLIENT_ADDRESS, 0))
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers
    )


async def test_the_proxy_answers_over_https_and_redirects_plain_http(production):
    async with _client() as http:
        async with http.get(f"{production.proxy_url}/healthz") as response:
            assert response.status == 200
        plain = production.settings.proxy_http_listen
        async with http.get(f"http://{plain}/healthz", allow_redirects=False) as response:
            assert response.status == 301
            assert response.headers["Location"] == f"{production.proxy_url}/healthz"


async def test_signed_whatsapp_messages_through_the_proxy_get_the_bots_replies(
    production, provider
):
    """New patients until each assistant replica has been some patient's first choice."""
    chooser = AssistantClient(production.bot_urls, "")
    chosen: set[str] = set()
    async with _client() as http:
        for n in random.sample(range(1_000_000), 12):
            person = f"5511977{n:06d}"
            body, headers = signed("whatsapp", text_message("whatsapp", person, "oi"))
            url = f"{production.proxy_url}{webhook_path('whatsapp')}"
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 200, await response.text()
            for _ in range(600):
                if provider.sent_to(person):
                    break
                await asyncio.sleep(0.1)
            assert "assistente virtual" in provider.sent_to(person)[0].text
            chosen.add(chooser.replicas_for(await _patient(production, person))[0])
            if len(chosen) == len(production.bot_urls):
                return
    raise AssertionError("twelve patients, all on one assistant replica")


async def test_a_body_over_the_limit_is_refused_by_the_proxy(production):
    too_big = b"x" * (3 * 1024 * 1024 + 1)  # Meta's deliveries are at most 3 MB
    async with _client() as http:
        url = f"{production.proxy_url}{webhook_path('whatsapp')}"
        async with http.post(url, data=too_big) as response:
            assert response.status == 413
            # nginx's own page: the platform never read it (its refusals are JSON).
            assert response.content_type == "text/html"


async def test_the_client_address_is_believed_from_the_proxy_only(production):
    """Through the proxy the platform records the client's own address, whatever
    X-Forwarded-For the client sent; straight to a replica the header is ignored."""
    db = Database(production.settings.database_url)
    try:  # the admin opens the live screen without enrolling a second factor first
        await second_factor_optional(db)
    finally:
        await db.dispose()
    async with _client(**{"X-Forwarded-For": SPOOFED}) as http:
        await _open_supervision(http, production.proxy_url)
    direct = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"X-Forwarded-For": SPOOFED}
    )
    async with direct:
        await _open_supervision(direct, production.web_urls[1])

    db = Database(production.settings.database_url)
    try:
        async with db.session() as session:
            recorded = (
                await session.execute(
                    select(AuditLog.ip)
                    .where(AuditLog.action == AuditAction.LIVE_SUPERVISION_OPENED)
                    .order_by(AuditLog.id)
                )
            ).scalars()
            assert list(recorded) == [CLIENT_ADDRESS, "127.0.0.1"]
    finally:
        await db.dispose()


async def test_a_production_database_gets_no_demo_clinic(production):
    db = Database(production.settings.database_url)
    try:
        async with db.session() as session:
            # Patients come only from the messages the other tests sent; staff: the admin alone.
            staff = select(User.email).where(User.role != Role.PATIENT)
            assert (await session.execute(staff)).scalars().all() == [ADMIN_EMAIL]
    finally:
        await db.dispose()


async def _open_supervision(http: aiohttp.ClientSession, base_url: str) -> None:
    """Log in as the admin and open the live socket (audited with the address)."""
    login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    async with http.post(f"{base_url}/api/login", json=login) as response:
        assert response.status == 200, await response.text()
        session = response.cookies["oc_session"].value
    socket_url = base_url.replace("https://", "wss://").replace("http://", "ws://")
    # The opening is audited before the socket is accepted. The cookie is `Secure` (the
    # clinic is served on https), so straight to a replica over http it is sent by hand.
    async with http.ws_connect(f"{socket_url}/api/ws", headers={"Cookie": f"oc_session={session}"}):
        pass


async def _patient(production: Production, person: str) -> int:
    db = Database(production.settings.database_url)
    try:
        async with db.session() as session:
            query = select(ChannelIdentity.patient_id).where(
                ChannelIdentity.channel == "whatsapp", ChannelIdentity.external_id == person
            )
            return (await session.execute(query)).scalar_one()
    finally:
        await db.dispose()


async def test_only_one_admin_is_created_from_the_console_unless_told(production):
    db = Database(production.settings.database_url)
    try:
        second = create_admin(production.settings.database_url, ADMIN_PASSWORD + "!")
        assert second.returncode == 1
        assert "já tem" in second.stderr
        async with db.session() as session:
            admins = select(func.count(User.id)).where(User.role == Role.ADMIN)
            assert await session.scalar(admins) == 1
    finally:
        await db.dispose()
