""" "Não quero mais lembretes": the patient stops appointment reminders from the chat, as the
portal's "Lembretes de consulta" does (the `lembretes` consent is withdrawn, recorded with
the channel it was asked on; the reminder dispatch then sends none, on any channel)."""

from __future__ import annotations

from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Tracker
from rasa_sdk.types import DomainDict

from accounts import consent
from bot.actions.common import ClinicAction, channel, database, patient_id


class ActionPararLembretes(ClinicAction):
    def name(self) -> str:
        return "action_parar_lembretes"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        patient = patient_id(tracker)
        if patient is not None:
            async with database().session() as session:
                await consent.withdraw(
                    session, patient, consent.REMINDERS, channel=channel(tracker)
                )
        dispatcher.utter_message(response="utter_lembretes_desligados")
        return []
