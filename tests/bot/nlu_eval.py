"""Scores a trained model on the held-out NLU split, example by example (shared by
bench/nlu.py and the quality tests).

Rasa lives in the assistant's environment (.venv-rasa, Python 3.10), not in the platform's
where pytest runs: what needs Rasa (reading NLU data, parsing with a model) runs as this same
file in that environment, `.venv-rasa/bin/python tests/bot/nlu_eval.py <command> ...`,
which writes its answer as JSON to a file; the scoring is plain Python on this side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HELDOUT = Path(__file__).with_name("heldout_nlu.yml")
# The held-out split's WhatsApp-style section (shorthand, no accents, stories, run-ons).
HELDOUT_WHATSAPP = Path(__file__).with_name("heldout_whatsapp_nlu.yml")
# The training files with NLU examples (the others in bot/data hold only rules and stories).
TRAINING = (ROOT / "bot" / "data" / "nlu.yml", ROOT / "bot" / "data" / "reminders.yml")
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
RASA_ENV = {
    **os.environ,
    # The model carries project components (bot/normaliser.py, bot/safety_net.py).
    "PYTHONPATH": str(ROOT),
    "RASA_TELEMETRY_ENABLED": "false",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "PYTHONWARNINGS": "ignore",
}


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Evaluation:
    total: int = 0
    correct: int = 0
    per_intent: dict[str, Scores] = field(default_factory=dict)
    errors: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def in_rasa(command: str, *args: str) -> Any:
    """The JSON answer of this file's Rasa side, run in the assistant's environment."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "answer.json"
        done = subprocess.run(
            [str(RASA_PYTHON), __file__, command, str(out), *args],
            cwd=ROOT,
            env=RASA_ENV,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command} failed in .venv-rasa:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


@lru_cache
def _examples(path: Path) -> list[tuple[str, str]]:
    """(text, full intent) pairs; retrieval intents keep their key (faq/horario)."""
    return [(text, intent) for text, intent in in_rasa("examples", str(path))]


def heldout_examples() -> list[tuple[str, str]]:
    """The whole held-out split, its WhatsApp-style section included."""
    return _examples(HELDOUT) + _examples(HELDOUT_WHATSAPP)


def heldout_whatsapp_examples() -> list[tuple[str, str]]:
    return _examples(HELDOUT_WHATSAPP)


def training_examples() -> list[tuple[str, str]]:
    return [example for path in TRAINING for example in _examples(path)]


def full_intent(parsed: dict) -> str:
    intent = parsed["intent"]["name"]
    selectors = parsed.get("response_selector", {})
    # One ResponseSelector without `retrieval_intent` answers under "default".
    selector = selectors.get(intent) or selectors.get("default")
    if intent == "faq" and selector:
        return selector["response"]["intent_response_key"]
    return intent


def evaluate(model: Path, examples: list[tuple[str, str]]) -> Evaluation:
    # The platform's side (this file also runs in the assistant's environment, as a script).
    from messaging.redaction import redact

    with tempfile.TemporaryDirectory() as folder:
        texts = Path(folder) / "texts.json"
        # What the assistant reads: personal data swapped for placeholders by the platform.
        texts.write_text(json.dumps([redact(text).text for text, _ in examples]))
        predictions = in_rasa("predict", str(model), str(texts))
    result = Evaluation(total=len(examples))
    true_positives: Counter[str] = Counter()
    predicted_count: Counter[str] = Counter()
    expected_count: Counter[str] = Counter()
    for (text, expected), predicted in zip(examples, predictions, strict=True):
        expected_count[expected] += 1
        predicted_count[predicted] += 1
        if predicted == expected:
            result.correct += 1
            true_positives[expected] += 1
        else:
            result.errors.append((text, expected, predicted))
    for intent in expected_count:
        tp = true_positives[intent]
        precision = tp / predicted_count[intent] if predicted_count[intent] else 0.0
        recall = tp / expected_count[intent]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result.per_intent[intent] = Scores(precision, recall, f1, expected_count[intent])
    return result


# The Rasa side: runs in .venv-rasa only.


def _rasa_examples(path: str) -> list[tuple[str, str]]:
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(path)
    return [
        (m.get("text"), m.get("intent_response_key") or m.get("intent"))
        for m in data.intent_examples
    ]


async def _rasa_predict(model: str, texts: list[str]) -> list[str]:
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    # Rasa logs every parse at debug level otherwise.
    configure_structlog(logging.WARNING)
    agent = Agent.load(model)
    return [full_intent(await agent.parse_message(text)) for text in texts]


async def _rasa_asks(model: str, texts: list[str]) -> list[dict[str, Any]]:
    """What the connector makes of each message: its intent and the FAQ keys it asks."""
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    from bot.channels.platform import several_asks

    configure_structlog(logging.WARNING)
    agent = Agent.load(model)
    readings = []
    for text in texts:
        parsed = await several_asks(agent, text) or await agent.parse_message(text)
        keys = parsed.get("faq_keys") or []
        if not keys and parsed["intent"]["name"] == "faq":
            keys = [full_intent(parsed).split("/", 1)[1]]
        readings.append({"intent": parsed["intent"]["name"], "faq_keys": keys})
    return readings


def _rasa_main(command: str, out: str, *args: str) -> None:
    import asyncio

    if command == "examples":
        answer: Any = _rasa_examples(*args)
    elif command in ("predict", "asks"):
        model, texts_file = args
        run = _rasa_predict if command == "predict" else _rasa_asks
        answer = asyncio.run(run(model, json.loads(Path(texts_file).read_text())))
    else:
        raise SystemExit(f"unknown command {command!r}")
    Path(out).write_text(json.dumps(answer, ensure_ascii=False))


if __name__ == "__main__":
    _rasa_main(*sys.argv[1:])
