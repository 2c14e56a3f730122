"""Benchmark: reminders due at once on WhatsApp (Cloud API template messages), PostgreSQL +
Redis, two worker processes sharing the send-rate cap, one killed with SIGKILL mid-run,
against a local fake Graph API that records when each message arrives.

    .venv/bin/python bench/reminders.py [--reminders 3000] [--cap 80] [--kill-at 0.3]

Creates and drops its own database (BENCH_POSTGRES_URL, else TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/postgres) and uses Redis at BENCH_REDIS_URL (else
TEST_REDIS_URL, else redis://127.0.0.1:6379/0) for the shared cap. Each worker process runs
the worker's job loop (`processes.worker.run_periodically`) over the product's dispatcher
(`scheduling.reminders.dispatch_due`) with the real WhatsApp channel, its clock shifted to the
clinic's daytime. Prints:

    reminders_per_s: messages the provider received per second, first to last (goal >= 0.9 x cap)
    max_rate_per_s: the most messages it received in any one-second window (goal <= cap)
    duplicates: appointments reminded more than once (goal 0)
    missing: appointments whose reminder never reached the provider (goal 0)

and, for context, how many rows the killed worker held and how many reminders were given up
as `uncertain_delivery` (the worker died between claiming the attempt and hearing back).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
import redis
from aiohttp import web
from psycopg import sql
from sqlalchemy import create_engine, func, insert, select

from channels.registry import build_senders, close_channels, enabled_channels
from core.context import Context
from core.events import EventBus
from core.ratelimit import KEY_PREFIX, build_limits
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
    doctor_specialties,
)
from models.db import Database, sync_url
from models.migrate import upgrade
from processes.worker import PeriodicJob, run_periodically
from scheduling.agenda import CLINIC_TZ
from scheduling.reminders import dispatch_due

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
REDIS_URL = os.environ.get(
    "BENCH_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
)
CHANNEL = "whatsapp"
PHONE_NUMBER_ID = "106540352242922"
ACCESS_TOKEN = "bench-access-token"
DOCTORS = 50


# --- Worker process ---------------------------------------------------------------------


class NoBot:
    async def hand_back(self, ctx: Context, patient_id: int, intent: str) -> None:
        pass

    async def close(self) -> None:
        pass


def worker_settings(database_url: str, graph_url: str, cap: float) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "SEND_RATES": f"{CHANNEL}={cap:g}",
            "INTERNAL_TOKEN": "bench",
            "SESSION_SECRET": "bench",
            "RASA_TOKEN": "bench",
            "META_GRAPH_URL": graph_url,
            "WHATSAPP_VERIFY_TOKEN": "bench-verify",
            "WHATSAPP_APP_SECRET": "bench-secret",
            "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        }
    )


async def run_worker(
    database_url: str, graph_url: str, cap: float, shift: float, name: str, lease: float
) -> None:
    settings = worker_settings(database_url, graph_url, cap)
    ctx = Context(
        settings=settings,
        db=Database(database_url, pool_size=20),
        bus=EventBus(),  # no staff screens to forward to
        senders=build_senders(settings, enabled_channels(settings), widget_sockets=None),
        limits=build_limits(settings.redis_url),
        bot=NoBot(),
    )
    offset = timedelta(seconds=shift)

    def clock() -> datetime:
        # The clinic's daytime, whenever the bench runs (reminders never go out at night).
        return datetime.now(UTC) + offset

    dispatch = partial(dispatch_due, worker_id=name, clock=clock, lease=timedelta(seconds=lease))
    job = PeriodicJob("reminder dispatch", 0.2, dispatch)
    try:
        await run_periodically(job, ctx, asyncio.Event())
    finally:
        await close_channels(ctx.senders)
        await ctx.close()


# --- Fake Graph API -----------------------------------------------------------------------


class FakeGraph:
    """The Cloud API's messages endpoint: checks the token, records when each template
    message arrives and which appointment its Confirmar button names, answers a wamid."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, int]] = []

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return web.json_response({"error": {"code": 190, "message": "bad token"}}, status=401)
        body = await request.json()
        arrived = time.monotonic()
        template = body["template"]
        button = next(c for c in template["components"] if c["type"] == "button")
        payload = button["parameters"][0]["payload"]  # /confirmar_presenca{"appointment_id":…}
        appointment = int(json.loads(payload[payload.index("{") :])["appointment_id"])
        self.arrivals.append((arrived, appointment))
        await asyncio.sleep(random.uniform(0.001, 0.005))  # network latency
        wamid = f"wamid.{uuid.uuid4().hex}"
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            }
        )

    def rates(self) -> tuple[float, int]:
        """Messages per second from the first to the last, and the most in any one second."""
        times = sorted(t for t, _ in self.arrivals)
        if len(times) < 2:
            return 0.0, len(times)
        per_second = (len(times) - 1) / (times[-1] - times[0])
        busiest = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
        return per_second, busiest


