"""The shape every dialogue form shares (agendar, cancelar, remarcar, identificação).

Slots are filled by our own extractors, never by NLU entities, so that:
- the answer to the question just asked is taken from the text whatever intent the model
  guessed ("Maria da Silva", "529.982.247-25", "quinta 14h"), and checked by the validator;
- a message that is clearly something else (a question, "deixa pra lá", a request for a
  person) is rejected by the form, so the general rules answer it and the form resumes (or
  ends, for handoff and giving up);
- an answer to an earlier question can be changed at any step ("na verdade prefiro sexta").

The identity slots (consent, name, CPF, phone) come first and only when the patient's record
lacks them.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.interfaces import Tracker
from rasa_sdk.types import DomainDict

from bot.actions.common import (
    emergency,
    end_dialogue,
    is_payload,
    latest_intent,
    latest_text,
    patient_id,
    revealed,
)
from bot.actions.identity import (
    CODE_LINKED,
    CODE_REFUSED,
    IDENTITY_SLOTS,
    IdentityValidation,
    awaited_claim,
    is_skip,
    looks_like_a_name,
    missing_identity,
    yes_or_no,
)
from bot.emergency import looks_like_emergency
from messaging.redaction import FIRST_NAME, NAME_PLACEHOLDER, has_placeholder

# These always win over the form: the dialogue ends (handoff, emergency, giving up).
ENDING_INTENTS = {"desistir", "falar_com_atendente", "emergencia"}
# These win when the model is sure and the text is no answer to the question asked.
OTHER_INTENTS = {
    "faq",
    "saudacao",
    "agradecimento",
    "despedida",
    "agendar_consulta",
    "cancelar_consulta",
    "remarcar_consulta",
    "consultar_agendamentos",
    "confirmar_presenca",
    "avaliar",
}
SURE = 0.8


def requested(tracker: Tracker) -> str | None:
    return tracker.get_slot("requested_slot")


def is_activation(tracker: Tracker) -> bool:
    """The form's first run, on the message that started the dialogue."""
    return requested(tracker) is None


class DialogueForm(IdentityValidation, FormValidationAction):
    """Base of the dialogue forms' validation actions."""

    @abstractmethod
    def name(self) -> str: ...

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if await awaited_claim(tracker) is not None:
            identity = ["codigo"]  # nothing else until the claimed CPF or phone is proved
        else:
            identity = await missing_identity(patient_id(tracker))
        rest = [slot for slot in domain_slots if slot not in IDENTITY_SLOTS]
        return identity + await self.dialogue_slots(rest, tracker)

    async def dialogue_slots(self, slots: list[str], tracker: Tracker) -> list[str]:
        """The form's own slots still required (a subclass may drop some)."""
        return slots

    async def looks_like_answer(self, slot: str, tracker: Tracker) -> bool:
        """Whether the latest text answers the question about `slot` (a subclass knows)."""
        if slot in ("lgpd_consentimento", "confirmacao"):
            return yes_or_no(tracker, latest_text(tracker)) is not None
        if slot in ("cpf", "telefone"):
            text = latest_text(tracker)  # typed digits reach the bot as a placeholder
            return has_placeholder(text) or sum(c.isdigit() for c in text) >= 8
        if slot == "codigo":
            return sum(c.isdigit() for c in latest_text(tracker)) >= 4
        if slot == "nome":
            text = latest_text(tracker)  # the answer to the question reaches the bot redacted
            return text == NAME_PLACEHOLDER or looks_like_a_name(text)
        return False

    async def interrupts(self, slot: str, tracker: Tracker) -> bool:
        """Whether the latest message is not meant for the form."""
        intent, confidence = latest_intent(tracker)
        if intent in ENDING_INTENTS and confidence >= 0.5:
            return True
        if is_payload(tracker):
            return intent != "informar" and intent not in ("afirmar", "negar")
        return (
            intent in OTHER_INTENTS
            and confidence >= SURE
            and not await self.looks_like_answer(slot, tracker)
        )

    async def answer(self, slot: str, tracker: Tracker) -> dict[str, Any]:
        """The latest text as the answer to `slot`, if `slot` is the question just asked."""
        if requested(tracker) != slot or await self.interrupts(slot, tracker):
            return {}
        return {slot: latest_text(tracker)}

    async def extract_lgpd_consentimento(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return await self.answer("lgpd_consentimento", tracker)

    async def extract_nome(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return await self.answer("nome", tracker)

    async def extract_cpf(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return await self.answer("cpf", tracker)

    async def extract_telefone(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return await self.answer("telefone", tracker)

    async def extract_codigo(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if requested(tracker) == "codigo" and is_skip(latest_text(tracker)):
            # "pular" answers the question, whatever intent the model reads in it.
            return {"codigo": latest_text(tracker)}
        return await self.answer("codigo", tracker)

    async def extract_confirmacao(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return await self.answer("confirmacao", tracker)

    async def validate_confirmacao(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Yes or no to the summary. "Não" ends cancelar and remarcar keeping the appointment
        (their submit actions say so)."""
        if value is None or isinstance(value, bool):
            return {"confirmacao": value}
        answer = yes_or_no(tracker, str(value))
        if answer is None:
            dispatcher.utter_message(response="utter_confirmacao_invalida")
        return {"confirmacao": answer}

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        # Read as typed: an answer to the name question reaches the bot redacted whole.
        typed = await revealed(tracker, latest_text(tracker))
        if looks_like_emergency(typed) and not is_payload(tracker):
            return emergency(dispatcher, tracker)
        identity_before = await missing_identity(patient_id(tracker))
        events = await super().run(dispatcher, tracker, domain)
        stop = [*end_dialogue(tracker), SlotSet("requested_slot", None)]
        if any("handoff" in (m.get("custom") or {}) for m in dispatcher.messages):
            # A validator handed the patient to a person (e.g. a CPF of another record).
            return [*events, *stop, ConversationPaused()]
        if tracker.get_slot("lgpd_consentimento") is False:
            return [*events, *stop]
        if tracker.get_slot("codigo") in (CODE_LINKED, CODE_REFUSED):
            # Linked: the conversation now belongs to the known patient, whose tracker takes
            # the next message (the patient was offered to take the dialogue up there).
            # Refused: no link, a person was offered.
            return [*events, *stop]
        if identity_before and not await missing_identity(patient_id(tracker)):
            # The platform writes the first name in as it records the message.
            dispatcher.utter_message(response="utter_identificado", nome=FIRST_NAME)
        return events
