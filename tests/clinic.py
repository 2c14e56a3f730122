"""Runs the whole clinic (the assistant, the action server, the web app, the worker) from the
Procfile, as `make run` does, on a throwaway database and free ports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, text

from core.settings import ROOT, Settings
from models import SecondFactorPolicy, SecurityPolicy
from models.db import Database
from models.migrate import upgrade
from scripts.demo_clinic import Login, seed_demo_clinic

MODEL = ROOT / "var" / "rasa" / "bot.tar.gz"
STAFF_PASSWORD = "senha-de-teste-123"
START_TIMEOUT = 480  # Rasa loads its model slowly on a busy 2-core machine
WORKER_TICKS = 15  # seconds: a few runs of the worker's 5 s jobs
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rasa_run(port: int, credentials: Path | str = "credentials.yml") -> list[str]:
    """The assistant's command, as the Procfile runs it, on loopback at `port`."""
    rasa = ROOT / ".venv-rasa" / "bin" / "rasa"
    return [
        *(str(rasa), "run", "--model", str(MODEL), "--endpoints", "endpoints.yml"),
        *("--credentials", str(credentials), "--interface", "127.0.0.1", "--port", str(port)),
    ]


def start_logged(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process group of its own (stopped whole), writing to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_group(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after 30 s."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class RunningClinic:
    settings: Settings
    folder: Path
    logins: list[Login]
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.folder / "clinic.log"

    @classmethod
    def prepare(
        cls, folder: Path, database_url: str, extra_env: dict[str, str] | None = None
    ) -> RunningClinic:
        if not MODEL.exists():
            raise RuntimeError(f"{MODEL} is missing: run `make train` (make test does it)")
        web, bot, actions = free_port(), free_port(), free_port()
        settings = Settings.from_env(
            {
                "DATABASE_URL": database_url,
                "WEB_URL": f"http://127.0.0.1:{web}",
                "BOT_URL": f"http://127.0.0.1:{bot}",
                "ACTION_SERVER_URL": f"http://127.0.0.1:{actions}/webhook",
                "INTERNAL_TOKEN": "integration-internal-token",
                "SESSION_SECRET": "integration-session-secret",
                "RASA_TOKEN": "integration-rasa-token",
                "ACTION_SERVER_TOKEN": "integration-actions-token",
                # Test clients say which address they come from (tests.clients.WidgetClient),
                # as a proxy would: a whole session of visitors is no flood from one address.
                "TRUSTED_PROXIES": "127.0.0.1",
                "FILES_DIR": str(folder / "files"),
                **(extra_env or {}),
            }
        )
        upgrade(database_url)
        logins = asyncio.run(_seed(settings))
        return cls(settings=settings, folder=folder, logins=logins)

    def start(self) -> None:
        env = {**os.environ, **self.settings.child_env()}
        honcho = [str(ROOT / ".venv" / "bin" / "honcho"), "-f", "Procfile", "start"]
        self.process = start_logged(honcho, env, self.log_path)
        deadline = time.monotonic() + START_TIMEOUT
        checks = [
            f"{self.settings.web_url}/healthz",
            f"{self.settings.bot_url}/",
            self.settings.action_server_url.removesuffix("/webhook") + "/health",
        ]
        while not all(answers_200(url) for url in checks):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"clinic did not start; log:\n{self.log_tail()}")
            time.sleep(1)

    def stop(self) -> None:
        stop_group(self.process)

    def log_tail(self, lines: int = 80) -> str:
        """The log's last lines, without the readiness probes that would drown the cause."""
        logged = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join([line for line in logged if "GET /healthz" not in line][-lines:])

    def login_for(self, email_prefix: str) -> Login:
        return next(login for login in self.logins if login.email.startswith(email_prefix))

    @property
    def widget_socket_url(self) -> str:
        return self.settings.web_url.replace("http://", "ws://") + "/webhooks/webchat/ws"

    def tracker_events(self, patient_id: int) -> list[dict]:
        """The patient's tracker as the assistant stored it (its HTTP API is off)."""
        engine = create_engine(self.settings.rasa_tracker_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT data FROM events WHERE sender_id = :sender ORDER BY id"),
                    {"sender": str(patient_id)},
                )
                return [json.loads(data) for (data,) in rows]
        finally:
            engine.dispose()


async def _seed(settings: Settings) -> list[Login]:
    """The demo clinic, with the staff second factor asked of nobody: the shared clinic's
    tests log the same manager in dozens of times a minute, and a TOTP code is good once
    per 30 s step. The second factor itself is tested on the web app over real HTTP and in
    the browser (tests/accounts/test_second_factor.py, tests/e2e/test_security_page.py)."""
    db = Database(settings.database_url)
    try:
        logins = await seed_demo_clinic(db, password=STAFF_PASSWORD, attendant_capacity=20)
        async with db.session() as session:
            session.add(SecurityPolicy(second_factor=SecondFactorPolicy.NOBODY))
        return logins
    finally:
        await db.dispose()


async def soon[T](read: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """What `read` returns once `done` holds, or its last value after WORKER_TICKS: for what
    the clinic's worker does on its own schedule."""
    for _ in range(WORKER_TICKS * 10):
        value = await read()
        if done(value):
            break
        await asyncio.sleep(0.1)
    return value
