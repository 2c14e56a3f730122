"""Typed answers to the buttons the clinic offered: "1", "a segunda", "sim", "não".

Some channels show buttons as a numbered list, and patients type instead of tapping
everywhere. The buttons come from our own outbound messages (bot replies and reminders, which
the worker sends without Rasa), so the payload picked here is as trustworthy as a tap.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Tracker
from rasa_sdk.types import DomainDict
from sqlalchemy import select

from bot.actions.booking import confirm_presence, option_number, own_upcoming
from bot.actions.common import (
    ClinicAction,
    channel,
    database,
    end_dialogue,
    hand_off,
    latest_intent,
    latest_text,
    now,
    patient_id,
    show_moment,
)
from bot.actions.csat import rate
from models import AuthorKind, Direction, Message

# Older offers are not what a "1" typed now answers.
OFFER_LIFETIME = timedelta(days=7)
_PAYLOAD = re.compile(r"^/(?P<intent>[\w/]+)(?P<entities>\{.*\})?$", re.DOTALL)
# Starting a dialogue from an offered button: the intent's form (with the appointment, if any).
_FORMS = {
    "agendar_consulta": "agendamento_form",
    "cancelar_consulta": "cancelamento_form",
    "remarcar_consulta": "remarcacao_form",
    "consultar_agendamentos": "identificacao_form",
}


def parse_payload(payload: str) -> tuple[str, dict[str, Any]] | None:
    match = _PAYLOAD.match(payload.strip())
    if match is None:
        return None
    try:
        entities = json.loads(match.group("entities") or "{}")
    except json.JSONDecodeError:
        return None
    return match.group("intent"), entities if isinstance(entities, dict) else {}


async def last_offer(patient: int, on_channel: str) -> tuple[list[dict[str, str]], bool]:
    """The buttons of the latest recent clinic message that had some, and whether that
    message is also the latest message the clinic sent."""
    async with database().session() as session:
        query = (
            select(Message.buttons)
            .where(
                Message.patient_id == patient,
                Message.channel == on_channel,
                Message.direction == Direction.OUTBOUND,
                Message.author_kind.in_((AuthorKind.BOT, AuthorKind.SYSTEM)),
                Message.internal.is_(False),
                Message.created_at >= now() - OFFER_LIFETIME,
            )
            .order_by(Message.id.desc())
            .limit(10)
        )
        recent = (await session.execute(query)).scalars().all()
    for position, buttons in enumerate(recent):
        if buttons:
            return buttons, position == 0
    return [], False


def _pick(buttons: list[dict[str, str]], tracker: Tracker, is_latest: bool) -> str | None:
    intent, _ = latest_intent(tracker)
    if intent == "escolher_opcao":
        number = option_number(latest_text(tracker))
        if number is not None and 0 < number <= len(buttons):
            return buttons[number - 1]["payload"]
        return None
    if not is_latest:
        return None  # "sim" answers only the very last question

    def offered(*intents: str) -> list[str]:
        return [
            b["payload"]
            for b in buttons
            if (parse_payload(b.get("payload", "")) or ("",))[0] in intents
        ]

    answers = {"afirmar": ("confirmar_presenca", "afirmar"), "negar": ("negar",)}
    found = offered(*answers.get(intent or "", ()))
    if not found and intent == "negar":
        # "Não" to a reminder ("will you come?"): the caller offers to move or cancel it.
        found = offered("confirmar_presenca")
    # "Sim" to "which of these appointments?" names none of them.
    return found[0] if len(found) == 1 else None


class ActionResponderOpcao(ClinicAction):
    def name(self) -> str:
        return "action_responder_opcao"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        patient = patient_id(tracker)
        intent, _ = latest_intent(tracker)
        payload = None
        if patient is not None:
            buttons, is_latest = await last_offer(patient, channel(tracker))
            payload = _pick(buttons, tracker, is_latest)
        parsed = parse_payload(payload) if payload else None
        if parsed is None:
            if intent in ("afirmar", "negar"):
                dispatcher.utter_message(response="utter_posso_ajudar")
            else:
                dispatcher.utter_message(response="utter_opcao_sem_contexto")
            return []
        chosen, entities = parsed
        appointment = str(entities.get("appointment_id", ""))
        appointment_id = int(appointment) if appointment.isdigit() else None
        if chosen == "confirmar_presenca" and intent == "negar":
            return await self._offer_change(dispatcher, tracker, appointment_id)
        if chosen == "confirmar_presenca":
            return await confirm_presence(dispatcher, tracker, appointment_id)
        if chosen == "avaliar":
            score = str(entities.get("nota", ""))
            return await rate(dispatcher, patient, int(score) if score.isdigit() else None)
        if chosen == "falar_com_atendente":
            dispatcher.utter_message(response="utter_transferindo")
            return hand_off(dispatcher, tracker, "pedido_do_paciente")
        if chosen in _FORMS:
            events = end_dialogue(tracker)
            if appointment_id is not None:
                events.append(SlotSet("consulta", f"#{appointment_id}"))
            return [*events, FollowupAction(_FORMS[chosen])]
        dispatcher.utter_message(response="utter_opcao_sem_contexto")
        return []

    async def _offer_change(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, appointment_id: int | None
    ) -> list[EventType]:
        appointment = (
            await own_upcoming(patient_id(tracker), appointment_id) if appointment_id else None
        )
        if appointment is None:
            dispatcher.utter_message(response="utter_posso_ajudar")
            return []
        buttons = [
            {
                "title": "Remarcar",
                "payload": f'/remarcar_consulta{{"appointment_id":"{appointment.id}"}}',
            },
            {
                "title": "Cancelar",
                "payload": f'/cancelar_consulta{{"appointment_id":"{appointment.id}"}}',
            },
        ]
        dispatcher.utter_message(
            response="utter_nao_vai_comparecer",
            horario=show_moment(appointment.starts_at),
            buttons=buttons,
        )
        return []
