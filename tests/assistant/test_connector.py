"""The assistant's one door (bot/channels/platform.py), served by the real `rasa run` from
.venv-rasa with the trained model, calling the real action server (processes/actions.py) on a
throwaway clinic database: only the platform, with the shared secret, gets turns; answers come
one entry per bot message; a replayed message is answered from the tracker, not run again;
the hand-back resumes the bot, which speaks first; Rasa's HTTP API is not served."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from core.settings import ROOT, Settings
from handoff.transitions.resolution import HAND_BACK_INTENT
from models import PatientProfile, Role, User
from models.db import Database
from models.migrate import upgrade
from scripts.demo_clinic import seed_demo_clinic
from tests.clinic import (
    MODEL,
    STAFF_PASSWORD,
    START_TIMEOUT,
    answers_200,
    free_port,
    rasa_run,
    start_logged,
    stop_group,
)

pytestmark = pytest.mark.integration

RASA_TOKEN = "connector-test-rasa-token"
ACTION_SERVER_TOKEN = "connector-test-action-token"
CLINIC_NAME = "Clínica Vida Plena"  # scripts/demo_clinic.py
# A text that must reach neither log.
MARKER = "zebra-azul-77"
_ids = count(1)


@dataclass
class Assistant:
    url: str
    tracker_db: Path
    rasa_log: Path
    actions_log: Path
    patients: list[int]

    def patient(self) -> str:
        """A patient of the clinic no other test talks as."""
        return str(self.patients.pop())

    def events(self, sender: str) -> list[tuple[str, dict[str, Any]]]:
        """The sender's tracker as Rasa stored it: (event type, event) in order."""
        with sqlite3.connect(self.tracker_db) as connection:
            rows = connection.execute(
                "SELECT type_name, data FROM events WHERE sender_id = ? ORDER BY id", (sender,)
            ).fetchall()
        return [(kind, json.loads(data)) for kind, data in rows]


