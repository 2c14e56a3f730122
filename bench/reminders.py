"""Benchmark: 10,000 reminders due at once, two worker processes on PostgreSQL, one killed
with SIGKILL mid-run, against a local fake SMS provider that records every request.

    .venv/bin/python bench/reminders.py [--reminders 10000] [--kill-at 0.3] [--lease 5]

Creates and drops its own database (BENCH_POSTGRES_URL, else TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/postgres). The workers run the product's dispatcher
(`scheduling.reminders.dispatch_due`) with a bench Sender that posts to the fake provider with
the message id as idempotency key; the provider, like an idempotent API, accepts a repeated key
without delivering again. Prints:

    dispatch_s: seconds from starting the workers until every reminder was settled
    duplicates: appointments that received more than one reminder message (goal 0)
    missing: appointments whose reminder never reached the provider (goal 0)

and, for context, how many requests repeated a key (a delivery interrupted by the kill and
completed by the other worker) and how many reminders the killed worker had claimed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import aiohttp
import psycopg
from aiohttp import web
from psycopg import sql
from sqlalchemy import create_engine, func, insert, select

from core.context import Context, DeliveryFailed
from core.settings import ROOT, Settings
from models import (
    Appointment,
    ChannelIdentity,
    Doctor,
    PatientProfile,
    Reminder,
    ReminderStatus,
    Role,
    Specialty,
    User,
)
from models.db import Database, sync_url
from models.migrate import upgrade
from scheduling.agenda import CLINIC_TZ
from scheduling.reminders import dispatch_due

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
CHANNEL = "sms"
DOCTORS = 50


# --- Worker process ---------------------------------------------------------------------


class NullBus:
    async def publish(self, event: dict) -> None:
        pass

    async def close(self) -> None:
        pass


class NoBot:
    async def hand_back(self, patient_id: int, intent: str) -> None:
        pass

    async def close(self) -> None:
        pass


class BenchSmsSender:
    """A minimal SMS Sender for the fake provider; the message id is the idempotency key."""

    idempotent = True

    def __init__(self, url: str) -> None:
        self.url = url
        self.http: aiohttp.ClientSession | None = None

    async def deliver(self, message, identity) -> str | None:
        if self.http is None:
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        body = {
            "to": identity.external_id,
            "body": message.text,
            "options": [b["payload"] for b in message.buttons],
        }
        headers = {"Idempotency-Key": f"omniclinica-message-{message.id}"}
        try:
            async with self.http.post(self.url, json=body, headers=headers) as response:
                if response.status >= 500:
                    raise DeliveryFailed(f"HTTP {response.status}", retryable=True)
                return (await response.json())["sid"]
        except aiohttp.ClientError as exc:
            raise DeliveryFailed(type(exc).__name__, retryable=True) from exc


async def run_worker(
    database_url: str, provider_url: str, shift: float, name: str, lease: float
) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "bench",
            "SESSION_SECRET": "bench",
            "RASA_TOKEN": "bench",
        }
    )
    ctx = Context(
        settings=settings,
        db=Database(database_url, pool_size=20),
        bus=NullBus(),
        senders={CHANNEL: BenchSmsSender(provider_url)},
        bot=NoBot(),
    )
    offset = timedelta(seconds=shift)

    def clock() -> datetime:
        # The clinic's daytime, whenever the bench runs (reminders never go out at night).
        return datetime.now(UTC) + offset

    while True:
        claimed = await dispatch_due(
            ctx, worker_id=name, clock=clock, lease=timedelta(seconds=lease), batch=20
        )
        if not claimed:
            await asyncio.sleep(0.2)


# --- Fake provider ------------------------------------------------------------------------


class FakeProvider:
    """Records every request; a repeated idempotency key returns the first answer."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict] = {}
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers["Idempotency-Key"]
        self.requests += 1
        await asyncio.sleep(random.uniform(0.001, 0.005))  # network latency
        self.by_key.setdefault(key, body)
        return web.json_response({"sid": f"SM{key}"}, status=201)

    def deliveries_per_appointment(self) -> Counter:
        per: Counter = Counter()
        for body in self.by_key.values():
            payload = body["options"][0]  # /confirmar_presenca{"appointment_id":"<id>"}
            entity = json.loads(payload[payload.index("{") :])
            per[int(entity["appointment_id"])] += 1
        return per


# --- Orchestration ------------------------------------------------------------------------


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(statement)


