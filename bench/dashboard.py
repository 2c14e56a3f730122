"""Benchmark: the manager's analytics console on a year of a busy clinic, PostgreSQL.

    .venv/bin/python bench/dashboard.py [--rounds 20]

Creates and drops its own database (BENCH_POSTGRES_URL, else TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/postgres), migrates it and seeds it in SQL
(generate_series, no ORM objects): 100,000 conversations over the last 365 days (60% handed
off, with their assignments, transfers, resolutions and CSAT, and their handoff facts
rebuilt from them as the migration backfills), 1,000,000 messages, 50,000
appointments with their events and reminders, 20,000 patients and 20 attendants. Then starts
the web process (`python -m processes.web`, as the Procfile does) on a free port, logs a
manager in and loads the console as the page does (figures and series in one request), `--rounds`
times, while an attendant's staff WebSocket sends a ping every 50 ms. Prints:

    dashboard_p95_ms: the page's data for the last 30 days (goal <= 300)
    dashboard_year_p95_ms: the same for the last 12 months (goal <= 1500)
    ws_ping_max_ms: the slowest staff WebSocket ping answer while the reports ran (goal <= 100)
    ws_ping_ok: 1 when every ping was answered within 100 ms
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import aiohttp
import psycopg
from psycopg import sql
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accounts.auth import hash_password
from core.settings import ROOT
from handoff import facts
from handoff.queue import CLINIC_TZ
from models import utcnow
from models.db import sync_url
from models.migrate import upgrade
from tests.clinic import free_port

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL",
    os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
PASSWORD = "senha-do-bench"
PING_EVERY_S = 0.05
PING_GOAL_MS = 100

# Each statement runs once, in order; ids are explicit so rows can point at each other by
# arithmetic (conversation n's patient, message m's conversation...), then the sequences are
# moved past them.
SEED = [
    "SELECT setseed(0.42)",
    """INSERT INTO users (id, name, email, password_hash, role, is_active, created_at,
       updated_at)
       SELECT n, 'Atendente ' || n, 'bench-' || n || '@clinica.test', %(hash)s,
              CASE WHEN n = 21 THEN 'manager' ELSE 'attendant' END, true, now(), now()
       FROM generate_series(1, 21) n""",
    """INSERT INTO attendant_profiles (user_id, presence, capacity, presence_changed_at, version)
       SELECT n, (ARRAY['online', 'pausa', 'offline'])[1 + n %% 3], 5, now(), 0
       FROM generate_series(1, 21) n""",
    "INSERT INTO security_policy (id, second_factor, updated_at) VALUES (1, 'nobody', now())",
    """INSERT INTO users (id, name, role, is_active, created_at, updated_at)
       SELECT n, 'Paciente ' || n, 'patient', true, now(), now()
       FROM generate_series(1001, 21000) n""",
    """INSERT INTO channel_identities (id, channel, external_id, patient_id, details, created_at)
       SELECT n - 1000, (ARRAY['whatsapp', 'webchat', 'telegram', 'instagram'])[1 + n %% 4],
              'ext-' || n, n, '{}', now()
       FROM generate_series(1001, 21000) n""",
    # opened: spread over the year; handed off: 6 in 10; answered: 19 in 20 of those;
    # resolved: 9 in 10 of those; CSAT: one resolution in 3. The unresolved ones of the last
    # hour are still with their attendant; older ones were closed when they went idle.
    """CREATE TEMP TABLE seed AS
       SELECT n,
              1001 + (n * 7) %% 20000 AS patient,
              now() - make_interval(secs => floor(random() * 365 * 86400)) AS opened,
              n %% 10 < 6 AS handed,
              n %% 20 <> 0 AS answered,
              n %% 10 <> 5 AND n %% 20 <> 0 AS resolved,
              1 + n %% 20 AS attendant,
              30 + floor(random() * 900) AS wait_s,
              20 + floor(random() * 1800) AS reply_s,
              300 + floor(random() * 3600) AS handling_s
       FROM generate_series(1, 100000) n""",
    """INSERT INTO conversations (id, patient_id, channel, channel_identity_id, status, owner,
       assigned_attendant_id, priority, handoff_reason, opened_at, last_message_at,
       handed_off_at, queued_at, assigned_at, first_human_reply_at, resolved_at, closed_at,
       csat_score, version)
       SELECT s.n, s.patient, i.channel, i.id,
              CASE WHEN s.held_now THEN 'open' ELSE 'closed' END,
              CASE WHEN s.held_now THEN 'attendant' ELSE 'bot' END,
              CASE WHEN s.held_now THEN s.attendant END,
              0,
              CASE WHEN s.handed THEN (ARRAY['pedido_do_paciente', 'emergencia', 'duvida',
                   'fora_do_escopo'])[1 + s.n %% 4] END,
              s.opened, s.opened + interval '30 minutes',
              CASE WHEN s.handed THEN s.opened + interval '1 minute' END,
              CASE WHEN s.handed THEN s.opened + interval '1 minute' END,
              CASE WHEN s.handed THEN s.opened + make_interval(secs => 60 + s.wait_s) END,
              CASE WHEN s.handed AND s.answered
                   THEN s.opened + make_interval(secs => 60 + s.wait_s + s.reply_s) END,
              CASE WHEN s.handed AND s.resolved
                   THEN s.opened + make_interval(secs => 60 + s.wait_s + s.handling_s) END,
              s.opened + interval '1 hour',
              CASE WHEN s.handed AND s.resolved AND s.n %% 3 = 0 THEN 1 + s.n %% 5 END,
              0
       FROM (SELECT *, handed AND NOT resolved AND opened > now() - interval '1 hour'
                    AS held_now FROM seed) s
       JOIN channel_identities i ON i.id = s.patient - 1000""",
    """INSERT INTO handoff_events (conversation_id, patient_id, kind, from_attendant_id,
       to_attendant_id, details, created_at)
       SELECT c.id, c.patient_id, e.kind, e.from_id, e.to_id, '{}', e.at
       FROM conversations c JOIN seed s ON s.n = c.id
       CROSS JOIN LATERAL (VALUES
         ('handoff', NULL::int, NULL::int, c.handed_off_at),
         ('assigned', NULL, s.attendant, c.assigned_at),
         ('transferred', s.attendant, 1 + (s.attendant %% 20),
          CASE WHEN c.id %% 17 = 0 THEN c.assigned_at + interval '2 minutes' END),
         ('resolved', CASE WHEN c.id %% 17 = 0 THEN 1 + (s.attendant %% 20) ELSE s.attendant END,
          NULL, c.resolved_at)
       ) AS e(kind, from_id, to_id, at)
       WHERE c.handed_off_at IS NOT NULL AND e.at IS NOT NULL""",
    # Ten messages per conversation: the patient and the bot in turns; in a handed-off one,
    # the attendant from the fourth on (the first of them at the first human reply). Every
    # patient message was routed when it came (else the web process would spend the
    # benchmark replaying a year of them to an assistant that is not running).
    """INSERT INTO messages (conversation_id, patient_id, channel, direction, author_kind,
       author_id, text, attachments, buttons, internal, sealed, delivery_status, attempts,
       parts_sent, created_at, recorded_at, processed_at)
       SELECT c.id, c.patient_id, c.channel,
              CASE WHEN k %% 2 = 0 THEN 'in' ELSE 'out' END,
              CASE WHEN k %% 2 = 0 THEN 'patient'
                   WHEN c.first_human_reply_at IS NOT NULL AND k >= 3 THEN 'attendant'
                   ELSE 'bot' END,
              CASE WHEN k %% 2 = 1 AND c.first_human_reply_at IS NOT NULL AND k >= 3
                   THEN c.assigned_attendant_id END,
              'mensagem ' || k, '[]', '[]', false, false,
              CASE WHEN k %% 2 = 0 THEN 'received' ELSE 'read' END, 1, 1,
              CASE WHEN k = 3 AND c.first_human_reply_at IS NOT NULL THEN c.first_human_reply_at
                   ELSE c.opened_at + make_interval(secs => k * 30) END,
              c.opened_at + make_interval(secs => k * 30),
              CASE WHEN k %% 2 = 0 THEN c.opened_at + make_interval(secs => k * 30) END
       FROM conversations c CROSS JOIN generate_series(0, 9) k""",
    "INSERT INTO specialties (id, name, slug) VALUES (1, 'Clínica geral', 'clinica-geral')",
    """INSERT INTO doctors (id, name, slot_minutes, convenios)
       SELECT n, 'Dr. ' || n, 30, '[]' FROM generate_series(1, 10) n""",
    """INSERT INTO doctor_specialties (doctor_id, specialty_id)
       SELECT n, 1 FROM generate_series(1, 10) n""",
    """INSERT INTO appointments (id, patient_id, doctor_id, specialty_id, starts_at, ends_at,
       status, rescheduled_from_id, notes, created_at, updated_at)
       SELECT n, 1001 + n %% 20000, 1 + n %% 10, 1, a.starts, a.starts + interval '30 minutes',
              CASE WHEN n %% 10 = 1 THEN 'cancelada'
                   WHEN a.starts > now() THEN (ARRAY['agendada', 'confirmada'])[1 + n %% 2]
                   WHEN n %% 10 = 0 THEN 'faltou' ELSE 'realizada' END,
              CASE WHEN n %% 25 = 0 THEN n - 1 END, '', a.created, a.created
       FROM generate_series(1, 50000) n
       CROSS JOIN LATERAL (SELECT now() - make_interval(secs => (n * 7919) %% 31536000)
                           AS created) c
       CROSS JOIN LATERAL (SELECT c.created AS created,
                           date_trunc('second', c.created) + make_interval(days => 1 + n %% 30)
                           + make_interval(secs => n %% 1000 * 0.001) AS starts) a
       ON CONFLICT DO NOTHING""",
    """INSERT INTO appointment_events (appointment_id, from_status, to_status, actor_id,
       channel, note, created_at)
       SELECT a.id, e.from_status, e.to_status, e.actor, e.channel, '', e.at
       FROM appointments a
       CROSS JOIN LATERAL (SELECT (ARRAY['whatsapp', 'portal', 'staff', 'webchat'])[1 + a.id %% 4]
                           AS channel) o
       CROSS JOIN LATERAL (VALUES
         (NULL, 'agendada', CASE WHEN o.channel = 'staff' THEN 1 + a.id %% 20 END, o.channel,
          a.created_at),
         ('agendada', 'confirmada', NULL, 'whatsapp',
          CASE WHEN a.id %% 2 = 1 AND a.status <> 'cancelada'
               THEN a.starts_at - interval '20 hours' END),
         ('agendada', 'cancelada', NULL, o.channel,
          CASE WHEN a.status = 'cancelada' THEN a.created_at + interval '1 day' END)
       ) AS e(from_status, to_status, actor, channel, at)
       WHERE e.at IS NOT NULL""",
    """INSERT INTO reminders (appointment_id, offset_minutes, due_at, status, attempts, channel,
       sent_at, created_at)
       SELECT id, 1440, starts_at - interval '1 day',
              CASE WHEN id %% 50 = 0 THEN 'failed' WHEN starts_at - interval '1 day' < now()
                   THEN 'sent' ELSE 'pending' END,
              1, 'whatsapp',
              CASE WHEN id %% 50 <> 0 AND starts_at - interval '1 day' < now()
                   THEN starts_at - interval '1 day' END,
              created_at
       FROM appointments""",
    "SELECT setval('users_id_seq', 21001)",
    "SELECT setval('conversations_id_seq', 100001)",
    "SELECT setval('channel_identities_id_seq', 20001)",
    "SELECT setval('appointments_id_seq', 50001)",
    "SELECT setval('specialties_id_seq', 2)",
    "SELECT setval('doctors_id_seq', 11)",
    "DROP TABLE seed",
]


def seed(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=False) as conn:
        for statement in SEED:
            conn.execute(statement, {"hash": hash_password(PASSWORD)})
        conn.commit()
        rebuild_facts(url)
        conn.autocommit = True
        # A year-old database has been vacuumed as it grew; a fresh one would be vacuumed by
        # autovacuum while the reports run.
        conn.execute("VACUUM ANALYZE")
        counts = {}
        for table in (
            "messages",
            "conversations",
            "appointments",
            "handoff_events",
            "handoff_facts",
        ):
            counts[table] = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()[0]
    return counts


def rebuild_facts(url: str) -> None:
    """The seeded trail's handoff facts, as the migration that introduced them backfills."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            for statement in facts.rebuild():
                connection.execute(statement)
    finally:
        engine.dispose()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


