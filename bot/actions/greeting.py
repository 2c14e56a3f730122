"""The greeting, with the clinic's name from the clinic profile (the admin renames the clinic
without retraining). A custom action rather than a plain response, so that a greeting with an
emergency in it ("oi, minha mãe desmaiou") gets the SAMU guidance (ClinicAction)."""

from __future__ import annotations

from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Tracker
from rasa_sdk.types import DomainDict

from bot.actions.common import ClinicAction, clinic_name


class ActionSaudacao(ClinicAction):
    def name(self) -> str:
        return "action_saudacao"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_saudacao", clinica=await clinic_name())
        return []
