"""Handing the patient over to a person."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher


def handoff_payload(reason: str, priority: str = "normal") -> dict[str, Any]:
    """The custom message our channel Sender turns into a queued handoff, after the text
    that precedes it has been sent."""
    return {"handoff": {"reason": reason, "priority": priority}}


class ActionTransferirAtendente(Action):
    def name(self) -> str:
        return "action_transferir_atendente"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(response="utter_transferindo")
        dispatcher.utter_message(json_message=handoff_payload("pedido_do_paciente"))
        # The connector gate keeps Rasa out while a person owns the conversation; the pause
        # is only a safety net, lifted by the hand-back.
        return [ConversationPaused()]