def call(
    assistant: Assistant, path: str, body: Any, secret: str | None = RASA_TOKEN
) -> tuple[int, Any]:
    """POST to the assistant; (status, JSON answer or None when the answer is not JSON)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{assistant.url}{path}", data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    if secret is not None:
        request.add_header("Authorization", f"Bearer {secret}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def turn(assistant: Assistant, sender: str, text: str, **fields: Any) -> tuple[int, Any]:
    body = {
        "sender": sender,
        "message_id": fields.pop("message_id", f"m-{next(_ids)}"),
        "text": text,
        "channel": "whatsapp",
        "metadata": {"conversation_id": 1},
        **fields,
    }
    return call(assistant, "/webhooks/platform/turn", body)


def hand_back(assistant: Assistant, sender: str, **fields: Any) -> tuple[int, Any]:
    body = {"sender": sender, "intent": HAND_BACK_INTENT, "channel": "webchat", **fields}
    return call(assistant, "/webhooks/platform/hand_back", body)


async def _seed(database_url: str, patients: int) -> list[int]:
    db = Database(database_url)
    try:
        await seed_demo_clinic(db, password=STAFF_PASSWORD, attendant_capacity=20)
        async with db.session() as session:
            users = [User(role=Role.PATIENT, name=f"Paciente {n}") for n in range(patients)]
            for user in users:
                user.patient_profile = PatientProfile(preferred_channel="whatsapp")
            session.add_all(users)
            await session.flush()
            return [user.id for user in users]
    finally:
        await db.dispose()


def _environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.child_env()}


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    """`rasa run` and the action server, started once for the module (Rasa loads its model
    in tens of seconds)."""
    if not MODEL.exists():
        raise RuntimeError(f"{MODEL} is missing: run `make train` (make test does it)")
    folder = tmp_path_factory.mktemp("assistant")
    bot_port, actions_port = free_port(), free_port()
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"sqlite:///{folder / 'clinic.db'}",
            "BOT_URL": f"http://127.0.0.1:{bot_port}",
            "ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}/webhook",
            "INTERNAL_TOKEN": "connector-test-internal-token",
            "SESSION_SECRET": "connector-test-session-secret",
            "RASA_TOKEN": RASA_TOKEN,
            "ACTION_SERVER_TOKEN": ACTION_SERVER_TOKEN,
        }
    )
    upgrade(settings.database_url)
    patients = asyncio.run(_seed(settings.database_url, 20))
    env = _environment(settings)
    running = Assistant(
        url=settings.bot_url,
        tracker_db=Path(settings.rasa_tracker_url.removeprefix("sqlite:///")),
        rasa_log=folder / "rasa.log",
        actions_log=folder / "actions.log",
        patients=patients,
    )
    actions = start_logged([sys.executable, "-m", "processes.actions"], env, running.actions_log)
    rasa = start_logged(rasa_run(bot_port), env, running.rasa_log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        health = settings.action_server_url.removesuffix("/webhook") + "/health"
        while not (answers_200(health) and answers_200(f"{settings.bot_url}/")):
            if rasa.poll() is not None or actions.poll() is not None or time.monotonic() > deadline:
                logs = running.rasa_log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the assistant did not start; its log:\n{logs}")
            time.sleep(1)
        yield running
    finally:
        stop_group(rasa)
        stop_group(actions)


@pytest.mark.parametrize("secret", [None, "", "wrong", f"{RASA_TOKEN}x", RASA_TOKEN[:-1]], ids=repr)
def test_a_turn_without_the_secret_is_refused(assistant, secret):
    sender = assistant.patient()
    body = {"sender": sender, "message_id": "x-1", "text": "oi", "channel": "whatsapp"}

    status, answer = call(assistant, "/webhooks/platform/turn", body, secret)

    assert (status, answer) == (401, {"error": "unauthorized"})
    assert assistant.events(sender) == []


def test_a_hand_back_without_the_secret_is_refused(assistant):
    sender = assistant.patient()
    body = {"sender": sender, "intent": HAND_BACK_INTENT, "channel": "webchat"}

    status, answer = call(assistant, "/webhooks/platform/hand_back", body, "wrong")

    assert (status, answer) == (401, {"error": "unauthorized"})
    assert assistant.events(sender) == []


def test_a_greeting_is_answered_by_the_action_server_with_the_clinic_name(assistant):
    status, answer = turn(assistant, assistant.patient(), "oi")

    assert status == 200
    [greeting] = answer["messages"]
    # action_saudacao reads the name from the clinic database: the action server ran it,
    # so Rasa sent the action server's secret.
    assert CLINIC_NAME in greeting["text"]
    assert " 401 " not in assistant.actions_log.read_text()


def test_a_replayed_message_is_answered_from_the_tracker_not_run_again(assistant):
    sender = assistant.patient()
    first = turn(assistant, sender, "oi", message_id="wa-1")

    again = turn(assistant, sender, "oi", message_id="wa-1", replay=True)

    assert first[0] == again[0] == 200
    assert again[1] == first[1] and first[1]["messages"]
    events = assistant.events(sender)
    assert [e.get("message_id") for kind, e in events if kind == "user"] == ["wa-1"]
    assert [e["name"] for kind, e in events if kind == "action"].count("action_saudacao") == 1


def test_a_replayed_message_the_assistant_never_took_in_is_run(assistant):
    sender = assistant.patient()

    status, answer = turn(assistant, sender, "oi", message_id="wa-2", replay=True)

    assert status == 200
    assert CLINIC_NAME in answer["messages"][0]["text"]
    events = assistant.events(sender)
    assert [e.get("message_id") for kind, e in events if kind == "user"] == ["wa-2"]


def test_a_text_comes_with_its_options_in_one_message(assistant):
    # "Não entendi" answers with options; Rasa's REST channel would split them apart.
    status, answer = turn(assistant, assistant.patient(), "")

    assert status == 200
    [not_understood] = answer["messages"]
    assert not_understood["text"]
    assert {"title", "payload"} <= set(not_understood["buttons"][0])
    assert set(not_understood) == {"text", "buttons"}


def test_paused_by_a_handoff_then_handed_back_the_bot_speaks_first(assistant):
    sender = assistant.patient()

    status, handoff = turn(assistant, sender, "/falar_com_atendente")
    assert status == 200
    [transferring, request] = handoff["messages"]
    assert set(transferring) == {"text"}
    assert request == {
        "custom": {"handoff": {"reason": "pedido_do_paciente", "priority": "normal"}}
    }
    # Paused: the bot stays quiet while the team has the patient.
    assert turn(assistant, sender, "oi") == (200, {"messages": []})

    status, back = hand_back(assistant, sender)

    assert status == 200
    [closing] = back["messages"]
    assert "encerrado" in closing["text"]
    assert [b["title"] for b in closing["buttons"]] == ["1", "2", "3", "4", "5"]
    events = assistant.events(sender)
    kinds = [kind for kind, _ in events]
    resumed = kinds.index("resume")
    assert (kinds[resumed + 1], events[resumed + 1][1]["name"]) == ("action", "action_listen")
    external = next(e for kind, e in events[resumed:] if kind == "user")
    assert (external["parse_data"]["intent"]["name"], external["input_channel"]) == (
        HAND_BACK_INTENT,
        "webchat",
    )
    # The next turn matches its rule again (the hand-back listened before the intent).
    status, rated = turn(assistant, sender, '/avaliar{"nota":"5"}', channel="webchat")
    assert status == 200
    [thanks] = rated["messages"]
    assert "avaliar" in thanks["text"] and "custom" not in thanks


@pytest.mark.parametrize("intent", ["saudacao", "EXTERNAL_nao_existe", ""])
def test_a_hand_back_triggers_only_external_intents_of_the_domain(assistant, intent):
    sender = assistant.patient()

    status, answer = hand_back(assistant, sender, intent=intent)

    assert status == 400
    assert set(answer) == {"error"}
    assert assistant.events(sender) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("turn", b"not json"),
        ("turn", b"[]"),
        ("turn", {"sender": "1", "text": "oi", "channel": "whatsapp"}),
        ("turn", {"sender": "1", "message_id": "m", "text": None, "channel": "whatsapp"}),
        ("turn", {"sender": "", "message_id": "m", "text": "oi", "channel": "whatsapp"}),
        (
            "turn",
            {"sender": "1", "message_id": "m", "text": "oi", "channel": "whatsapp", "metadata": []},
        ),
        (
            "turn",
            {
                "sender": "1",
                "message_id": "m",
                "text": "oi",
                "channel": "whatsapp",
                "replay": "yes",
            },
        ),
        ("hand_back", {"sender": "1", "intent": HAND_BACK_INTENT}),
        ("hand_back", b"{"),
    ],
)
def test_a_malformed_body_is_a_bad_request_that_echoes_nothing(assistant, path, body):
    status, answer = call(assistant, f"/webhooks/platform/{path}", body)

    assert status == 400
    assert set(answer) == {"error"}
    assert "oi" not in answer["error"] and "not json" not in answer["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/webhooks/rest/webhook"),
        ("GET", "/conversations/1/tracker"),
        ("POST", "/conversations/1/tracker/events"),
        ("POST", "/conversations/1/trigger_intent"),
        ("POST", "/model/parse"),
        ("GET", "/status"),
        ("GET", "/webhooks/platform/turn"),
    ],
)
def test_rasas_http_api_and_other_channels_are_not_served(assistant, method, path):
    request = urllib.request.Request(
        f"{assistant.url}{path}?token={RASA_TOKEN}", data=b"{}" if method == "POST" else None
    )
    request.method = method
    request.add_header("Authorization", f"Bearer {RASA_TOKEN}")

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)

    assert refused.value.code in (404, 405)


def test_message_texts_reach_no_log(assistant):
    status, _ = turn(assistant, assistant.patient(), f"quero saber {MARKER} o horário")

    assert status == 200
    time.sleep(1)  # the processes write their logs on their own
    assert MARKER not in assistant.rasa_log.read_text(errors="replace")
    assert MARKER not in assistant.actions_log.read_text(errors="replace")


def test_the_assistant_does_not_start_without_its_secret(tmp_path):
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.db'}",
            "INTERNAL_TOKEN": "t",
            "SESSION_SECRET": "t",
            "RASA_TOKEN": "unused",
            "ACTION_SERVER_TOKEN": "t",
        }
    )
    env = {key: value for key, value in _environment(settings).items() if key != "RASA_TOKEN"}

    done = subprocess.run(
        rasa_run(free_port()),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )

    assert done.returncode != 0
    assert "RASA_TOKEN is not set" in done.stdout + done.stderr
