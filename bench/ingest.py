"""How many patient messages the production topology records per second: signed WhatsApp
webhooks, one message each, at the highest rate the web replicas acknowledge.

    .venv/bin/python bench/ingest.py [--seconds 60] [--via direct|proxy] [--connections 64]

Sets up production mode on this machine (as `make production` does) on a throwaway PostgreSQL
database and Redis: 2 web replicas and 2 workers from the Procfile, each with its own log in
the temporary folder named on stderr. The assistant replicas and the action server are not
started: every conversation is already with an attendant (handed off and assigned before the
load starts), so the assistant has nothing to do, and two Rasa replicas loading their models
would only take CPU from what is measured.

The load comes from a separate process (`--client`, below): a lean asyncio HTTP/1.1 client on
uvloop with keep-alive connections, each sending one request at a time, bodies built from one
template and signed as Meta signs them (HMAC-SHA256 of the body with the app secret), every
one with a new WhatsApp message id, spread over `--patients` patients. `--via direct` (the
default) sends to the replicas round-robin over plain HTTP; `--via proxy` sends to nginx over
TLS as providers do (on 2 cores, the proxy's TLS and the client's take CPU from the
replicas: the figure is lower).

Afterwards it waits until the background routing has marked every recorded message processed,
then counts the inbound rows by provider id. Prints `name: value` lines: `ingest_msgs_per_s`
(acknowledged / seconds of load), `acked`, `refused` (any answer but 200, and connection
errors), `lost` (acknowledged but not recorded), `duplicated` (recorded more than once),
`unprocessed` (recorded but never routed), `ack_p50_ms`, `ack_p99_ms`.

Goal: ingest_msgs_per_s ≥ 500 on 2 cores, lost = duplicated = 0.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, update  # noqa: E402

from bench.turns import cpu_seconds, percentile  # noqa: E402

PATIENT_BASE = 5511966000000  # WhatsApp ids of the bench's patients: PATIENT_BASE + n
SETTLE_SECONDS = 60.0  # the routing of what was recorded must finish within this
START_TIMEOUT = 120.0


# --- the load generator (its own process) ---------------------------------------------------


def _template() -> bytes:
    """The recorded WhatsApp text webhook, with placeholders for the sender and message id."""
    from tests.channels.webhooks import load_json

    payload = load_json("whatsapp", "text")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = "@SENDER@"
    value["messages"][0]["id"] = "@ID@"
    value["messages"][0]["text"]["body"] = "Bom dia, tudo bem?"
    return json.dumps(payload, separators=(",", ":")).encode()


class Load:
    """Requests built and signed on the fly (a format and an HMAC: microseconds each)."""

    def __init__(self, host: str, patients: int, secret: str, run: str) -> None:
        from tests.channels.webhooks import webhook_path

        self.body = _template().replace(b"@SENDER@", b"%(sender)s").replace(b"@ID@", b"%(id)s")
        self.head = (
            f"POST {webhook_path('whatsapp')} HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nX-Hub-Signature-256: sha256=%s\r\n"
            "Content-Length: %d\r\n\r\n"
        )
        self.secret = secret.encode()
        self.patients = patients
        self.run = run
        self.n = 0

    def next(self) -> tuple[str, bytes]:
        n, self.n = self.n, self.n + 1
        message_id = f"wamid.ingest.{self.run}.{n}"
        sender = str(PATIENT_BASE + n % self.patients)
        body = self.body % {b"sender": sender.encode(), b"id": message_id.encode()}
        signature = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return message_id, (self.head % (signature, len(body))).encode() + body


async def _connection(
    target: str, load: Load, until: float, acked: list[str], failed: list[int], ms: list[float]
) -> None:
    parts = urlsplit(target)
    ssl = parts.scheme == "https"
    context = None
    if ssl:
        import ssl as tls

        context = tls.create_default_context()
        context.check_hostname, context.verify_mode = False, tls.CERT_NONE
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, ssl=context)
    try:
        while time.monotonic() < until:
            message_id, request = load.next()
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            status = int(status_line.split()[1])
            if status == 200:
                acked.append(message_id)
                ms.append((time.perf_counter() - started) * 1000)
            else:
                failed.append(status)
    except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
        failed.append(0)  # the connection broke: whatever was in flight is not acknowledged
    finally:
        writer.close()


async def _client(args: argparse.Namespace) -> dict[str, object]:
    targets = args.targets.split(",")
    load = Load(urlsplit(targets[0]).netloc, args.patients, args.secret, args.run)
    acked: list[str] = []
    failed: list[int] = []
    ms: list[float] = []
    started = time.monotonic()
    until = started + args.seconds
    await asyncio.gather(
        *(
            _connection(targets[i % len(targets)], load, until, acked, failed, ms)
            for i in range(args.connections)
        )
    )
    elapsed = time.monotonic() - started
    return {"acked": acked, "failed": failed, "ms": ms, "elapsed": elapsed}


def client_main(args: argparse.Namespace) -> None:
    import uvloop

    result = uvloop.run(_client(args))
    Path(args.out).write_text(json.dumps(result))


# --- the clinic ------------------------------------------------------------------------------


async def _seed(database_url: str, patients: int) -> None:
    """Every bench patient has written once, been handed off and is with an attendant."""
    from channels.whatsapp import parse
    from messaging.history import record_inbound
    from models import Conversation, Message, Owner, User, utcnow
    from models.db import Database
    from tests.channels.webhooks import text_message
    from tests.factories import staff

    db = Database(database_url)
    try:
        attendant: User = await staff(db, capacity=patients)
        async with db.session() as session:
            for n in range(patients):
                payload = text_message("whatsapp", str(PATIENT_BASE + n), "oi", f"wamid.seed.{n}")
                await record_inbound(session, parse(payload)[0])
            now = utcnow()
            await session.execute(
                update(Conversation).values(
                    owner=Owner.ATTENDANT,
                    assigned_attendant_id=attendant.id,
                    handed_off_at=now,
                    assigned_at=now,
                )
            )
            await session.execute(update(Message).values(processed_at=now))
    finally:
        await db.dispose()


def postgres_cpu_seconds() -> float:
    """CPU time used so far by every PostgreSQL process of this machine (this bench's
    backends, and whatever else uses the server meanwhile)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if "(postgres)" in stat.read_text():
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, ValueError):
            continue  # ended meanwhile
    return total


