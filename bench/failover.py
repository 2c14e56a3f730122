"""Replicas killed under a steady conversation load: nothing lost, nothing answered twice,
nothing out of order.

    .venv/bin/python bench/failover.py [--patients 200] [--seconds 150] [--seed N]

The production topology on PostgreSQL + Redis (a throwaway database, the demo clinic seeded):
2 web replicas, 2 assistant replicas sharing the tracker store, 2 workers and an action
server, each started here as a process group of its own (like tests/clinic.py) so that it can
be SIGKILLed and started again; WhatsApp Cloud points at the local fake Graph API
(tests/channels/fake_provider.py). No proxy: the load generator is the provider, and sends
its signed webhooks round-robin straight to the web replicas — a POST that fails (its replica
was killed, or answered an error) is sent again to the next replica, with the same payload and
the same message id, as Meta redelivers.

Each patient is a new WhatsApp id whose conversation is a loop of "send a message, wait for
the bot's reply (or `TURN_TIMEOUT`), send the next". The messages cycle through questions each
answered by a custom action reading the clinic's data, with one message of its own kind (the
greeting, the address, the hours, ...), so every reply names the message it answers — its kind,
among the messages the patient had sent when it arrived.

Meanwhile one web replica, one assistant replica and one worker are SIGKILLed at random
moments (`--kills` of each kind, spread over the load; a seeded RNG, the seed printed first,
the schedule on stderr), each started again after a few seconds; a kind is not killed again
before its last victim answers again, nor once the load has ended (an assistant replica takes
a minute or two to load its model on a busy machine, so a short run may kill one only once).
Once the load stops, the bench waits (`--drain`) for late replies — the sweeps replay what a
dead replica left every 10 s, for messages recorded 20 s before — and stops at the first
quiet stretch after every message has its reply.

Prints `name: value` lines: `messages` (sent), `answered` (got their reply), `lost` (never
recorded, or recorded and never answered), `duplicated` (a reply beyond the one each message
gets), `reordered` (a reply arriving after the reply to a later message of the patient),
`unexpected` (a reply of no kind the patient asked for), `not_recorded` and `unprocessed`
(from the database: sent messages it lacks, recorded ones never marked processed),
`webhook_retries` (POSTs sent again), `webhooks_given_up`, `kills_web`, `kills_assistant`,
`kills_worker`, `timed_out` (turns the patient stopped waiting for and wrote the next
message), `reply_p50_s`, `reply_p99_s`, `reply_max_s` (from a message's first POST to its
reply), and `turns_per_s` (messages answered during the load / its seconds).
Goal: lost = duplicated = reordered = 0. The processes' logs stay in the temporary folder
named on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

from tests.channels.fake_provider import FakeProvider, ProviderRequest  # noqa: E402
from tests.channels.webhooks import channel_env, signed, text_message, webhook_path  # noqa: E402
from tests.clinic import (  # noqa: E402
    RunningClinic,
    answers_200,
    free_port,
    rasa_run,
    start_logged,
)
from tests.databases import PostgresDatabases, postgres_available  # noqa: E402

# (what the patient writes, how the bot's one reply to it begins): each answered by a custom
# action (action_saudacao, action_responder_faq) from the clinic's data; texts from the NLU
# training data, so that the kind of a reply says which of them it answers.
CONVERSATION = (
    ("oi", "Olá! 👋 Sou a assistente virtual"),
    ("qual o endereço da clínica?", "Estamos na "),
    ("qual o horário de funcionamento?", "Nosso horário:"),
    ("quais convênios vocês aceitam?", "Atendemos os convênios"),
    ("quanto custa a consulta?", "A consulta particular custa"),
    ("que documentos preciso levar?", "No dia da consulta, traga"),
)
TURN_TIMEOUT = 60.0  # then the patient writes the next message anyway
POST_TIMEOUT = aiohttp.ClientTimeout(total=30)
POST_ATTEMPTS = 60  # a webhook is redelivered this many times at most, a second apart
RESTART_AFTER = (2.0, 6.0)  # seconds a killed replica stays down
QUIET_SECONDS = 15.0  # the drain stops after this long without a reply, once all are in
START_TIMEOUT = 480.0
# A database of Redis of its own: the send-rate paces and limiter windows of other runs on
# this machine stay apart (pub/sub channels are server-wide, but only staff screens listen).
REDIS_URL = os.environ.get("FAILOVER_REDIS_URL", "redis://127.0.0.1:6379/7")


def wa_id(n: int) -> str:
    return f"5511966{n:06d}"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else math.nan


def kind_of(text: str) -> int | None:
    return next((k for k, (_, start) in enumerate(CONVERSATION) if text.startswith(start)), None)


# --- the processes -----------------------------------------------------------------------


@dataclass
class Replica:
    """One process of the topology, started (and started again) as a group of its own."""

    name: str
    command: list[str]
    env: dict[str, str]
    folder: Path
    ready_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        log = self.folder / f"{self.name}.{self.starts}.log"
        self.process = start_logged(self.command, self.env, log)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        return self.alive() and (self.ready_url is None or answers_200(self.ready_url))


@dataclass
class Topology:
    web: list[Replica]
    assistant: list[Replica]
    worker: list[Replica]
    actions: list[Replica]

    @property
    def all(self) -> list[Replica]:
        return [*self.actions, *self.assistant, *self.web, *self.worker]

    def wait_ready(self, replicas: list[Replica] | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        for replica in replicas or self.all:
            while not replica.ready():
                if time.monotonic() > deadline or not replica.alive():
                    raise RuntimeError(f"{replica.name} did not start: see {replica.folder}")
                time.sleep(1)


def topology(clinic: RunningClinic, folder: Path, web_urls: list[str]) -> Topology:
    settings = clinic.settings
    base = {**os.environ, **settings.child_env()}
    python = sys.executable

    def replica(name: str, command: list[str], ready: str | None, **env: str) -> Replica:
        return Replica(name, command, {**base, **env}, folder, ready)

    web = [
        replica(f"web{i}", [python, "-m", "processes.web"], f"{url}/healthz", WEB_URL=url)
        for i, url in enumerate(web_urls, 1)
    ]
    assistant = []
    for i, url in enumerate(settings.bot_urls, 1):
        port = int(url.rpartition(":")[2])
        assistant.append(replica(f"assistant{i}", rasa_run(port), f"{url}/"))
    actions_health = settings.action_server_url.removesuffix("/webhook") + "/health"
    actions = [replica("actions1", [python, "-m", "processes.actions"], actions_health)]
    workers = [replica(f"worker{i}", [python, "-m", "processes.worker"], None) for i in (1, 2)]
    return Topology(web, assistant, workers, actions)


# --- the load ----------------------------------------------------------------------------


@dataclass
class Patient:
    phone: str
    sent: list[int] = field(default_factory=list)  # kinds, in the order sent
    sent_at: list[float] = field(default_factory=list)  # when each was first POSTed (epoch)
    message_ids: list[str] = field(default_factory=list)
    # (kind, how many messages the patient had sent, when it arrived), in arrival order
    replies: list[tuple[int | None, int, float]] = field(default_factory=list)
    waiting: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Load:
    web_urls: list[str]
    patients: dict[str, Patient]
    message_ids: list[str] = field(default_factory=list)
    retries: int = 0
    failed_posts: int = 0
    timed_out: int = 0
    answered_during_load: int = 0
    _next_replica: int = 0

    def on_reply(self, request: ProviderRequest) -> None:
        """On the load's loop: a message the clinic sent a patient through the fake API."""
        patient = self.patients.get(request.recipient or "")
        if patient is None:
            return
        patient.replies.append((kind_of(request.text), len(patient.sent), time.time()))
        patient.waiting.set()

    async def deliver(self, http: aiohttp.ClientSession, payload: Any) -> bool:
        """POST the webhook until a replica acknowledges it, round-robin over the replicas."""
        body, headers = signed("whatsapp", payload)
        for attempt in range(POST_ATTEMPTS):
            url = self.web_urls[self._next_replica % len(self.web_urls)]
            self._next_replica += 1
            if attempt:
                self.retries += 1
            try:
                async with http.post(
                    f"{url}{webhook_path('whatsapp')}", data=body, headers=headers
                ) as response:
                    await response.read()
                    if response.status == 200:
                        return True
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(1.0 if attempt else 0.1)
        self.failed_posts += 1
        return False

    async def conversation(
        self, http: aiohttp.ClientSession, patient: Patient, start_in: float, deadline: float
    ) -> None:
        await asyncio.sleep(start_in)
        turn = 0
        while time.monotonic() < deadline:
            kind = turn % len(CONVERSATION)
            message_id = f"wamid.failover{patient.phone}{turn:04d}"
            payload = text_message("whatsapp", patient.phone, CONVERSATION[kind][0], message_id)
            patient.waiting.clear()
            patient.sent.append(kind)
            patient.sent_at.append(time.time())
            patient.message_ids.append(message_id)
            self.message_ids.append(message_id)
            replies_before = len(patient.replies)
            if not await self.deliver(http, payload):
                break
            try:
                async with asyncio.timeout(TURN_TIMEOUT):
                    while len(patient.replies) == replies_before:
                        await patient.waiting.wait()
                        patient.waiting.clear()
            except TimeoutError:
                self.timed_out += 1
            turn += 1


