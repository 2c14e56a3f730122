"""What the platform costs a bot turn: the whole clinic answering WhatsApp webhooks, against a
bare `rasa run` answering its REST channel, both with the same model, endpoints file, action
server and kind of tracker store.

    .venv/bin/python bench/turns.py [--pairs 100] [--turns 6]

Starts the whole clinic from the Procfile (as `make run` does) on a throwaway SQLite database
and free ports, with WhatsApp Cloud pointed at a local fake Graph API, and beside it a bare
`.venv-rasa/bin/rasa run` of `var/rasa/bot.tar.gz` whose only channel is `rest:` (its own
SQLite tracker file, the clinic's action server). Every message is one the bot answers from a
custom action that reads the clinic's data (a greeting, the address, the opening hours), so
both sides call the action server. Senders are WhatsApp ids of new patients, spread so that
trackers stay short; bare Rasa gets the same ids as its senders.

- Latency: one message at a time, alternating the sides: a signed WhatsApp webhook, timed
  from its POST until the fake Graph API receives the reply; then the same text to bare Rasa's
  `POST /webhooks/rest/webhook`, timed until its HTTP answer. Both warmed up first.
- Throughput: 10, then 50 conversations at once, each a loop of "send, wait for the reply,
  send the next" for `--turns` turns; turns/s = turns answered / wall time. The clinic
  first, then bare Rasa, with the same senders and texts.

Prints `name: value` lines: `turn_p50_ms`, `turn_p99_ms` (clinic), `bare_p50_ms`,
`bare_p99_ms`, `turn_p50_ratio` (clinic / bare: what the platform adds; 1.0 is free),
`web_cpu_ms_per_turn` (the CPU time the clinic's web process spent per latency turn: recording,
routing, answering, delivering; the figure that moves least with the machine's load),
`turns_per_s_10`, `bare_turns_per_s_10`, `turns_per_s_ratio_10` (clinic / bare: the share
of Rasa's throughput the platform keeps), the same for 50, and `lost`, `duplicated` (webhook
turns that got no reply, or more than one).

Goals: turn_p50_ratio ≤ 1.2 and turns_per_s_ratio_50 ≥ 0.85; lost = duplicated = 0.

Read the ratios rather than the milliseconds: both sides share the machine (on 2 cores the
clinic's web process competes with its assistant for CPU), so absolute figures move with
whatever else runs, the ratios much less. The logs (clinic.log, bare-rasa.log) stay in the
temporary folder named on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.channels.fake_provider import FakeProvider, ProviderRequest  # noqa: E402
from tests.channels.webhooks import channel_env, signed, text_message, webhook_path  # noqa: E402
from tests.clinic import (  # noqa: E402
    RunningClinic,
    answers_200,
    free_port,
    rasa_run,
    start_logged,
    stop_group,
)

# Each answered by a custom action reading the clinic's data (action_saudacao,
# action_responder_faq), with one message.
TEXTS = ("qual o endereço da clínica?", "oi", "qual o horário de funcionamento?")
WARM_UP = 10
SENDERS = 40  # latency pairs are spread over this many patients
PAUSE_SECONDS = 0.05  # between latency turns: the previous turn's tail work settles
TURN_TIMEOUT = 30.0  # a reply later than this counts as lost
PHASE_SECONDS = 240.0  # each run (warm-up, latency, throughput) stops starting turns after this
SETTLE_SECONDS = 3.0  # late or duplicate replies are counted after this much quiet
BARE_START_TIMEOUT = 480.0

Turn = Callable[[str, str], Awaitable[float | None]]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def web_pid(clinic: RunningClinic) -> int:
    """The clinic's web process: the Python running processes.web under its supervisor."""
    assert clinic.process is not None
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            pid = int(cmdline.parent.name)
            arguments = cmdline.read_bytes().split(b"\0")
            if arguments[1:3] == [b"-m", b"processes.web"] and _descends(pid, clinic.process.pid):
                return pid
        except (OSError, ValueError):
            continue  # ended meanwhile
    raise RuntimeError("the clinic's web process is not running")


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        if pid == ancestor:
            return True
    return False


def wa_id(n: int) -> str:
    """A new patient's WhatsApp id (and bare Rasa's sender id)."""
    return f"5511977{n:06d}"


def text_for(n: int) -> str:
    return TEXTS[n % len(TEXTS)]


# --- bare Rasa -------------------------------------------------------------------------------


