"""The text normaliser inside the Rasa model, so that training and serving read the same text.

`TextNormaliser` comes first in the pipeline (config.yml): every training example and every
patient message is read through `bot.wording.normalise` ("qto custa pq vc n atende" → "quanto
custa porque você não atende") before tokens and features. `PatientWording` comes last and
puts the patient's own text back in the parse result, so that the actions read what the
patient wrote (dates, names, the placeholders of personal data) and the tracker keeps it.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import wording

ORIGINAL_TEXT = "original_text"


class _Stateless(GraphComponent):
    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> _Stateless:
        return cls()


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class TextNormaliser(_Stateless):
    """Rewrites the text of each message as bot.wording spells it (keeping the original)."""

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str:
        # Rasa's cache keys on this class's source only: a new word in the table must
        # invalidate the normalised training data too.
        return hashlib.sha256(inspect.getsource(wording).encode()).hexdigest()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            if example.get(TEXT):
                example.set(TEXT, wording.normalise(example.get(TEXT)))
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text:
                message.set(ORIGINAL_TEXT, text)
                message.set(TEXT, wording.normalise(text))
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class PatientWording(_Stateless, IntentClassifier):
    """Puts the patient's own text back as the message's text once NLU is done."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [TextNormaliser]

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            original = message.get(ORIGINAL_TEXT)
            if original is not None:
                message.set(TEXT, original)
        return messages
