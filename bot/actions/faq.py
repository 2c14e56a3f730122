"""Frequently asked questions, answered from the clinic's own data (the clinic profile the
admin edits, and the agenda), so changing an answer needs no retraining. The sentence frames
are domain responses; the facts come from the database."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.actions.common import ClinicAction, database, latest_text, plain
from models import ClinicProfile, Doctor, Specialty


def faq_key(tracker: Tracker) -> str | None:
    """'horario' for a message the response selector put under faq/horario."""
    selectors = tracker.latest_message.get("response_selector") or {}
    selector = selectors.get("faq") or selectors.get("default") or {}
    key = (selector.get("response") or {}).get("intent_response_key") or ""
    return key.split("/", 1)[1] if key.startswith("faq/") else None


def _join(items: list[str]) -> str:
    """'a, b e c'."""
    items = [str(i) for i in items if i]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " e " + items[-1]


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"• {line}" for line in lines)


def _convenios(data: dict[str, Any], _text: str) -> dict[str, str] | None:
    plans = data.get("convenios") or []
    return {"convenios": _join(plans)} if plans else None


def _endereco(data: dict[str, Any], _text: str) -> dict[str, str] | None:
    if not data.get("endereco"):
        return None
    return {
        "endereco": data["endereco"],
        "referencia": data.get("referencia", ""),
        "telefone": data.get("telefone", ""),
    }


def _horario(data: dict[str, Any], _text: str) -> dict[str, str] | None:
    hours = data.get("horario") or {}
    parts = [hours.get(k) for k in ("semana", "sabado", "domingo_feriados") if hours.get(k)]
    return {"horario": "; ".join(parts)} if parts else None


def _valores(data: dict[str, Any], _text: str) -> dict[str, str] | None:
    prices = data.get("valores") or {}
    if not prices.get("consulta_particular"):
        return None
    return {
        "consulta_particular": prices["consulta_particular"],
        "retorno": prices.get("retorno", ""),
        "pagamento": prices.get("pagamento", ""),
    }


def _documentos(data: dict[str, Any], _text: str) -> dict[str, str] | None:
    documents = data.get("documentos") or []
    return {"documentos": _bullets(documents)} if documents else None


def _preparo(data: dict[str, Any], text: str) -> dict[str, str] | None:
    preparations: dict[str, str] = data.get("preparo_exames") or {}
    if not preparations:
        return None
    asked = plain(text)
    # "eletro" names the eletrocardiograma; "ultrassom" the ultrassom abdominal.
    for exam, how in preparations.items():
        if any(word in asked for word in plain(exam).split() if len(word) >= 5):
            return {"preparos": _bullets([f"{exam}: {how}"])}
    return {"preparos": _bullets([f"{exam}: {how}" for exam, how in preparations.items()])}


def _resultados(data: dict[str, Any], _text: str) -> dict[str, str] | None:
    return {"resultados": data["resultados"]} if data.get("resultados") else None


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


async def _specialties() -> dict[str, str] | None:
    async with database().session() as session:
        specialties = (
            (await session.execute(select(Specialty).order_by(Specialty.name))).scalars().all()
        )
        doctors = (
            (
                await session.execute(
                    select(Doctor)
                    .where(Doctor.is_active.is_(True))
                    .options(selectinload(Doctor.specialty))
                    .order_by(Doctor.name)
                )
            )
            .scalars()
            .all()
        )
    if not specialties:
        return None
    lines = []
    for specialty in specialties:
        names = [d.name for d in doctors if d.specialty_id == specialty.id]
        lines.append(f"{specialty.name}: {_join(names)}" if names else specialty.name)
    return {"especialidades": _bullets(lines)}


class ActionResponderFaq(ClinicAction):
    def name(self) -> str:
        return "action_responder_faq"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        key = faq_key(tracker)
        if key is None:
            dispatcher.utter_message(response="utter_default")
            return []
        if key == "especialidades":
            values = await _specialties()
        elif key in RENDERERS:
            values = RENDERERS[key](await _profile(), latest_text(tracker))
        else:
            values = None
        if values is None:
            # The profile lacks this fact: the generic answer still points to the team.
            dispatcher.utter_message(response=f"utter_faq/{key}")
        else:
            dispatcher.utter_message(response=f"utter_resposta_{key}", **values)
        return []
