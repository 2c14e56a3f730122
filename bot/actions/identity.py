"""Who the bot is talking to. A patient whose record lacks a name, CPF or phone is asked for
them (after one sentence of LGPD consent) at the start of the first dialogue that needs them;
each answer is saved on the patient's own user row as soon as it is valid.

A CPF (or phone) that already belongs to another record is never linked on the patient's
word: whoever types someone's CPF must not get their appointments and history (the same rule
as the portal's sign-up). On channels whose ids carry no phone (Messenger, Instagram, the
widget) every CPF or phone typed is answered the same, so that nobody can learn whether it
is on a record: "se houver um cadastro, enviamos um código" (messaging/verification.py). The
code goes only to the verified channel of the record that has it (otherwise the claim is a
decoy and no code goes); the right one joins this conversation to the record, and "pular"
goes on without it (the CPF stays unasked and unsaved). On other channels a CPF of another
record hands the conversation to a person, who checks and merges if it is right.

After a join the conversation belongs to the known patient, whose id is Rasa's sender id
from the next message on; this tracker's dialogue ends, and the patient is offered to take
it up again (the identity questions are then already answered).
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Tracker
from rasa_sdk.types import DomainDict
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from accounts import consent
from bot.actions.common import (
    ClinicAction,
    channel,
    clinic_name,
    database,
    hand_off,
    latest_intent,
    now,
    patient_id,
    revealed,
)
from bot.emergency import plain
from core.contacts import normalize_cpf, normalize_phone
from core.settings import Settings
from messaging.redaction import NAME_WORD, could_be_a_name
from messaging.verification import (
    CLAIMABLE_CHANNELS,
    CODE_MINUTES,
    CONFIRM_IDENTITY,
    Check,
    check_code,
    open_claim,
    open_claim_of,
    skip_claim,
    skipped_kinds,
)
from models import ClaimKind, ClaimStatus, IdentityClaim, User

ASKED_FIRST = ("lgpd_consentimento", "nome", "cpf", "telefone")
# "codigo" is asked only while a claimed CPF or phone waits for its one-time code.
IDENTITY_SLOTS = (*ASKED_FIRST, "codigo")
# What validate_codigo leaves in the slot when the dialogue must end (the form's run stops).
CODE_LINKED, CODE_REFUSED = "confirmado", "recusado"
# After a link the dialogue ends in this tracker: the offer to take it up as the known patient.
RESUME = {
    "identificacao_form": "utter_retomar_identificacao_form",
    "agendamento_form": "utter_retomar_agendamento_form",
    "cancelamento_form": "utter_retomar_cancelamento_form",
    "remarcacao_form": "utter_retomar_remarcacao_form",
}
_FIELD_OF_SLOT = {"nome": "name", "cpf": "cpf", "telefone": "phone_e164"}
_NAME_PREFIX = re.compile(
    r"^\s*(?:(?:o\s+)?meu\s+nome\s+(?:completo\s+)?(?:e|é)|me\s+chamo|eu\s+sou|sou\s+[oa]|sou"
    r"|nome\s*:?|[eé])\s+",
    re.IGNORECASE,
)
# Said instead of a one-time code: go on without it.
_SKIP = {"pular", "pula", "pule", "pular codigo", "pular o codigo"}
_SLOT_OF_KIND = {ClaimKind.CPF: "cpf", ClaimKind.PHONE: "telefone"}
_YES = {"sim", "s", "ss", "concordo", "aceito", "claro", "ok", "pode", "isso", "confirmo", "yes"}
_NO = {"nao", "n", "discordo", "nao concordo", "nao aceito", "negativo", "no"}


async def _load(patient: int) -> User | None:
    async with database().session() as session:
        query = select(User).where(User.id == patient).options(selectinload(User.patient_profile))
        return (await session.execute(query)).scalar_one_or_none()


async def missing_identity(patient: int | None) -> list[str]:
    """The identity slots still to ask, in order; consent only before the first data asked."""
    user = await _load(patient) if patient is not None else None
    if user is None or not user.is_active:
        # Unknown, or merged into another patient: this tracker has nobody to ask about.
        return list(ASKED_FIRST)
    async with database().session() as session:
        skipped = {
            _SLOT_OF_KIND.get(ClaimKind(kind)) for kind in await skipped_kinds(session, user.id)
        }
    missing = [
        slot
        for slot, field in _FIELD_OF_SLOT.items()
        if not getattr(user, field) and slot not in skipped
    ]
    profile = user.patient_profile
    if missing and (profile is None or profile.lgpd_consent_at is None):
        missing.insert(0, "lgpd_consentimento")
    return missing


def is_skip(text: str) -> bool:
    return plain(text) in _SKIP


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
    if len(words) < 2 or len(name) > 160 or not all(NAME_WORD.match(w) for w in words):
        return None
    particles = {"da", "de", "do", "das", "dos", "e"}
    return " ".join(w.lower() if w.lower() in particles else w.capitalize() for w in words)


def looks_like_a_name(text: str) -> bool:
    """A full name, with none of the words of questions and requests (the intent model may
    read a name like "Fulano de Tal" as a question, and "qual o endereço" is letters)."""
    return could_be_a_name(text) and clean_name(text) is not None


async def record_consent(patient: int, on_channel: str) -> None:
    """The consent sentence the bot asks is the service purpose's current text."""
    async with database().session() as session:
        await consent.grant(session, patient, consent.SERVICE, channel=on_channel)


