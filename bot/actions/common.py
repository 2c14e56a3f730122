"""What every action of the assistant shares: the clinic database and name, who the patient
is, the clock, emergency detection, handoff events and how dates are shown to patients."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import datetime

from rasa_sdk.events import ActiveLoop, ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Action, Tracker
from rasa_sdk.types import DomainDict
from sqlalchemy import select

from bot.emergency import looks_like_emergency
from core.logs import log_failure
from core.ratelimit import build_limits
from core.settings import Settings
from messaging.redaction import has_placeholder, reveal
from models import ClinicProfile, utcnow
from models.db import Database
from scheduling.appointments import BookingRules
from scheduling.when import TZ, TimeWindow

log = logging.getLogger(__name__)

_database: Database | None = None
_booking_rules: BookingRules | None = None

# Every slot a dialogue fills; all of them are cleared when a dialogue ends or starts.
DIALOGUE_SLOTS = (
    "lgpd_consentimento",
    "nome",
    "cpf",
    "telefone",
    "codigo",
    "especialidade",
    "medico",
    "quando",
    "horario",
    "opcoes_horario",
    "consulta",
    "opcoes_consulta",
    "confirmacao",
    "requested_slot",
)


def database() -> Database:
    """The action server's one engine (created on first use, from the environment)."""
    global _database
    if _database is None:
        _database = Database(Settings.from_env().database_url)
    return _database


def use_database(db: Database | None) -> None:
    """Point the actions at another database (tests)."""
    global _database
    _database = db


def booking_rules() -> BookingRules:
    """The limits on patients' bookings, counted on the clinic's shared rate limiter (Redis
    in production; this process's memory on the embedded default)."""
    global _booking_rules
    if _booking_rules is None:
        settings = Settings.from_env()
        _booking_rules = BookingRules.of(settings, build_limits(settings.redis_url))
    return _booking_rules


def use_booking_rules(rules: BookingRules | None) -> None:
    """Hold the actions to other booking rules (tests)."""
    global _booking_rules
    _booking_rules = rules


async def clinic_name() -> str:
    """The clinic's name as the admin wrote it in the clinic profile (read on every use, so
    a new name needs no retraining and no new conversation)."""
    async with database().session() as session:
        query = select(ClinicProfile.name).order_by(ClinicProfile.id).limit(1)
        name = (await session.execute(query)).scalar_one_or_none()
    return name or "clínica"


def patient_id(tracker: Tracker) -> int | None:
    """Rasa's sender id is the patient's user id (see bot/channels/base.py)."""
    try:
        return int(tracker.sender_id)
    except (TypeError, ValueError):
        return None


def _metadata_id(tracker: Tracker, key: str) -> int | None:
    metadata = tracker.latest_message.get("metadata") or {}
    value = metadata.get(key)
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def conversation_id(tracker: Tracker) -> int | None:
    return _metadata_id(tracker, "conversation_id")


async def revealed(tracker: Tracker, text: str) -> str:
    """`text` from the latest message with the personal data the platform swapped for
    placeholders put back (messaging.redaction), for the actions that need the value."""
    patient = patient_id(tracker)
    if patient is None or not has_placeholder(text):
        return text
    async with database().session() as session:
        return await reveal(session, patient, _metadata_id(tracker, "message_id"), text)


def channel(tracker: Tracker) -> str:
    return tracker.get_latest_input_channel() or "webchat"


def now() -> datetime:
    return utcnow()


def latest_text(tracker: Tracker) -> str:
    return (tracker.latest_message.get("text") or "").strip()


def latest_intent(tracker: Tracker) -> tuple[str | None, float]:
    intent = tracker.latest_message.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def is_payload(tracker: Tracker) -> bool:
    """A tap on one of our buttons (the connector only lets offered payloads through)."""
    return latest_text(tracker).startswith("/")


def entity(tracker: Tracker, name: str) -> str | None:
    value = next(tracker.get_latest_entity_values(name), None)
    return None if value is None else str(value)


def end_dialogue(tracker: Tracker) -> list[EventType]:
    """Leave any form and forget its answers (only what is set: trackers stay lean)."""
    events: list[EventType] = [
        SlotSet(slot, None) for slot in DIALOGUE_SLOTS if tracker.get_slot(slot) is not None
    ]
    if tracker.active_loop_name:
        events.insert(0, ActiveLoop(None))
    return events


def hand_off(
    dispatcher: CollectingDispatcher, tracker: Tracker, reason: str, priority: str = "normal"
) -> list[EventType]:
    """Ask the channel's Sender to queue the conversation for a person (after the text sent
    before this), and stop the bot: the connector gate keeps Rasa out while a person owns
    the conversation; the pause is only a safety net, lifted by the hand-back."""
    dispatcher.utter_message(json_message={"handoff": {"reason": reason, "priority": priority}})
    return [*end_dialogue(tracker), ConversationPaused()]


def emergency(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    dispatcher.utter_message(response="utter_emergencia")
    return hand_off(dispatcher, tracker, "emergencia", "critical")


class ClinicAction(Action, ABC):
    """An action that answers an emergency first, whatever the intent model said, and hands
    the patient to a person instead of going silent when something breaks."""

    @abstractmethod
    def name(self) -> str: ...

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if tracker.latest_message.get("text") and looks_like_emergency(latest_text(tracker)):
            return emergency(dispatcher, tracker)
        try:
            return await self.act(dispatcher, tracker, domain)
        except Exception as exc:
            log_failure(log, exc, "%s failed; handing the patient to the team", self.name())
            dispatcher.messages.clear()
            dispatcher.utter_message(response="utter_erro_agenda")
            return hand_off(dispatcher, tracker, "erro_no_assistente")

    @abstractmethod
    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]: ...


WEEKDAYS = ("segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo")
WEEKDAYS_SHORT = ("seg", "ter", "qua", "qui", "sex", "sáb", "dom")


def local(moment: datetime) -> datetime:
    return moment.astimezone(TZ)


def show_moment(moment: datetime) -> str:
    """'quinta, 06/03 às 14:00' in clinic time."""
    moment = local(moment)
    return f"{WEEKDAYS[moment.weekday()]}, {moment:%d/%m} às {moment:%H:%M}"


def show_moment_short(moment: datetime) -> str:
    """'qui 06/03 14:00', for buttons."""
    moment = local(moment)
    return f"{WEEKDAYS_SHORT[moment.weekday()]} {moment:%d/%m} {moment:%H:%M}"


def show_window(window: TimeWindow | None) -> str:
    """How a searched window reads in a sentence ('quinta, 06/03, entre 06:00 e 12:00')."""
    if window is None:
        return "os próximos dias"
    start, end = local(window.start), local(window.end)
    day = f"{WEEKDAYS[start.weekday()]}, {start:%d/%m}"
    if window.is_exact:
        return show_moment(start)
    if start.date() != end.date():
        return f"{start:%d/%m} a {end:%d/%m}"
    if (start.hour, start.minute) == (0, 0) and (end.hour, end.minute) == (23, 59):
        return day
    return f"{day}, entre {start:%H:%M} e {end:%H:%M}"