def _answers(url: str) -> bool:
    from tests.clinic import answers_200

    return answers_200(f"{url}/healthz")


class Topology:
    """2 web replicas and 2 workers (and nginx, for `--via proxy`), started directly."""

    def __init__(self, folder: Path, database_url: str, redis_url: str) -> None:
        from scripts.production import Counts
        from scripts.production import Topology as Production
        from tests.channels.webhooks import SECRETS
        from tests.clinic import free_port

        first = free_port()
        base_env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WEB_URL": f"http://127.0.0.1:{first}",
            "BOT_URL": f"http://127.0.0.1:{free_port()}",
            "ACTION_SERVER_URL": f"http://127.0.0.1:{free_port()}/webhook",
            "PROXY_LISTEN": f"127.0.0.1:{free_port()}",
            "PROXY_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
            "INTERNAL_TOKEN": "bench-internal-token",
            "SESSION_SECRET": "bench-session-secret",
            "RASA_TOKEN": "bench-rasa-token",
            "ACTION_SERVER_TOKEN": "bench-actions-token",
        }
        self.whatsapp = {k: v for k, v in SECRETS.items() if k.startswith("WHATSAPP_")}
        from core.settings import Settings

        self.production = Production(
            Settings.from_env(base_env), Counts(web=2, assistant=1, workers=2), run_dir=folder
        )
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def web_pids(self) -> list[int]:
        return [p.pid for p in self.processes[: len(self.web_urls)]]

    @property
    def web_urls(self) -> list[str]:
        return self.production.web_urls

    @property
    def proxy_url(self) -> str:
        return self.production.public_base_url

    def start(self, via: str, profile: bool) -> None:
        from scripts.production import read_procfile, write_run_files
        from tests.clinic import start_logged

        settings = self.production.settings()
        env = {**os.environ, **settings.child_env(), **self.whatsapp}
        if via == "proxy":
            write_run_files(self.production)
        lines = self.production.processes(read_procfile())
        wanted = [n for n in lines if n.startswith(("web", "worker"))]
        wanted += ["proxy"] if via == "proxy" else []
        for name in wanted:
            line = lines[name]
            if profile and name.startswith("web"):
                profiled = f"-m cProfile -o {self.folder / name}.prof -m processes.web"
                line = line.replace("-m processes.web", profiled)
            command = ["bash", "-c", line]
            self.processes.append(start_logged(command, env, self.folder / f"{name}.log"))
        deadline = time.monotonic() + START_TIMEOUT
        while not all(_answers(url) for url in self.web_urls):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"the topology did not start: see {self.folder}")
            time.sleep(0.5)

    def stop(self) -> None:
        from tests.clinic import stop_group

        for process in self.processes:
            stop_group(process)