async def save_name(patient: int, name: str) -> None:
    async with database().session() as session:
        user = await session.get_one(User, patient, with_for_update=True)
        user.name = name


async def save_phone(patient: int, phone: str) -> None:
    """A typed phone is contact data, not proof: it gets no match key, so a WhatsApp or SMS
    identity with that number is never joined to this patient for it."""
    async with database().session() as session:
        user = await session.get_one(User, patient, with_for_update=True)
        user.phone_e164 = phone


async def save_cpf(patient: int, cpf: str) -> bool:
    """Store the CPF on the patient's record; False when another record already holds it."""
    try:
        async with database().session() as session:
            owner = (
                await session.execute(select(User.id).where(User.cpf == cpf))
            ).scalar_one_or_none()
            if owner is not None and owner != patient:
                return False
            user = await session.get_one(User, patient, with_for_update=True)
            user.cpf = cpf
    except IntegrityError:  # taken by a concurrent sign-up
        return False
    return True


def _code_secret() -> str:
    """The key of the codes' HMACs: the SESSION_SECRET the Rasa process hashes them with."""
    return Settings.from_env().session_secret


async def awaited_claim(tracker: Tracker) -> IdentityClaim | None:
    """The patient's claim whose one-time code the form asks for: open and in time, or
    expired while its question is pending (so that the answer is told it expired)."""
    patient = patient_id(tracker)
    if patient is None:
        return None
    async with database().session() as session:
        claim = await open_claim_of(session, patient)
    asking = tracker.get_slot("requested_slot") == "codigo"
    if claim is None or (claim.expires_at <= now() and not asking):
        return None
    return claim


class ActionAskLgpdConsentimento(ClinicAction):
    """The consent sentence names the clinic as written in the clinic profile."""

    def name(self) -> str:
        return "action_ask_lgpd_consentimento"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        dispatcher.utter_message(
            response="utter_ask_lgpd_consentimento", clinica=await clinic_name()
        )
        return []


class ActionAskCodigo(ClinicAction):
    """Asks for the one-time code. The first time, the question also asks the channel's
    Sender to send the code (the action server cannot deliver). It says the same whether
    the claim is real or a decoy: never where the code went."""

    def name(self) -> str:
        return "action_ask_codigo"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        claim = await awaited_claim(tracker)
        if claim is None:
            return []
        if claim.status == ClaimStatus.PENDING:
            send = {"identity_code": {"claim": claim.id}}
            dispatcher.utter_message(response="utter_codigo_enviado", json_message=send)
        else:
            dispatcher.utter_message(response="utter_ask_codigo")
        return []