async def ping_loop(
    ws: aiohttp.ClientWebSocketResponse, latencies: list[float], stop: asyncio.Event
) -> None:
    """A ping every PING_EVERY_S, each timed until its pong (the server answers pings from its
    event loop: a loop blocked by a report answers late)."""
    while not stop.is_set():
        started = time.perf_counter()
        await ws.ping()
        while True:
            message = await ws.receive(timeout=10)
            if message.type == aiohttp.WSMsgType.PONG:
                break
            if message.type == aiohttp.WSMsgType.PING:
                await ws.pong(message.data)
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(PING_EVERY_S)


async def login(base: str, email: str) -> aiohttp.ClientSession:
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with http.post(f"{base}/api/login", json={"email": email, "password": PASSWORD}) as r:
        assert r.status == 200, await r.text()
    return http


async def load_page(http: aiohttp.ClientSession, base: str, days: int) -> float:
    """The console's data for the last `days` days, as the page asks for it: figures and
    series in one request."""
    today = utcnow().astimezone(CLINIC_TZ).date()
    query = f"from={today - timedelta(days=days - 1)}&to={today}"

    started = time.perf_counter()
    async with http.get(f"{base}/api/analytics/console?{query}") as response:
        assert response.status == 200, await response.text()
        await response.read()
    return (time.perf_counter() - started) * 1000