# --- the faults --------------------------------------------------------------------------


@dataclass
class Fault:
    at: float  # seconds after the load starts
    kind: str
    victim: int
    down_for: float


def schedule(rng: random.Random, start: float, end: float, kills: int) -> list[Fault]:
    """`kills` faults per kind of process between `start` and `end` seconds into the load,
    one at a random moment of each of `kills` equal slots, so that they spread over it."""
    faults = []
    slot = (end - start) / kills
    for kind in ("web", "assistant", "worker"):
        for n in range(kills):
            at = rng.uniform(start + n * slot, start + (n + 1) * slot)
            faults.append(Fault(at, kind, rng.randrange(2), rng.uniform(*RESTART_AFTER)))
    return sorted(faults, key=lambda fault: fault.at)


async def inflict(
    topology: Topology, faults: list[Fault], began: float, load_ends: float
) -> dict[str, int]:
    """Kill and restart as scheduled, one kind's faults one after another: a kind's next
    victim is killed only once its last one answers again (an assistant replica takes
    minutes to load its model on a busy machine), and not after the load ended. Returns
    how many of each kind were killed."""

    async def one_kind(kind_faults: list[Fault]) -> int:
        killed = 0
        for fault in kind_faults:
            await asyncio.sleep(max(0.0, began + fault.at - time.monotonic()))
            if time.monotonic() >= load_ends:
                print(f"skipped {fault.kind} fault: the load has ended", file=sys.stderr)
                continue
            replica = getattr(topology, fault.kind)[fault.victim]
            replica.kill()
            killed += 1
            print(f"{time.monotonic() - began:6.1f}s SIGKILL {replica.name}", file=sys.stderr)
            await asyncio.sleep(fault.down_for)
            replica.start()
            await asyncio.to_thread(topology.wait_ready, [replica])
            print(f"{time.monotonic() - began:6.1f}s {replica.name} back", file=sys.stderr)
        return killed

    by_kind: dict[str, list[Fault]] = defaultdict(list)
    for fault in faults:
        by_kind[fault.kind].append(fault)
    killed = await asyncio.gather(*(one_kind(each) for each in by_kind.values()))
    return dict(zip(by_kind, killed, strict=True))


