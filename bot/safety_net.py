"""The emergency safety net at the NLU level, so that it covers every turn.

The custom actions check every message against the emergency phrases, but some turns never
reach one: greetings, thanks and goodbyes are answered by plain responses, and a policy may
predict any of those. A message that matches the phrases is classified `emergencia` here,
whatever the intent model said ("oi, minha mãe desmaiou" is no greeting), so the emergency
rule answers it with the SAMU guidance and a critical-priority handoff.

Listed in config.yml after the FallbackClassifier, so that a low-confidence emergency is not
turned into "não entendi" either, and before `PatientWording`, which gives the message back
its original text: the net reads both the normalised text and the patient's.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from bot.emergency import looks_like_emergency
from bot.normaliser import ORIGINAL_TEXT

EMERGENCY_INTENT = "emergencia"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class EmergencySafetyNet(GraphComponent, IntentClassifier):
    """Classifies a message with an emergency phrase as `emergencia` (confidence 1)."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [IntentClassifier]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> EmergencySafetyNet:
        return cls()

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            # The normalised text ("n consigo respirar") and the patient's own.
            texts = (message.get(TEXT) or "", message.get(ORIGINAL_TEXT) or "")
            if not any(looks_like_emergency(text) for text in texts if text):
                continue
            emergency = {INTENT_NAME_KEY: EMERGENCY_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
            ranking = [
                entry
                for entry in message.get(INTENT_RANKING_KEY) or []
                if entry.get(INTENT_NAME_KEY) != EMERGENCY_INTENT
            ]
            message.set(INTENT, emergency, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [emergency, *ranking], add_to_output=True)
        return messages
