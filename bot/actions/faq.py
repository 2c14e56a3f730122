"""Frequently asked questions, answered from the clinic's own data (the clinic profile the
admin edits, and the agenda), so changing an answer needs no retraining. The sentence frames
are domain responses; the facts come from the database."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Tracker
from rasa_sdk.types import DomainDict
from sqlalchemy import select

from bot.actions.common import (
    ClinicAction,
    database,
    latest_text,
)
from bot.emergency import plain
from models import ClinicProfile, Specialty
from scheduling.agenda import active_doctors


def faq_key(tracker: Tracker) -> str | None:
    """'horario' for a message the response selector put under faq/horario."""
    selectors = tracker.latest_message.get("response_selector") or {}
    selector = selectors.get("faq") or selectors.get("default") or {}
    key = (selector.get("response") or {}).get("intent_response_key") or ""
    return key.split("/", 1)[1] if key.startswith("faq/") else None


def _join(items: list[str]) -> str:
    """'a, b e c'."""
    items = [str(i) for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " e " + items[-1]


# The admin edits each profile field as a text, a list of texts or a map of texts; the
# answers read any of the three.
def _lines(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f"{k}: {v}" for k, v in value.items() if v]
    if isinstance(value, list):
        return [str(v) for v in value if v]
    return [str(value)] if value else []


def _text(value: Any) -> str:
    return _join(_lines(value)) if isinstance(value, list) else "; ".join(_lines(value))


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"• {line}" for line in lines)


Answer = tuple[str, dict[str, Any]]  # a response and the values its text names


def _convenios(data: dict[str, Any], _text_asked: str) -> Answer | None:
    plans = data.get("convenios")
    names = list(plans) if isinstance(plans, dict) else _lines(plans)
    return ("utter_resposta_convenios", {"convenios": _join(names)}) if names else None


def _endereco(data: dict[str, Any], _text_asked: str) -> Answer | None:
    if not data.get("endereco"):
        return None
    values = {key: _text(data.get(key)) for key in ("endereco", "referencia", "telefone")}
    return "utter_resposta_endereco", values


def _horario(data: dict[str, Any], _text_asked: str) -> Answer | None:
    hours = data.get("horario")
    parts = list(hours.values()) if isinstance(hours, dict) else _lines(hours)
    return ("utter_resposta_horario", {"horario": "; ".join(parts)}) if parts else None


def _valores(data: dict[str, Any], _text_asked: str) -> Answer | None:
    prices = data.get("valores")
    if isinstance(prices, dict) and prices.get("consulta_particular"):
        values = {
            key: str(prices.get(key, "")) for key in ("consulta_particular", "retorno", "pagamento")
        }
        return "utter_resposta_valores", values
    return ("utter_resposta_livre", {"texto": _text(prices)}) if prices else None


def _documentos(data: dict[str, Any], _text_asked: str) -> Answer | None:
    documents = _lines(data.get("documentos"))
    return ("utter_resposta_documentos", {"documentos": _bullets(documents)}) if documents else None


def _preparo(data: dict[str, Any], asked: str) -> Answer | None:
    preparations = data.get("preparo_exames")
    if not preparations:
        return None
    if not isinstance(preparations, dict):
        return "utter_resposta_preparo_exame", {"preparos": _bullets(_lines(preparations))}
    words = plain(asked)
    # "eletro" names the eletrocardiograma; "ultrassom" the ultrassom abdominal.
    for exam, how in preparations.items():
        if any(word in words for word in plain(exam).split() if len(word) >= 5):
            return "utter_resposta_preparo_exame", {"preparos": _bullets([f"{exam}: {how}"])}
    return "utter_resposta_preparo_exame", {"preparos": _bullets(_lines(preparations))}


def _resultados(data: dict[str, Any], _text_asked: str) -> Answer | None:
    results = _lines(data.get("resultados"))
    return (
        ("utter_resposta_resultado_exame", {"resultados": "\n".join(results)}) if results else None
    )


RENDERERS = {
    "convenios": _convenios,
    "endereco": _endereco,
    "horario": _horario,
    "valores": _valores,
    "documentos": _documentos,
    "preparo_exame": _preparo,
    "resultado_exame": _resultados,
}


async def _profile() -> dict[str, Any]:
    async with database().session() as session:
        query = select(ClinicProfile.data).order_by(ClinicProfile.id).limit(1)
        return (await session.execute(query)).scalar_one_or_none() or {}


async def _specialties() -> Answer | None:
    async with database().session() as session:
        specialties = (
            (await session.execute(select(Specialty).order_by(Specialty.name))).scalars().all()
        )
        doctors = await active_doctors(session)
    if not specialties:
        return None
    lines = []
    for specialty in specialties:
        names = [d.name for d in doctors if specialty in d.specialties]
        lines.append(f"{specialty.name}: {_join(names)}" if names else specialty.name)
    return "utter_resposta_especialidades", {"especialidades": _bullets(lines)}


def asked_keys(tracker: Tracker) -> list[str]:
    """Every FAQ key the latest message asks, in order: those the connector found in a
    message that asks several things (`faq_keys`), else the response selector's one."""
    several = tracker.latest_message.get("faq_keys")
    if isinstance(several, list) and several:
        return [str(key) for key in several]
    key = faq_key(tracker)
    return [key] if key else []


async def answer(dispatcher: CollectingDispatcher, tracker: Tracker, key: str) -> None:
    """The answer to the FAQ `key`, from the clinic's own data."""
    if key == "especialidades":
        rendered = await _specialties()
    elif key in RENDERERS:
        rendered = RENDERERS[key](await _profile(), latest_text(tracker))
    else:
        rendered = None
    if rendered is None:
        # The profile lacks this fact: the generic answer still points to the team.
        dispatcher.utter_message(response=f"utter_faq/{key}")
    else:
        response, values = rendered
        dispatcher.utter_message(response=response, **values)


async def answer_questions_asked_with_a_request(
    dispatcher: CollectingDispatcher, tracker: Tracker
) -> None:
    """The FAQ questions asked in the same message as a request ("qual o endereço? quero
    marcar"), answered before the request is carried on."""
    for key in tracker.latest_message.get("faq_keys") or []:
        await answer(dispatcher, tracker, str(key))


class ActionResponderFaq(ClinicAction):
    def name(self) -> str:
        return "action_responder_faq"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        keys = asked_keys(tracker)
        if not keys:
            dispatcher.utter_message(response="utter_default")
        for key in keys:
            await answer(dispatcher, tracker, key)
        return []