@dataclass
class BareRasa:
    """`rasa run` with the REST channel only, as the clinic's assistant runs otherwise."""

    folder: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / "bare-rasa.log"

    def start(self) -> None:
        credentials = self.folder / "bare-credentials.yml"
        credentials.write_text("rest:\n")
        self.process = start_logged(rasa_run(self.port, credentials), self.env, self.log_path)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + BARE_START_TIMEOUT
        while not answers_200(f"{self.url}/"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace").splitlines()[-40:]
                raise RuntimeError("bare Rasa did not start; log:\n" + "\n".join(tail))
            time.sleep(1)

    def stop(self) -> None:
        stop_group(self.process)


def bare_env(clinic: RunningClinic, folder: Path) -> dict[str, str]:
    """The clinic's assistant environment (action server URL and token, SQL pool sizes,
    telemetry off), with a tracker store of its own."""
    return {
        **os.environ,
        **clinic.settings.child_env(),
        "RASA_TRACKER_URL": f"sqlite:///{folder / 'bare-rasa.db'}",
    }


class ReplyWatch:
    """Counts the messages the clinic sent each WhatsApp id through the fake Graph API, and
    wakes whoever waits for the next one with the moment it arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.counts: Counter[str] = Counter()
        self._waiting: dict[str, list[tuple[int, asyncio.Future]]] = defaultdict(list)

    async def hook(self, request: ProviderRequest, _answer: Any) -> None:
        """Runs on the fake provider's own thread, for every request it gets."""
        if request.method == "POST" and request.path.endswith("/messages"):
            recipient = request.recipient
            if recipient:
                arrived = time.perf_counter()
                self._loop.call_soon_threadsafe(self._arrived, recipient, arrived)

    def next_reply(self, recipient: str) -> asyncio.Future:
        """Resolves with the arrival time of the next message to `recipient`."""
        future = self._loop.create_future()
        self._waiting[recipient].append((self.counts[recipient] + 1, future))
        return future

    def _arrived(self, recipient: str, arrived: float) -> None:
        self.counts[recipient] += 1
        pending = []
        for target, future in self._waiting.pop(recipient, []):
            if future.done():
                continue
            if self.counts[recipient] >= target:
                future.set_result(arrived)
            else:
                pending.append((target, future))
        if pending:
            self._waiting[recipient] = pending


# --- one turn on each side -------------------------------------------------------------------


@dataclass
class Sides:
    """How one turn is sent to the clinic (a webhook) and to bare Rasa (REST), timed."""

    http: aiohttp.ClientSession
    clinic_url: str
    bare_url: str
    replies: ReplyWatch
    sent: Counter[str] = field(default_factory=Counter)
    bare_failed: int = 0

    async def clinic(self, sender: str, text: str) -> float | None:
        """Milliseconds from the webhook POST until the reply reached the provider."""
        body, headers = signed("whatsapp", text_message("whatsapp", sender, text))
        reply = self.replies.next_reply(sender)
        started = time.perf_counter()
        async with self.http.post(self.clinic_url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}")
        self.sent[sender] += 1
        try:
            arrived = await asyncio.wait_for(reply, TURN_TIMEOUT)
        except TimeoutError:
            return None
        return (arrived - started) * 1000

    async def bare(self, sender: str, text: str) -> float | None:
        """Milliseconds from the REST POST until its answer."""
        started = time.perf_counter()
        try:
            async with self.http.post(
                self.bare_url, json={"sender": sender, "message": text}
            ) as response:
                answer = await response.json()
                ok = response.status == 200 and len(answer) == 1
        except (TimeoutError, aiohttp.ClientError, ValueError):
            ok = False
        elapsed = (time.perf_counter() - started) * 1000
        if not ok:
            self.bare_failed += 1
            return None
        return elapsed


# --- measurements ----------------------------------------------------------------------------


async def warm_up(sides: Sides) -> None:
    deadline = time.monotonic() + PHASE_SECONDS
    for n in range(WARM_UP):
        if time.monotonic() > deadline:
            break
        await sides.clinic(wa_id(900_000 + n), text_for(n))
        await sides.bare(wa_id(900_000 + n), text_for(n))


async def latency(sides: Sides, pairs: int) -> tuple[list[float], list[float]]:
    """One turn on each side at a time, alternating; spread over SENDERS new patients."""
    clinic, bare = [], []
    deadline = time.monotonic() + PHASE_SECONDS
    for n in range(pairs):
        if time.monotonic() > deadline:
            break
        sender, text = wa_id(n % SENDERS), text_for(n // SENDERS)
        for side, samples in ((sides.clinic, clinic), (sides.bare, bare)):
            elapsed = await side(sender, text)
            if elapsed is not None:
                samples.append(elapsed)
            await asyncio.sleep(PAUSE_SECONDS)
    return clinic, bare


async def conversation(turn: Turn, sender: str, turns: int, deadline: float) -> int:
    """Send, wait for the reply, send the next; the number of turns answered."""
    answered = 0
    for n in range(turns):
        if time.monotonic() > deadline:
            break
        if await turn(sender, text_for(n)) is not None:
            answered += 1
    return answered


async def throughput(turn: Turn, senders: list[str], turns: int) -> float:
    """Turns answered per second with every sender's conversation running at once."""
    deadline = time.monotonic() + PHASE_SECONDS
    started = time.perf_counter()
    answered = await asyncio.gather(*(conversation(turn, s, turns, deadline) for s in senders))
    return sum(answered) / (time.perf_counter() - started)


async def measure(
    clinic: RunningClinic, bare: BareRasa, provider: FakeProvider, args: argparse.Namespace
) -> dict[str, float]:
    replies = ReplyWatch(asyncio.get_running_loop())
    provider.before_answer(replies.hook)
    connector = aiohttp.TCPConnector(limit=200)
    timeout = aiohttp.ClientTimeout(total=TURN_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        sides = Sides(
            http,
            f"{clinic.settings.web_url}{webhook_path('whatsapp')}",
            f"{bare.url}/webhooks/rest/webhook",
            replies,
        )
        await warm_up(sides)
        web = web_pid(clinic)
        web_before = cpu_seconds(web)
        turn_ms, bare_ms = await latency(sides, args.pairs)
        figures = _latency_figures(turn_ms, bare_ms)
        # What the platform's web process spends per turn, whatever else loads the machine.
        figures["web_cpu_ms_per_turn"] = (cpu_seconds(web) - web_before) * 1000 / len(turn_ms)
        for load, first in ((10, 100_000), (50, 200_000)):
            senders = [wa_id(first + n) for n in range(load)]
            on_clinic = await throughput(sides.clinic, senders, args.turns)
            on_bare = await throughput(sides.bare, senders, args.turns)
            figures[f"turns_per_s_{load}"] = on_clinic
            figures[f"bare_turns_per_s_{load}"] = on_bare
            figures[f"turns_per_s_ratio_{load}"] = on_clinic / on_bare
        await asyncio.sleep(SETTLE_SECONDS)
        figures.update(_reply_check(sides))
    return figures


def _latency_figures(turn_ms: list[float], bare_ms: list[float]) -> dict[str, float]:
    figures = {
        "turn_p50_ms": percentile(turn_ms, 50),
        "turn_p99_ms": percentile(turn_ms, 99),
        "bare_p50_ms": percentile(bare_ms, 50),
        "bare_p99_ms": percentile(bare_ms, 99),
    }
    figures["turn_p50_ratio"] = figures["turn_p50_ms"] / figures["bare_p50_ms"]
    return figures


def _reply_check(sides: Sides) -> dict[str, float]:
    """Every webhook turn must have got exactly one reply."""
    counts = sides.replies.counts
    senders = set(sides.sent) | set(counts)
    return {
        "webhook_turns": sum(sides.sent.values()),
        "lost": sum(max(0, sides.sent[s] - counts[s]) for s in senders),
        "duplicated": sum(max(0, counts[s] - sides.sent[s]) for s in senders),
        "bare_failed": sides.bare_failed,
    }


# --- running it ------------------------------------------------------------------------------


def whatsapp_env(provider: FakeProvider) -> dict[str, str]:
    """WhatsApp only, against the fake Graph API: the other channels stay off."""
    return {
        name: value
        for name, value in channel_env(provider.url, "", "").items()
        if name.startswith(("WHATSAPP_", "META_"))
    }


def report(figures: dict[str, float], seconds: float) -> None:
    for name, value in figures.items():
        if "ratio" in name or "per_s" in name:
            shown = f"{value:.2f}"
        else:
            shown = f"{value:.1f}" if "cpu" in name else f"{value:.0f}"
        print(f"{name}: {shown}")
    print(f"bench_seconds: {seconds:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="latency pairs (clinic + bare)")
    parser.add_argument("--turns", type=int, default=6, help="turns per throughput conversation")
    args = parser.parse_args()
    began = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="bench-turns-"))
    print(f"logs in {folder}", file=sys.stderr)
    provider = FakeProvider()
    provider.start()
    clinic = bare = None
    try:
        clinic = RunningClinic.prepare(
            folder, f"sqlite:///{folder / 'clinic.db'}", whatsapp_env(provider)
        )
        bare = BareRasa(folder, bare_env(clinic, folder))
        bare.start()  # loads its model while the clinic starts
        clinic.start()
        bare.wait_ready()
        figures = asyncio.run(measure(clinic, bare, provider, args))
    finally:
        if clinic is not None:
            clinic.stop()
        if bare is not None:
            bare.stop()
        provider.stop()
    report(figures, time.monotonic() - began)


if __name__ == "__main__":
    main()
