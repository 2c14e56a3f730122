"""The satisfaction score (CSAT, 1 to 5) asked when a person hands the patient back."""

from __future__ import annotations

import re
from datetime import timedelta

from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Tracker
from rasa_sdk.types import DomainDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.actions.common import ClinicAction, database, entity, latest_text, patient_id
from models import Conversation, utcnow

# The question is asked right after the resolution; a score much later rates something else
# (or nothing), so it must not overwrite that conversation's rating.
CSAT_WINDOW = timedelta(hours=24)
_SCORE = re.compile(r"(?<!\d)([1-5])(?!\d)")


def score_in(tracker: Tracker) -> int | None:
    """The 1-5 score from our button's payload or from "nota 4", "5 estrelas"."""
    raw = entity(tracker, "nota") or latest_text(tracker)
    match = _SCORE.search(raw)
    return int(match.group(1)) if match else None


async def record_csat(session: AsyncSession, patient: int, score: int) -> Conversation | None:
    """Store the score on the patient's most recently resolved conversation, if resolved
    within CSAT_WINDOW (the answer arrives in a new conversation: resolving closed the one
    being rated)."""
    query = (
        select(Conversation)
        .where(
            Conversation.patient_id == patient,
            Conversation.resolved_at > utcnow() - CSAT_WINDOW,
        )
        .order_by(Conversation.resolved_at.desc(), Conversation.id.desc())
        .limit(1)
        .with_for_update()
    )
    conversation = (await session.execute(query)).scalar_one_or_none()
    if conversation is not None:
        conversation.csat_score = score
    return conversation


async def rate(
    dispatcher: CollectingDispatcher, patient: int | None, score: int | None
) -> list[EventType]:
    """Store a 1-5 score typed or tapped by the patient and thank them."""
    if score is None or not 1 <= score <= 5:
        dispatcher.utter_message(response="utter_avaliacao_invalida")
        return []
    conversation = None
    if patient is not None:
        async with database().session() as session:
            conversation = await record_csat(session, patient, score)
    if conversation is None:
        dispatcher.utter_message(response="utter_avaliacao_sem_atendimento")
    else:
        dispatcher.utter_message(response="utter_avaliacao_registrada", nota=score)
    return []


class ActionRegistrarAvaliacao(ClinicAction):
    def name(self) -> str:
        return "action_registrar_avaliacao"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return await rate(dispatcher, patient_id(tracker), score_in(tracker))
