"""Scores a trained model on the held-out NLU split, example by example (shared by
bench/nlu.py and the quality tests)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HELDOUT = Path(__file__).with_name("heldout_nlu.yml")
TRAINING = Path(__file__).resolve().parents[2] / "bot" / "data" / "nlu.yml"


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


def _examples(path: Path) -> list[tuple[str, str]]:
    """(text, full intent) pairs; retrieval intents keep their key (faq/horario)."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [
        (m.get("text"), m.get("intent_response_key") or m.get("intent"))
        for m in data.intent_examples
    ]


def heldout_examples() -> list[tuple[str, str]]:
    return _examples(HELDOUT)


def training_examples() -> list[tuple[str, str]]:
    return _examples(TRAINING)


def full_intent(parsed: dict) -> str:
    intent = parsed["intent"]["name"]
    selectors = parsed.get("response_selector", {})
    # One ResponseSelector without `retrieval_intent` answers under "default".
    selector = selectors.get(intent) or selectors.get("default")
    if intent == "faq" and selector:
        return selector["response"]["intent_response_key"]
    return intent


async def evaluate(model: Path, examples: list[tuple[str, str]]) -> Evaluation:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    # Rasa logs every parse at debug level otherwise.
    configure_structlog(logging.WARNING)
    agent = Agent.load(str(model))
    result = Evaluation(total=len(examples))
    true_positives: Counter[str] = Counter()
    predicted_count: Counter[str] = Counter()
    expected_count: Counter[str] = Counter()
    for text, expected in examples:
        predicted = full_intent(await agent.parse_message(text))
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
