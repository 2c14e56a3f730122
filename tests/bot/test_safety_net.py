"""The emergency safety net in the NLU pipeline: every message with an emergency phrase is
classified `emergencia`, whatever the intent model said, so no plain response (a greeting, a
thank-you) answers it."""

from __future__ import annotations

import yaml
from rasa.shared.nlu.training_data.message import Message

from bot.safety_net import EmergencySafetyNet
from settings import ROOT


def _classified(text: str, intent: str) -> Message:
    ranking = [
        {"name": intent, "confidence": 0.9},
        {"name": "emergencia", "confidence": 0.05},
        {"name": "faq", "confidence": 0.05},
    ]
    message = Message(data={"text": text, "intent": ranking[0], "intent_ranking": ranking})
    [processed] = EmergencySafetyNet().process([message])
    return processed


def test_a_greeting_with_an_emergency_in_it_is_an_emergency():
    message = _classified("oi, boa noite, minha mãe desmaiou", "saudacao")

    assert message.get("intent") == {"name": "emergencia", "confidence": 1.0}
    assert [i["name"] for i in message.get("intent_ranking")] == [
        "emergencia",
        "saudacao",
        "faq",
    ]


def test_a_message_with_no_emergency_phrase_keeps_its_intent():
    message = _classified("oi, boa noite", "saudacao")

    assert message.get("intent") == {"name": "saudacao", "confidence": 0.9}


def test_the_net_runs_after_the_fallback_classifier():
    # Otherwise a low-confidence emergency would become "não entendi".
    pipeline = [c["name"] for c in yaml.safe_load((ROOT / "config.yml").read_text())["pipeline"]]

    assert pipeline.index("bot.safety_net.EmergencySafetyNet") > pipeline.index(
        "FallbackClassifier"
    )