def _seed(url: str, count: int, clinic_now: datetime) -> list[int]:
    """`count` patients on SMS, each with one appointment whose reminder is due now."""
    engine = create_engine(sync_url(url), future=True)
    starts = clinic_now + timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(
            insert(Specialty), [{"id": 1, "name": "Clínica Geral", "slug": "clinica-geral"}]
        )
        connection.execute(
            insert(Doctor),
            [
                {"id": d + 1, "name": f"Dr. Bench {d}", "specialty_id": 1, "slot_minutes": 30}
                for d in range(DOCTORS)
            ],
        )
        ids = list(range(1, count + 1))
        connection.execute(
            insert(User),
            [
                {"id": i, "name": f"Paciente {i}", "role": Role.PATIENT, "is_active": True}
                for i in ids
            ],
        )
        connection.execute(
            insert(PatientProfile),
            [{"user_id": i, "preferred_channel": CHANNEL, "reminders_opt_in": True} for i in ids],
        )
        connection.execute(
            insert(ChannelIdentity),
            [
                {"id": i, "channel": CHANNEL, "external_id": f"+55119{i:08d}", "patient_id": i}
                for i in ids
            ],
        )
        connection.execute(
            insert(Appointment),
            [
                {
                    "id": i,
                    "patient_id": i,
                    "doctor_id": i % DOCTORS + 1,
                    "specialty_id": 1,
                    "starts_at": starts + timedelta(minutes=30 * (i // DOCTORS)),
                    "ends_at": starts + timedelta(minutes=30 * (i // DOCTORS) + 30),
                    "status": "agendada",
                    "reminders_planned_at": clinic_now,
                    "created_at": clinic_now - timedelta(days=3),
                }
                for i in ids
            ],
        )
        connection.execute(
            insert(Reminder),
            [
                {
                    "appointment_id": i,
                    "offset_minutes": 1440,
                    "due_at": clinic_now - timedelta(minutes=1),
                    "status": ReminderStatus.PENDING,
                    "attempts": 0,
                }
                for i in ids
            ],
        )
    engine.dispose()
    return ids


def _unsettled(url: str) -> int:
    engine = create_engine(sync_url(url), future=True)
    with engine.connect() as connection:
        query = select(func.count(Reminder.id)).where(
            Reminder.status.in_((ReminderStatus.PENDING, ReminderStatus.SENDING))
        )
        count = connection.execute(query).scalar_one()
    engine.dispose()
    return count


def _claimed_by(url: str, worker: str) -> int:
    engine = create_engine(sync_url(url), future=True)
    with engine.connect() as connection:
        query = select(func.count(Reminder.id)).where(Reminder.lease_owner == worker)
        count = connection.execute(query).scalar_one()
    engine.dispose()
    return count


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(url: str, provider_url: str, shift: float, name: str, lease: float) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", name, "--db", url, "--provider", provider_url]
    command += ["--shift", str(shift), "--lease", str(lease)]
    env = {**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)


async def run(count: int, kill_at: float, lease: float, timeout: float) -> None:
    name = f"omniclinica_bench_{uuid.uuid4().hex[:12]}"
    base, _, _ = ADMIN_URL.rpartition("/")
    url = f"{base}/{name}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    provider = FakeProvider()
    app = web.Application()
    app.router.add_post("/messages", provider.handle)
    runner = web.AppRunner(app, access_log=None)
    workers: list[subprocess.Popen] = []
    try:
        upgrade(url)
        # A Tuesday 10h in the clinic, shifted to now: the workers' clock reads daytime.
        real_now = datetime.now(UTC)
        clinic_now = datetime(2030, 3, 12, 10, tzinfo=CLINIC_TZ).astimezone(UTC)
        ids = _seed(url, count, clinic_now)
        await runner.setup()
        port = _free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        provider_url = f"http://127.0.0.1:{port}/messages"
        shift = (clinic_now - real_now).total_seconds()

        started = time.monotonic()
        workers = [_spawn(url, provider_url, shift, f"w{n}", lease) for n in (1, 2)]
        killed_claims = 0
        while len(provider.by_key) < count * kill_at:
            if time.monotonic() - started > timeout:
                raise RuntimeError("workers made no progress before the kill point")
            await asyncio.sleep(0.05)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        killed_claims = _claimed_by(url, "w1")
        while await asyncio.to_thread(_unsettled, url):
            if time.monotonic() - started > timeout:
                break
            await asyncio.sleep(0.25)
        dispatch_s = time.monotonic() - started
        await asyncio.sleep(0.5)  # let in-flight requests land before counting

        per = provider.deliveries_per_appointment()
        duplicates = sum(1 for n in per.values() if n > 1)
        missing = sum(1 for i in ids if per[i] == 0)
        print(f"reminders: {count}")
        print(f"killed_worker_rows_in_flight: {killed_claims}")
        print(f"provider_requests: {provider.requests}")
        print(f"replayed_requests: {provider.requests - len(provider.by_key)}")
        print(f"dispatch_s: {dispatch_s:.1f}")
        print(f"duplicates: {duplicates}")
        print(f"missing: {missing}")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=10)
        await runner.cleanup()
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--kill-at", type=float, default=0.3, help="fraction delivered at the kill")
    parser.add_argument("--lease", type=float, default=5.0, help="lease in seconds")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--provider", help=argparse.SUPPRESS)
    parser.add_argument("--shift", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(run_worker(args.db, args.provider, args.shift, args.worker, args.lease))
    else:
        asyncio.run(run(args.reminders, args.kill_at, args.lease, args.timeout))


if __name__ == "__main__":
    main()