async def measure(base: str, rounds: int) -> dict[str, float]:
    manager = await login(base, "bench-21@clinica.test")
    attendant = await login(base, "bench-1@clinica.test")
    ws = await attendant.ws_connect(f"{base}/api/ws", autoping=False)
    latencies: list[float] = []
    stop = asyncio.Event()
    try:
        await load_page(manager, base, 30)  # warm-up: connections, plans, caches
        pinger = asyncio.create_task(ping_loop(ws, latencies, stop))
        month = [await load_page(manager, base, 30) for _ in range(rounds)]
        year = [await load_page(manager, base, 365) for _ in range(rounds)]
        stop.set()
        await pinger
    finally:
        await ws.close()
        await manager.close()
        await attendant.close()
    return {
        "dashboard_p95_ms": round(p95(month), 1),
        "dashboard_year_p95_ms": round(p95(year), 1),
        "ws_ping_max_ms": round(max(latencies), 1),
        "ws_ping_ok": int(max(latencies) <= PING_GOAL_MS),
    }


async def wait_for(base: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if process.poll() is not None:
                raise SystemExit("the web process exited")
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the web process did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    name = f"bench_dashboard_{uuid.uuid4().hex[:8]}"
    base_url, _, _ = ADMIN_URL.rpartition("/")
    url = f"{base_url}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    process = None
    try:
        upgrade(url)
        started = time.perf_counter()
        counts = seed(url)
        print(f"seeded {counts} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        port = free_port()
        web_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "WEB_URL": web_url,
            "PUBLIC_BASE_URL": web_url,
            "SEED_DEMO": "0",
            "PYTHONPATH": str(ROOT),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "processes.web"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        asyncio.run(wait_for(web_url, process))
        for key, value in asyncio.run(measure(web_url, args.rounds)).items():
            print(f"{key}: {value}")
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
