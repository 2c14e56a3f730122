"""The platform's action server (processes/actions.py): only Rasa, with the shared secret, gets
actions run; what goes wrong is answered without the tracker, whose texts are the patient's."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import ActionExecutionRejection

from core.settings import ROOT, Settings
from processes.actions import EXECUTOR, MAX_BODY, bind_address, build_app
from tests.clinic import free_port

SECRET = "action-server-test-secret"
# What a tracker holds: the patient's own words and data, never to be echoed or logged.
PATIENT_TEXT = "sou Maria Souza, CPF 529.982.247-25, minha mãe desmaiou"
SENDER = "4815162342"
ran: list[str] = []


class Recording(Action):
    def name(self) -> str:
        return "action_teste_registra"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        ran.append(tracker.sender_id)
        dispatcher.utter_message(text="feito")
        return [SlotSet("nome", "Maria")]


class Failing(Action):
    def name(self) -> str:
        return "action_teste_falha"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        raise RuntimeError(f"cannot handle {tracker.latest_message['text']} of {tracker.sender_id}")


class Refusing(Action):
    def name(self) -> str:
        return "action_teste_recusa"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        raise ActionExecutionRejection(self.name(), "nothing to extract")


def action_call(action: str = "action_teste_registra", **changes: Any) -> dict[str, Any]:
    """An action call shaped like the ones Rasa 3.6 sends."""
    call = {
        "next_action": action,
        "sender_id": SENDER,
        "version": "3.6.21",
        "domain": {"intents": ["saudacao"], "slots": {"nome": {"type": "text"}}},
        "domain_digest": "digest-1",
        "tracker": {
            "sender_id": SENDER,
            "slots": {"nome": None},
            "latest_message": {"text": PATIENT_TEXT, "intent": {"name": "saudacao"}},
            "events": [{"event": "user", "text": PATIENT_TEXT}],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }
    call.update(changes)
    return call


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[str]:
    """The real app, with bot.actions and three test actions, on a free loopback port."""
    app = build_app(SECRET)
    for action in (Recording, Failing, Refusing):
        app[EXECUTOR].register_action(action)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    ran.clear()
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    url: str,
    body: Any,
    authorization: str | None = f"Bearer {SECRET}",
    **headers: str,
) -> tuple[int, str]:
    if authorization is not None:
        headers["Authorization"] = authorization
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with http.post(f"{url}/webhook", data=data, headers=headers) as response:
        return response.status, await response.text()


async def test_an_action_call_with_the_secret_runs_the_action(server, http):
    status, text = await post(http, server, action_call())

    assert status == 200
    assert json.loads(text) == {
        "events": [{"event": "slot", "timestamp": None, "name": "nome", "value": "Maria"}],
        "responses": [
            {
                "text": "feito",
                "buttons": [],
                "elements": [],
                "custom": {},
                "template": None,
                "response": None,
                "image": None,
                "attachment": None,
            }
        ],
    }
    assert ran == [SENDER]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", f"bearer {SECRET}", SECRET, f"Bearer {SECRET}x", "Bearer wrong"],
)
async def test_an_action_call_without_the_secret_is_refused_and_runs_nothing(
    server, http, authorization
):
    status, text = await post(http, server, action_call(), authorization)

    assert (status, json.loads(text)) == (401, {"error": "unauthorized"})
    assert ran == []


async def test_a_deflated_action_call_runs_as_when_rasa_compresses_it(server, http):
    body = zlib.compress(json.dumps(action_call()).encode())

    status, _ = await post(http, server, body, **{"Content-Encoding": "deflate"})

    assert status == 200
    assert ran == [SENDER]


async def test_a_deflated_body_too_large_once_inflated_is_refused(server, http):
    bomb = zlib.compress(b" " * (MAX_BODY + 1))

    status, _ = await post(http, server, bomb, **{"Content-Encoding": "deflate"})

    assert status == 413
    assert ran == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        action_call(tracker=None),
        {key: value for key, value in action_call().items() if key != "next_action"},
    ],
    ids=["not-json", "not-utf8", "a-list", "no-tracker", "no-action"],
)
async def test_a_body_that_is_not_an_action_call_is_a_bad_request(server, http, body):
    status, text = await post(http, server, body)

    assert status == 400
    assert set(json.loads(text)) == {"error"}
    assert ran == []


async def test_an_unknown_action_is_not_found(server, http):
    status, text = await post(http, server, action_call("action_que_nao_existe"))

    assert status == 404
    assert json.loads(text)["action_name"] == "action_que_nao_existe"


async def test_an_action_that_refuses_to_run_is_a_bad_request_naming_it(server, http):
    status, text = await post(http, server, action_call("action_teste_recusa"))

    assert status == 400
    assert json.loads(text) == {"error": "nothing to extract", "action_name": "action_teste_recusa"}


async def test_a_call_without_a_domain_the_server_knows_asks_rasa_for_it(server, http):
    call = action_call(domain=None, domain_digest="a-digest-never-sent")

    status, text = await post(http, server, call)

    assert status == 449
    assert json.loads(text)["action_name"] == "action_teste_registra"
    assert ran == []


async def test_a_failing_action_is_answered_500_without_the_tracker(server, http, caplog):
    caplog.set_level(logging.INFO)

    status, text = await post(http, server, action_call("action_teste_falha"))

    assert (status, json.loads(text)) == (500, {"error": "action failed"})
    # Neither in the answer (Rasa logs it) nor in the action server's log.
    for private in (PATIENT_TEXT, "529.982.247-25", SENDER):
        assert private not in text
        assert private not in caplog.text
    assert "action_teste_falha failed (RuntimeError)" in caplog.text
    assert "processes/actions.py" in caplog.text or "test_action_server.py" in caplog.text


async def test_health_answers_without_the_secret(server, http):
    async with http.get(f"{server}/health") as response:
        assert (response.status, await response.json()) == (200, {"status": "ok"})


async def test_the_expected_rasa_version_is_not_warned_about_but_others_are(server, http):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (await post(http, server, action_call(version="3.6.21")))[0] == 200
        expected = [str(w.message) for w in caught]
        assert (await post(http, server, action_call(version="3.7.0")))[0] == 200
        assert (await post(http, server, action_call(version=None)))[0] == 200
        others = [str(w.message) for w in caught][len(expected) :]

    assert not [m for m in expected if "rasa_sdk" in m]
    assert len([m for m in others if "rasa_sdk" in m]) == 2


def test_the_assistants_actions_are_registered_by_package_name():
    app = build_app(SECRET)

    assert {"action_saudacao", "action_transferir_atendente", "validate_agendamento_form"} <= set(
        app[EXECUTOR].actions
    )


def test_it_listens_on_loopback_by_default():
    settings = Settings.from_env(
        {
            "INTERNAL_TOKEN": "t",
            "SESSION_SECRET": "t",
            "RASA_TOKEN": "t",
            "ACTION_SERVER_TOKEN": "t",
        }
    )

    assert bind_address(settings.action_server_url) == ("127.0.0.1", 5055)
    assert bind_address("http://10.1.2.3:6000/webhook") == ("10.1.2.3", 6000)


def _environment(tmp_path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ACTION_SERVER_TOKEN", "ACTION_SERVER_URL")
    }
    return {
        **env,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'clinic.db'}",
        "INTERNAL_TOKEN": "t",
        "SESSION_SECRET": "t",
        "RASA_TOKEN": "t",
        **extra,
    }


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_the_server_binds_to_the_host_of_its_url_only(tmp_path):
    port = free_port()
    env = _environment(
        tmp_path,
        ACTION_SERVER_URL=f"http://127.0.0.1:{port}/webhook",
        ACTION_SERVER_TOKEN=SECRET,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "processes.actions"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(f"http://127.0.0.1:{port}/health"):
            assert process.poll() is None and time.monotonic() < deadline, "did not start"
            time.sleep(0.2)
        # Another loopback address of this machine: nothing listens there.
        with pytest.raises(OSError), socket.create_connection(("127.0.0.2", port), timeout=2):
            pass
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_server_does_not_start_without_its_secret(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "processes.actions"],
        cwd=ROOT,
        env=_environment(tmp_path, ACTION_SERVER_URL=f"http://127.0.0.1:{free_port()}/webhook"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert "ACTION_SERVER_TOKEN is not set" in done.stderr
    with pytest.raises(ValueError, match="ACTION_SERVER_TOKEN"):
        build_app("")
