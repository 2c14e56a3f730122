"""Who the bot is talking to. A patient whose record lacks a name, CPF or phone is asked for
them (after one sentence of LGPD consent) at the start of the first dialogue that needs them;
each answer is saved on the patient's own user row as soon as it is valid.

A CPF that already belongs to another record is never linked automatically: whoever types
someone's CPF must not get their appointments and history (the same rule as the portal's
sign-up). The bot hands the conversation to a person, who checks and merges if it is right.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from bot.actions.common import database, hand_off, latest_intent, patient_id, plain
from handoff.identity import normalize_cpf, normalize_phone, phone_match_key
from models import PatientProfile, User, utcnow

IDENTITY_SLOTS = ("lgpd_consentimento", "nome", "cpf", "telefone")
_FIELD_OF_SLOT = {"nome": "name", "cpf": "cpf", "telefone": "phone_e164"}
_NAME_PREFIX = re.compile(
    r"^\s*(?:(?:o\s+)?meu\s+nome\s+(?:completo\s+)?(?:e|é)|me\s+chamo|eu\s+sou|sou\s+[oa]|sou"
    r"|nome\s*:?|[eé])\s+",
    re.IGNORECASE,
)
_NAME = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$")
_YES = {"sim", "s", "ss", "concordo", "aceito", "claro", "ok", "pode", "isso", "confirmo", "yes"}
_NO = {"nao", "n", "discordo", "nao concordo", "nao aceito", "negativo", "no"}


async def _load(patient: int) -> User | None:
    async with database().session() as session:
        query = select(User).where(User.id == patient).options(selectinload(User.patient_profile))
        return (await session.execute(query)).scalar_one_or_none()


async def missing_identity(patient: int | None) -> list[str]:
    """The identity slots still to ask, in order; consent only before the first data asked."""
    user = await _load(patient) if patient is not None else None
    if user is None:
        return list(IDENTITY_SLOTS)
    missing = [slot for slot, field in _FIELD_OF_SLOT.items() if not getattr(user, field)]
    profile = user.patient_profile
    if missing and (profile is None or profile.lgpd_consent_at is None):
        missing.insert(0, "lgpd_consentimento")
    return missing


async def patient_name(patient: int | None) -> str:
    user = await _load(patient) if patient is not None else None
    return (user.name if user else None) or ""


def yes_or_no(tracker: Tracker, text: str) -> bool | None:
    intent, _ = latest_intent(tracker)
    words = plain(text)
    if intent in ("afirmar", "confirmar_presenca") or words in _YES:
        return True
    if intent in ("negar", "desistir") or words in _NO:
        return False
    return None


def clean_name(text: str) -> str | None:
    """'meu nome é maria da silva' -> 'Maria da Silva'; None unless two or more words of
    letters (a full name)."""
    name = _NAME_PREFIX.sub("", text.strip()).strip(" .,!")
    words = name.split()
    if len(words) < 2 or len(name) > 160 or not all(_NAME.match(w) for w in words):
        return None
    particles = {"da", "de", "do", "das", "dos", "e"}
    return " ".join(w.lower() if w.lower() in particles else w.capitalize() for w in words)


# Words of questions and requests, which names do not contain (the intent model may read a
# name like "Fulano de Tal" as a question, and a question like "qual o endereço" is letters).
_NOT_IN_NAMES = {
    "qual", "quais", "quanto", "quantos", "onde", "como", "quando", "que", "porque", "tem",
    "voces", "vcs", "aceitam", "atendem", "posso", "preciso", "quero", "gostaria", "consulta",
    "convenio", "exame", "horario", "endereco", "valor", "preco", "clinica", "medico", "plano",
    "atendente", "pessoa", "humano", "sim", "nao", "oi", "ola", "obrigado", "obrigada",
}  # fmt: skip


def looks_like_a_name(text: str) -> bool:
    words = set(plain(text).split())
    return "?" not in text and clean_name(text) is not None and not words & _NOT_IN_NAMES


async def record_consent(patient: int) -> None:
    async with database().session() as session:
        profile = await session.get(PatientProfile, patient, with_for_update=True)
        if profile is None:
            session.add(PatientProfile(user_id=patient, lgpd_consent_at=utcnow()))
        elif profile.lgpd_consent_at is None:
            profile.lgpd_consent_at = utcnow()


async def save_name(patient: int, name: str) -> None:
    async with database().session() as session:
        user = await session.get(User, patient, with_for_update=True)
        user.name = name


async def save_phone(patient: int, phone: str) -> None:
    async with database().session() as session:
        user = await session.get(
            User, patient, with_for_update=True, options=[selectinload(User.patient_profile)]
        )
        user.phone_e164 = phone
        if user.patient_profile is not None:
            user.patient_profile.phone_match_key = phone_match_key(phone)


async def save_cpf(patient: int, cpf: str) -> bool:
    """Store the CPF on the patient's record; False when another record already holds it."""
    try:
        async with database().session() as session:
            owner = (
                await session.execute(select(User.id).where(User.cpf == cpf))
            ).scalar_one_or_none()
            if owner is not None and owner != patient:
                return False
            user = await session.get(User, patient, with_for_update=True)
            user.cpf = cpf
    except IntegrityError:  # taken by a concurrent sign-up
        return False
    return True


class IdentityValidation:
    """The identity half of every dialogue form: validators for consent, name, CPF and phone
    that save each valid answer at once."""

    async def validate_lgpd_consentimento(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        if value is None or isinstance(value, bool):
            return {"lgpd_consentimento": value}
        consent = yes_or_no(tracker, str(value))
        if consent is None:
            dispatcher.utter_message(response="utter_confirmacao_invalida")
            return {"lgpd_consentimento": None}
        if consent:
            patient = patient_id(tracker)
            if patient is not None:
                await record_consent(patient)
        else:
            dispatcher.utter_message(response="utter_sem_consentimento")
        return {"lgpd_consentimento": consent}

    async def validate_nome(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        if value is None:
            return {"nome": None}
        name = clean_name(str(value))
        if name is None:
            dispatcher.utter_message(response="utter_nome_invalido")
            return {"nome": None}
        patient = patient_id(tracker)
        if patient is not None:
            await save_name(patient, name)
        return {"nome": name}

    async def validate_cpf(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        if value is None:
            return {"cpf": None}
        cpf = normalize_cpf(str(value))
        if cpf is None:
            dispatcher.utter_message(response="utter_cpf_invalido")
            return {"cpf": None}
        patient = patient_id(tracker)
        if patient is not None and not await save_cpf(patient, cpf):
            dispatcher.utter_message(response="utter_cpf_de_outro_cadastro")
            # The form's run() sees the handoff and stops the dialogue.
            hand_off(dispatcher, tracker, "cpf_ja_cadastrado")
            return {"cpf": None}
        # Only a marker stays in the tracker: the CPF itself lives on the patient's record.
        return {"cpf": "informado"}

    async def validate_telefone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict
    ) -> dict[str, Any]:
        if value is None:
            return {"telefone": None}
        phone = normalize_phone(str(value))
        if phone is None:
            dispatcher.utter_message(response="utter_telefone_invalido")
            return {"telefone": None}
        patient = patient_id(tracker)
        if patient is not None:
            await save_phone(patient, phone)
        return {"telefone": "informado"}