# --- the count ---------------------------------------------------------------------------


def judge(patient: Patient) -> tuple[dict[str, int], list[tuple[float, str]]]:
    """Each reply answers the oldest message of its kind, among those sent when it arrived,
    not answered yet; with none left, it is a duplicate. Also the seconds each answered
    message waited for its reply, with its id."""
    answered = [False] * len(patient.sent)
    order: list[int] = []
    counts = dict.fromkeys(("answered", "duplicated", "reordered", "unexpected"), 0)
    waited = []
    for kind, sent_so_far, arrived in patient.replies:
        if kind is None:
            counts["unexpected"] += 1
            continue
        asked = [i for i in range(sent_so_far) if patient.sent[i] == kind]
        if not asked:
            counts["unexpected"] += 1
            continue
        waiting = [i for i in asked if not answered[i]]
        if not waiting:
            counts["duplicated"] += 1
            continue
        answered[waiting[0]] = True
        waited.append((arrived - patient.sent_at[waiting[0]], patient.message_ids[waiting[0]]))
        if order and waiting[0] < max(order):
            counts["reordered"] += 1
        order.append(waiting[0])
    counts["answered"] = sum(answered)
    counts["lost"] = len(answered) - sum(answered)
    return counts, waited


def database_check(database_url: str, message_ids: list[str]) -> dict[str, int]:
    """Sent messages the database lacks, and recorded ones never marked processed."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT provider_message_id, processed_at IS NOT NULL FROM messages"
            " WHERE direction = 'in' AND provider_message_id = ANY(%s)",
            (message_ids,),
        ).fetchall()
    return {
        "not_recorded": len(set(message_ids)) - len(rows),
        "unprocessed": sum(1 for _, processed in rows if not processed),
    }


def slowest(
    database_url: str, waits: list[tuple[float, str]], patients: dict[str, Patient], epoch: float
) -> None:
    """Where the slowest replies spent their time, on stderr: from the message's first POST,
    when it was recorded and when it was marked processed (its replies recorded)."""
    first_post = {
        message_id: at
        for patient in patients.values()
        for message_id, at in zip(patient.message_ids, patient.sent_at, strict=True)
    }
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        for wait, message_id in waits:
            recorded, processed = connection.execute(
                "SELECT extract(epoch FROM recorded_at), extract(epoch FROM processed_at)"
                " FROM messages WHERE direction = 'in' AND provider_message_id = %s",
                (message_id,),
            ).fetchone() or (None, None)
            posted = first_post[message_id]
            print(
                f"slow: {wait:5.1f}s, posted at {posted - epoch:5.1f}s, recorded"
                f" +{float(recorded or posted) - posted:4.1f}s, processed"
                f" +{float(processed or posted) - posted:5.1f}s",
                file=sys.stderr,
            )


# --- running it --------------------------------------------------------------------------


async def run(
    args: argparse.Namespace,
    clinic: RunningClinic,
    provider: FakeProvider,
    topo: Topology,
    web_urls: list[str],
) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    patients = {wa_id(n): Patient(wa_id(n)) for n in range(args.patients)}
    load = Load(web_urls, patients)

    async def hook(request: ProviderRequest, _answer: Any) -> None:
        if request.method == "POST" and request.path.endswith("/messages"):
            loop.call_soon_threadsafe(load.on_reply, request)

    provider.before_answer(hook)
    rng = random.Random(args.seed)
    ramp = min(10.0, args.seconds / 10)  # patients start within this, then it is steady
    faults = schedule(rng, ramp, 0.85 * args.seconds, args.kills)
    for fault in faults:
        print(
            f"fault at {fault.at:.1f}s: {fault.kind}{fault.victim + 1} down {fault.down_for:.1f}s",
            file=sys.stderr,
        )
    connector = aiohttp.TCPConnector(limit=args.patients + 10)
    async with aiohttp.ClientSession(connector=connector, timeout=POST_TIMEOUT) as http:
        began, epoch = time.monotonic(), time.time()
        deadline = began + args.seconds
        conversations = [
            load.conversation(http, patient, rng.uniform(0, ramp), deadline)
            for patient in patients.values()
        ]
        killing = asyncio.ensure_future(inflict(topo, faults, began, deadline))
        await asyncio.gather(*conversations)
        load_seconds = time.monotonic() - began
        answered_in_load = sum(judge(p)[0]["answered"] for p in patients.values())
        kills = await killing
        await drain(patients, args.drain)
    figures: dict[str, float] = defaultdict(float)
    waits: list[tuple[float, str]] = []
    for patient in patients.values():
        counts, waited = judge(patient)
        waits += waited
        for name, value in counts.items():
            figures[name] += value
    result: dict[str, float] = {"messages": len(load.message_ids)}
    result.update({k: figures[k] for k in ("answered", "lost", "duplicated", "reordered")})
    result["unexpected"] = figures["unexpected"]
    result.update(database_check(clinic.settings.database_url, load.message_ids))
    result["webhook_retries"] = load.retries
    result["webhooks_given_up"] = load.failed_posts
    result.update({f"kills_{kind}": count for kind, count in kills.items()})
    result["timed_out"] = load.timed_out
    seconds = [wait for wait, _ in waits]
    result["reply_p50_s"] = percentile(seconds, 50)
    result["reply_p99_s"] = percentile(seconds, 99)
    result["reply_max_s"] = max(seconds, default=math.nan)
    slowest(clinic.settings.database_url, sorted(waits, reverse=True)[:8], patients, epoch)
    result["turns_per_s"] = answered_in_load / load_seconds
    return result


async def drain(patients: dict[str, Patient], longest: float) -> None:
    """Wait for late replies: until every message has one and nothing came for a while, or
    `longest` seconds."""
    deadline = time.monotonic() + longest
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = sum(len(p.replies) for p in patients.values())
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        complete = all(judge(p)[0]["lost"] == 0 for p in patients.values())
        if complete and time.monotonic() - last_change > QUIET_SECONDS:
            return
        await asyncio.sleep(1)


def whatsapp_env(provider: FakeProvider) -> dict[str, str]:
    """WhatsApp only, against the fake Graph API: the other channels stay off."""
    return {
        name: value
        for name, value in channel_env(provider.url, "", "").items()
        if name.startswith(("WHATSAPP_", "META_"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=150.0, help="how long the load runs")
    parser.add_argument("--kills", type=int, default=2, help="kills of each kind of process")
    parser.add_argument("--drain", type=float, default=120.0, help="longest wait for replies")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    if (reason := postgres_available()) is not None:
        raise SystemExit(f"the failover bench needs PostgreSQL: {reason}")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"the failover bench needs Redis at {REDIS_URL}: {exc}") from exc
    print(f"seed: {args.seed}")
    folder = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    print(f"logs in {folder}", file=sys.stderr)
    provider = FakeProvider()
    provider.start()
    databases = PostgresDatabases()
    topo: Topology | None = None
    try:
        databases.prepare_template()
        bot_urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
        web_urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
        env = {**whatsapp_env(provider), "REDIS_URL": REDIS_URL, "BOT_URL": ",".join(bot_urls)}
        clinic = RunningClinic.prepare(folder, databases.create(), env)
        topo = topology(clinic, folder, web_urls)
        for replica in topo.all:
            replica.start()
        topo.wait_ready()
        figures = asyncio.run(run(args, clinic, provider, topo, web_urls))
    finally:
        if topo is not None:
            for replica in topo.all:
                replica.stop()
        provider.stop()
        databases.drop_all()
    for name, value in figures.items():
        shown = f"{value:.2f}" if name.endswith(("_s", "per_s")) else f"{value:.0f}"
        print(f"{name}: {shown}")


if __name__ == "__main__":
    main()
