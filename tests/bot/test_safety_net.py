"""The emergency safety net in the NLU pipeline: every message with an emergency phrase is
classified `emergencia`, whatever the intent model said, so no plain response (a greeting, a
thank-you) answers it.

The net is a Rasa component: it runs in the assistant's environment (.venv-rasa), once for
every case of this module."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from core.settings import ROOT
from tests.bot.nlu_eval import RASA_ENV, RASA_PYTHON

CASES = {
    "emergency in a greeting": ("oi, boa noite, minha mãe desmaiou", "saudacao"),
    "plain greeting": ("oi, boa noite", "saudacao"),
}

# Run by .venv-rasa/bin/python: classifies each (text, intent) case as the model would have.
CLASSIFY = """
import json, sys
from rasa.shared.nlu.training_data.message import Message
from bot.safety_net import EmergencySafetyNet

answers = {}
for name, (text, intent) in json.loads(sys.stdin.read()).items():
    ranking = [
        {"name": intent, "confidence": 0.9},
        {"name": "emergencia", "confidence": 0.05},
        {"name": "faq", "confidence": 0.05},
    ]
    message = Message(data={"text": text, "intent": ranking[0], "intent_ranking": ranking})
    [processed] = EmergencySafetyNet().process([message])
    answers[name] = {key: processed.get(key) for key in ("intent", "intent_ranking")}
print(json.dumps(answers))
"""


@pytest.fixture(scope="module")
def classified() -> dict[str, dict]:
    done = subprocess.run(
        [str(RASA_PYTHON), "-c", CLASSIFY],
        input=json.dumps(CASES),
        cwd=ROOT,
        env=RASA_ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_greeting_with_an_emergency_in_it_is_an_emergency(classified):
    message = classified["emergency in a greeting"]

    assert message["intent"] == {"name": "emergencia", "confidence": 1.0}
    assert [i["name"] for i in message["intent_ranking"]] == [
        "emergencia",
        "saudacao",
        "faq",
    ]


def test_a_message_with_no_emergency_phrase_keeps_its_intent(classified):
    message = classified["plain greeting"]

    assert message["intent"] == {"name": "saudacao", "confidence": 0.9}


def test_the_net_runs_after_the_fallback_classifier():
    # Otherwise a low-confidence emergency would become "não entendi".
    pipeline = [c["name"] for c in yaml.safe_load((ROOT / "config.yml").read_text())["pipeline"]]

    assert pipeline.index("bot.safety_net.EmergencySafetyNet") > pipeline.index(
        "FallbackClassifier"
    )