# --- Orchestration ------------------------------------------------------------------------


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(statement)


def _seed(url: str, count: int, clinic_now: datetime) -> list[int]:
    """`count` patients on WhatsApp who have not written in 24 h (so a template goes out),
    each with one appointment whose reminder is due now."""
    engine = create_engine(sync_url(url), future=True)
    starts = clinic_now + timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(
            insert(Specialty), [{"id": 1, "name": "Clínica Geral", "slug": "clinica-geral"}]
        )
        connection.execute(
            insert(Doctor),
            [
                {"id": d + 1, "name": f"Dr. Bench {d}", "slot_minutes": 30, "convenios": []}
                for d in range(DOCTORS)
            ],
        )
        connection.execute(
            insert(doctor_specialties),
            [{"doctor_id": d + 1, "specialty_id": 1} for d in range(DOCTORS)],
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
                {"id": i, "channel": CHANNEL, "external_id": f"55119{i:08d}", "patient_id": i}
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


def _count(url: str, *conditions: object) -> int:
    engine = create_engine(sync_url(url), future=True)
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count(Reminder.id)).where(*conditions)  # type: ignore[arg-type]
        ).scalar_one()
    engine.dispose()
    return int(count)


def _unsettled(url: str) -> int:
    return _count(url, Reminder.status.in_((ReminderStatus.PENDING, ReminderStatus.SENDING)))


def _spawn(args: argparse.Namespace, url: str, graph_url: str, shift: float, name: str):
    command = [sys.executable, __file__, "--worker", name, "--db", url, "--graph", graph_url]
    command += ["--shift", str(shift), "--lease", str(args.lease), "--cap", str(args.cap)]
    env = {**os.environ, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)


def _reset_paces() -> None:
    """Forget slots reserved by an earlier run, so the first send goes at once."""
    client = redis.Redis.from_url(REDIS_URL)
    for lane in (CHANNEL, f"{CHANNEL}:bulk"):
        client.delete(f"{KEY_PREFIX}pace:send:{lane}")
    client.close()


async def run(args: argparse.Namespace) -> None:
    name = f"omniclinica_bench_{uuid.uuid4().hex[:12]}"
    base, _, _ = ADMIN_URL.rpartition("/")
    url = f"{base}/{name}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    graph = FakeGraph()
    app = web.Application()
    app.router.add_post(f"/v24.0/{PHONE_NUMBER_ID}/messages", graph.handle)
    runner = web.AppRunner(app, access_log=None)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(url)
        # A Tuesday 10h in the clinic, shifted to now: the workers' clock reads daytime.
        real_now = datetime.now(UTC)
        clinic_now = datetime(2030, 3, 12, 10, tzinfo=CLINIC_TZ).astimezone(UTC)
        ids = _seed(url, args.reminders, clinic_now)
        _reset_paces()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        graph_url = f"http://127.0.0.1:{port}/v24.0"
        shift = (clinic_now - real_now).total_seconds()

        started = time.monotonic()
        workers = [_spawn(args, url, graph_url, shift, f"w{n}") for n in (1, 2)]
        while len(graph.arrivals) < args.reminders * args.kill_at:
            if time.monotonic() - started > args.timeout:
                raise RuntimeError("workers made no progress before the kill point")
            await asyncio.sleep(0.01)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        killed_rows = _count(
            url, Reminder.lease_owner == "w1", Reminder.status == ReminderStatus.SENDING
        )
        while await asyncio.to_thread(_unsettled, url):
            if time.monotonic() - started > args.timeout:
                break
            await asyncio.sleep(0.25)
        dispatch_s = time.monotonic() - started
        await asyncio.sleep(0.5)  # let in-flight requests land before counting

        per = Counter(appointment for _, appointment in graph.arrivals)
        per_second, busiest = graph.rates()
        uncertain = _count(url, Reminder.error == "uncertain_delivery")
        print(f"reminders: {args.reminders}")
        print(f"cap_per_s: {args.cap:g}")
        print(f"killed_worker_rows_in_flight: {killed_rows}")
        print(f"uncertain_delivery: {uncertain}")
        print(f"dispatch_s: {dispatch_s:.1f}")
        print(f"reminders_per_s: {per_second:.1f}")
        print(f"max_rate_per_s: {busiest}")
        print(f"duplicates: {sum(1 for n in per.values() if n > 1)}")
        print(f"missing: {sum(1 for i in ids if per[i] == 0)}")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=10)
        await runner.cleanup()
        _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=3000)
    parser.add_argument("--cap", type=float, default=80.0, help="WhatsApp messages per second")
    parser.add_argument("--kill-at", type=float, default=0.3, help="fraction delivered at the kill")
    parser.add_argument("--lease", type=float, default=5.0, help="lease in seconds")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--graph", help=argparse.SUPPRESS)
    parser.add_argument("--shift", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(run_worker(args.db, args.graph, args.cap, args.shift, args.worker, args.lease))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
