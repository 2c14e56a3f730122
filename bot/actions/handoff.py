"""Handing the patient to a person: on request, in an emergency, or when the bot keeps
failing to understand."""

from __future__ import annotations

import logging

from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Action, Tracker
from rasa_sdk.types import DomainDict

from bot.actions.common import ClinicAction, emergency, end_dialogue, hand_off
from bot.actions.faq import answer_questions_asked_with_a_request
from core.logs import log_failure

log = logging.getLogger(__name__)


class ActionTransferirAtendente(Action):
    def name(self) -> str:
        return "action_transferir_atendente"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        try:  # questions asked with the request; the handoff happens whatever befalls them
            await answer_questions_asked_with_a_request(dispatcher, tracker)
        except Exception as exc:
            log_failure(log, exc, "answering the questions asked with a handoff failed")
        dispatcher.utter_message(response="utter_transferindo")
        return hand_off(dispatcher, tracker, "pedido_do_paciente")


class ActionEmergencia(Action):
    """Never a diagnosis: the SAMU number at once, then a critical-priority handoff."""

    def name(self) -> str:
        return "action_emergencia"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return emergency(dispatcher, tracker)


def _previous_turn_was_not_understood(tracker: Tracker) -> bool:
    """Whether the bot's answer to the patient's previous message was also "não entendi"."""
    events = tracker.events
    user_turns = [i for i, event in enumerate(events) if event.get("event") == "user"]
    if len(user_turns) < 2:
        return False
    answer = events[user_turns[-2] + 1 : user_turns[-1]]
    return any(
        event.get("event") == "action" and event.get("name") == ActionNaoEntendi.NAME
        for event in answer
    )


class ActionNaoEntendi(ClinicAction):
    """First miss: ask again with options. Second miss in a row: a person takes over."""

    NAME = "action_nao_entendi"

    def name(self) -> str:
        return self.NAME

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if _previous_turn_was_not_understood(tracker):
            dispatcher.utter_message(response="utter_nao_entendi_de_novo")
            return hand_off(dispatcher, tracker, "nao_entendeu_duas_vezes")
        dispatcher.utter_message(response="utter_default")
        return []


class ActionForaDoEscopo(ClinicAction):
    def name(self) -> str:
        return "action_fora_do_escopo"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_fora_do_escopo")
        return []


class ActionDesistir(Action):
    """'Deixa pra lá': leave the dialogue in progress and forget its answers."""

    def name(self) -> str:
        return "action_desistir"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_desistir")
        return end_dialogue(tracker)