class IdentityValidation:
    """The identity half of every dialogue form: validators for consent, name, CPF, phone
    and the one-time code that proves a claimed CPF or phone; each valid answer is saved at
    once."""

    async def validate_lgpd_consentimento(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
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
                await record_consent(patient, channel(tracker))
        else:
            dispatcher.utter_message(response="utter_sem_consentimento")
        return {"lgpd_consentimento": consent}

    async def validate_nome(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"nome": None}
        name = clean_name(await revealed(tracker, str(value)))
        if name is None:
            dispatcher.utter_message(response="utter_nome_invalido")
            return {"nome": None}
        patient = patient_id(tracker)
        if patient is not None:
            await save_name(patient, name)
        # Only a marker stays in the tracker: the name lives on the patient's record.
        return {"nome": "informado"}

    async def validate_cpf(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"cpf": None}
        cpf = normalize_cpf(await revealed(tracker, str(value)))
        if cpf is None:
            dispatcher.utter_message(response="utter_cpf_invalido")
            return {"cpf": None}
        if (claimed := await self.claim("cpf", tracker, cpf=cpf)) is not None:
            return claimed
        patient = patient_id(tracker)
        if patient is not None and not await save_cpf(patient, cpf):
            dispatcher.utter_message(response="utter_cpf_de_outro_cadastro")
            # The form's run() sees the handoff and stops the dialogue.
            hand_off(dispatcher, tracker, "cpf_ja_cadastrado")
            return {"cpf": None}
        # Only a marker stays in the tracker: the CPF itself lives on the patient's record.
        return {"cpf": "informado"}

    async def validate_telefone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None:
            return {"telefone": None}
        phone = normalize_phone(await revealed(tracker, str(value)))
        if phone is None:
            dispatcher.utter_message(response="utter_telefone_invalido")
            return {"telefone": None}
        patient = patient_id(tracker)
        if patient is not None:
            await save_phone(patient, phone)  # typed: it links nothing
        if (claimed := await self.claim("telefone", tracker, phone=phone)) is not None:
            return claimed
        return {"telefone": "informado"}

    async def claim(
        self,
        slot: str,
        tracker: Tracker,
        *,
        cpf: str | None = None,
        phone: str | None = None,
    ) -> dict[str, Any] | None:
        """On a channel whose ids carry no phone, any CPF or phone typed opens a claim (the
        form asks for the code next): a real one when another patient has it and can be
        sent a code, a decoy otherwise, so that the answer never tells which. Such a CPF is
        stored only when proved. None on other channels."""
        patient = patient_id(tracker)
        if patient is None or channel(tracker) not in CLAIMABLE_CHANNELS:
            return None
        async with database().session() as session:
            await open_claim(session, patient, cpf=cpf, phone=phone, now=now())
        return {slot: None}

    async def validate_codigo(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        claim = await awaited_claim(tracker) if value is not None else None
        if claim is None:
            return {"codigo": None}
        if is_skip(str(value)):
            async with database().session() as session:
                await skip_claim(session, claim.id)
            dispatcher.utter_message(response="utter_codigo_pulado")
            # The code question stays unanswered, so the form asks nothing more this turn:
            # the next identity question is asked here (the rest of the form asks its own).
            if (patient := patient_id(tracker)) is not None and (
                missing := await missing_identity(patient)
            ):
                dispatcher.utter_message(response=f"utter_ask_{missing[0]}")
            return {"codigo": None}
        async with database().session() as session:
            checked = await check_code(
                session, claim.id, str(value), secret=_code_secret(), now=now()
            )
        if checked.result == Check.LINKED:
            dispatcher.utter_message(response="utter_identidade_confirmada")
            if resume := RESUME.get(tracker.active_loop_name or ""):
                dispatcher.utter_message(response=resume)
            return {"codigo": CODE_LINKED}
        if checked.result == Check.WRONG:
            dispatcher.utter_message(response="utter_codigo_incorreto", restantes=checked.remaining)
        elif checked.result == Check.REFUSED:
            dispatcher.utter_message(response="utter_codigo_recusado")
            return {"codigo": CODE_REFUSED}
        elif checked.result == Check.EXPIRED:
            dispatcher.utter_message(response="utter_codigo_expirado", minutos=CODE_MINUTES)
        else:
            dispatcher.utter_message(response="utter_confirmar_identidade_com_equipe")
            hand_off(dispatcher, tracker, CONFIRM_IDENTITY)
        return {"codigo": None}