async def _count(database_url: str, run: str) -> tuple[dict[str, int], int]:
    """Inbound rows of this run per provider id, and how many are still unprocessed."""
    from models import Direction, Message
    from models.db import Database

    db = Database(database_url)
    mine = Message.provider_message_id.like(f"wamid.ingest.{run}.%")
    try:
        async with db.session() as session:
            rows = await session.execute(
                select(Message.provider_message_id, func.count())
                .where(mine, Message.direction == Direction.INBOUND)
                .group_by(Message.provider_message_id)
            )
            counts = {provider_id: n for provider_id, n in rows.all() if provider_id}
            unprocessed = await session.scalar(
                select(func.count()).where(mine, Message.processed_at.is_(None))
            )
        return counts, int(unprocessed or 0)
    finally:
        await db.dispose()


def _settled(database_url: str, run: str) -> tuple[dict[str, int], int]:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        counts, unprocessed = asyncio.run(_count(database_url, run))
        if not unprocessed or time.monotonic() > deadline:
            return counts, unprocessed
        time.sleep(1)


def bench_main(args: argparse.Namespace) -> None:
    from models.migrate import upgrade
    from tests.channels.webhooks import SECRETS
    from tests.databases import TEST_REDIS_URL, PostgresDatabases

    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    print(f"logs in {folder}", file=sys.stderr)
    databases = PostgresDatabases()
    database_url = databases.create_empty()
    topology = None
    run = str(int(time.time()))
    try:
        upgrade(database_url)
        asyncio.run(_seed(database_url, args.patients))
        topology = Topology(folder, database_url, TEST_REDIS_URL)
        topology.start(args.via, args.profile)
        targets = [topology.proxy_url] if args.via == "proxy" else topology.web_urls
        out = folder / "client.json"
        client = [
            *(sys.executable, __file__, "--client", "--targets", ",".join(targets)),
            *("--seconds", str(args.seconds), "--connections", str(args.connections)),
            *("--patients", str(args.patients), "--run", run, "--out", str(out)),
            *("--secret", SECRETS["WHATSAPP_APP_SECRET"]),
        ]
        web_before = sum(cpu_seconds(pid) for pid in topology.web_pids)
        postgres_before = postgres_cpu_seconds()
        client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(client, check=True, cwd=ROOT)
        client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        web_cpu = sum(cpu_seconds(pid) for pid in topology.web_pids) - web_before
        postgres_cpu = postgres_cpu_seconds() - postgres_before
        client_cpu = (client_after.ru_utime + client_after.ru_stime) - (
            client_before.ru_utime + client_before.ru_stime
        )
        result = json.loads(out.read_text())
        counts, unprocessed = _settled(database_url, run)
    finally:
        if topology is not None:
            topology.stop()
        databases.drop_all()
    acked: list[str] = result["acked"]
    figures = {
        "ingest_msgs_per_s": len(acked) / result["elapsed"],
        "acked": len(acked),
        "refused": len(result["failed"]),
        "lost": sum(1 for message_id in acked if message_id not in counts),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "unprocessed": unprocessed,
        "ack_p50_ms": percentile(result["ms"], 50),
        "ack_p99_ms": percentile(result["ms"], 99),
        # Where the CPU went, per acknowledged message: the load-independent figures on a
        # machine shared with other work.
        "web_cpu_ms_per_msg": 1000 * web_cpu / max(1, len(acked)),
        "postgres_cpu_ms_per_msg": 1000 * postgres_cpu / max(1, len(acked)),
        "client_cpu_ms_per_msg": 1000 * client_cpu / max(1, len(acked)),
    }
    for name, value in figures.items():
        shown = f"{value:.1f}" if isinstance(value, float) and not math.isnan(value) else value
        print(f"{name}: {shown}")
    print(f"via: {args.via}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="of load")
    parser.add_argument("--connections", type=int, default=64, help="kept open at once")
    parser.add_argument("--patients", type=int, default=200, help="the messages' senders")
    parser.add_argument("--via", choices=("direct", "proxy"), default="direct")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the web replicas (<folder>/web1.prof)"
    )
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--targets", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
    else:
        bench_main(args)


if __name__ == "__main__":
    main()
