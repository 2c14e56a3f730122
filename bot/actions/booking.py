"""The appointment dialogues: agendar, cancelar, remarcar, consultar and confirmar presença.

Every change goes through `scheduling.appointments` (book, cancel, reschedule, confirm); the agenda
is read through `scheduling.agenda`. Slots keep small JSON views of what was chosen, never
ORM rows.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.interfaces import Action, Tracker
from rasa_sdk.types import DomainDict
from sqlalchemy.ext.asyncio import AsyncSession

from bot.actions.common import (
    ClinicAction,
    booking_rules,
    channel,
    database,
    end_dialogue,
    entity,
    is_payload,
    latest_intent,
    latest_text,
    local,
    now,
    patient_id,
    show_moment,
    show_moment_short,
    show_window,
)
from bot.actions.faq import answer_questions_asked_with_a_request
from bot.actions.forms import DialogueForm, is_activation, requested
from bot.actions.identity import IDENTITY_SLOTS, missing_identity
from bot.emergency import plain
from models import (
    Appointment,
    AppointmentStatus,
    Specialty,
)
from scheduling.agenda import (
    find_doctor,
    find_specialty,
    nearest_slots,
    offered_specialties,
    serving,
)
from scheduling.appointments import (
    AppointmentNotFound,
    CapReached,
    ContactNotVerified,
    InvalidTransition,
    SlotTaken,
    TooManyChanges,
    book,
    cancel,
    check_may_book,
    confirm,
    reschedule,
    upcoming_for_patient,
)
from scheduling.reminders import last_reminded
from scheduling.when import TimeWindow, parse_when

_ASAP = re.compile(
    r"\b(qualquer (dia|data|horario|hora|momento|um)|tanto faz|o quanto antes|quanto antes"
    r"|(o )?mais (cedo|rapido|proximo|breve)( possivel)?|primeiro horario|proximo horario"
    r"|proxima vaga|primeira vaga|quando tiver|o que tiver)\b"
)
_TITLE = re.compile(r"\b(dr|dra|doutor|doutora|medico|medica)\b")
_ORDINALS = {"primeir": 1, "segund": 2, "terceir": 3, "quart": 4, "quint": 5}
_OPTION = re.compile(
    r"^(?:(?:a|o|opcao|numero|quero|vou de|pode ser|fico com)\s+)*(?:a|o|numero\s+)?(\d)\s*$"
)
# "segunda" alone is Monday; "a segunda" and "segunda opção" are the second option.
_ORDINAL = re.compile(
    r"\b(?:(?:a|o|opcao)\s+(primeir|segund|terceir|quart|quint)\w*"
    r"|(primeir|terceir)\w*|(segund)\w*\s+opcao)\b"
)
# Intents after which a mention of a specialty, doctor or date changes an earlier answer.
CHANGE_INTENTS = {"informar", "alterar", "negar", "agendar_consulta", "remarcar_consulta"}


# What the clinic's booking rules refuse (scheduling.appointments), in the bot's own words.
BookingRefused = CapReached | ContactNotVerified | TooManyChanges
_REFUSALS: dict[type[BookingRefused], str] = {
    CapReached: "utter_limite_consultas",
    ContactNotVerified: "utter_contato_nao_verificado",
    TooManyChanges: "utter_muitas_alteracoes",
}


def say_refused(dispatcher: CollectingDispatcher, refusal: BookingRefused) -> None:
    values: dict[str, Any] = dict(refusal.values)  # the values the response's text names
    dispatcher.utter_message(response=_REFUSALS[type(refusal)], **values)


# --- Shared readings of the patient's text --------------------------------------------


def option_number(text: str) -> int | None:
    """'2', 'opção 2', 'a segunda' -> 2 (1-based); None for anything else."""
    words = plain(text)
    if match := _OPTION.match(words):
        return int(match.group(1))
    if match := _ORDINAL.search(words):
        return _ORDINALS[next(stem for stem in match.groups() if stem)]
    return None


def wants_any_time(text: str) -> bool:
    return bool(_ASAP.search(plain(text)))


def window_of(quando: Any) -> TimeWindow | None:
    if not isinstance(quando, dict) or quando.get("qualquer"):
        return None
    return TimeWindow(
        datetime.fromisoformat(quando["inicio"]), datetime.fromisoformat(quando["fim"])
    )


async def professional_in(text: str, *, asked: bool) -> dict[str, Any] | None:
    """The specialty (and doctor, if one is named) the text means. Outside the question
    about it, a doctor counts only with a title ("dra ana"): surnames like "Dias" are
    everyday words."""
    async with database().session() as session:
        specialty = await find_specialty(session, text)
        if asked or _TITLE.search(plain(text)):
            doctor = await find_doctor(session, text)
            if doctor is not None:
                # A doctor of several specialties: the one named too, else the first.
                served = serving(doctor, specialty.id if specialty else None)
                return {
                    "especialidade": {"id": served.id, "nome": served.name},
                    "medico": {"id": doctor.id, "nome": doctor.name},
                }
    if specialty is None:
        return None
    return {"especialidade": {"id": specialty.id, "nome": specialty.name}, "medico": None}


def appointment_slot(appointment: Appointment) -> dict[str, Any]:
    """The `consulta` slot's value: what the dialogue shows and re-checks of the chosen
    appointment (pt-BR keys, kept in the tracker; not the entity's JSON, see models.views)."""
    return {
        "id": appointment.id,
        "medico_id": appointment.doctor_id,
        "medico": appointment.doctor.name,
        "especialidade": appointment.specialty.name,
        "inicio": appointment.starts_at.isoformat(),
        "status": str(appointment.status),
    }


async def upcoming(patient: int | None) -> list[Appointment]:
    if patient is None:
        return []
    async with database().session() as session:
        return await upcoming_for_patient(session, patient, now=now())


async def own_upcoming(patient: int | None, appointment_id: int) -> Appointment | None:
    """The patient's own active, future appointment with this id (ids in payloads and
    slots are never trusted to belong to the sender)."""
    return next((a for a in await upcoming(patient) if a.id == appointment_id), None)


async def reminded_appointment(patient: int | None) -> Appointment | None:
    """What a typed "confirmo" or "não vou poder ir" answers: the patient's upcoming
    appointment whose reminder went out last."""
    if patient is None:
        return None
    async with database().session() as session:
        return await last_reminded(session, patient, now=now())


def changed_this_turn(tracker: Tracker) -> bool:
    """Whether an earlier answer was just given again: extractors leave the raw text in the
    slot until the validators turn it into a choice, so a string means "new this turn"."""
    return any(
        isinstance(tracker.get_slot(s), str) for s in ("especialidade", "quando", "consulta")
    )


def appointment_id_entity(tracker: Tracker) -> int | None:
    raw = entity(tracker, "appointment_id") or entity(tracker, "consulta")
    return int(raw) if raw and raw.isdigit() else None


# --- Choosing a time: quando (free text) then horario (one of the offered slots) ------------


class ChoosesTime(DialogueForm):
    """quando + horario for the agendar and remarcar forms (abstract, a mixin)."""

    async def looks_like_answer(self, slot: str, tracker: Tracker) -> bool:
        text = latest_text(tracker)
        if slot == "quando":
            return parse_when(text, now()) is not None or wants_any_time(text)
        if slot == "horario":
            return await self.option_chosen(tracker) is not None
        return await super().looks_like_answer(slot, tracker)

    async def extract_confirmacao(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # "Não, prefiro sexta" at the confirmation is a new day, not a "no".
        if changed_this_turn(tracker) or latest_intent(tracker)[0] == "alterar":
            return {}
        return await super().extract_confirmacao(dispatcher, tracker, domain)

    async def option_chosen(self, tracker: Tracker) -> dict[str, Any] | None:
        options: list[dict[str, Any]] = tracker.get_slot("opcoes_horario") or []
        text = entity(tracker, "horario") or latest_text(tracker)
        for option in options:
            if text == f"{option['medico_id']}|{option['inicio']}":
                return option
        number = option_number(text)
        if number is not None:
            return options[number - 1] if 0 < number <= len(options) else None
        window = parse_when(text, now())
        if window is not None and window.is_exact:
            # "14h" picks the option at 14:00, whatever day the window put it on.
            clock = window.start.strftime("%H:%M")
            found = [
                o
                for o in options
                if local(datetime.fromisoformat(o["inicio"])).strftime("%H:%M") == clock
            ]
            return found[0] if len(found) == 1 else None
        return None

    async def extract_quando(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        asked = requested(tracker)
        if asked == "quando":
            return await self.answer("quando", tracker)
        if asked in IDENTITY_SLOTS or is_payload(tracker):
            return {}
        intent, _ = latest_intent(tracker)
        text = latest_text(tracker)
        if not (is_activation(tracker) or intent in CHANGE_INTENTS):
            return {}
        if asked == "horario" and await self.option_chosen(tracker) is not None:
            return {}
        if parse_when(text, now()) is not None or wants_any_time(text):
            return {"quando": text}
        if intent == "alterar" and re.search(r"\b(dia|data|horario|hora|outr)", plain(text)):
            return {"quando": None}
        return {}

    async def validate_quando(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        cleared = {"horario": None, "opcoes_horario": None, "confirmacao": None}
        if value is None or isinstance(value, dict):
            return {"quando": value, **cleared} if value is None else {"quando": value}
        text = str(value)
        if wants_any_time(text):
            return {"quando": {"qualquer": True}, **cleared}
        window = parse_when(text, now())
        if window is None or window.end < now():
            response = "utter_quando_invalido" if window is None else "utter_quando_passado"
            dispatcher.utter_message(response=response)
            return {"quando": None, **cleared}
        quando = {"inicio": window.start.isoformat(), "fim": window.end.isoformat()}
        return {"quando": quando, **cleared}

    async def extract_horario(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if requested(tracker) != "horario":
            return {}
        if entity(tracker, "horario"):
            return {"horario": entity(tracker, "horario")}
        if changed_this_turn(tracker) or await self.interrupts("horario", tracker):
            return {}
        text = latest_text(tracker)
        if await self.option_chosen(tracker) is None:
            intent, _ = latest_intent(tracker)
            # A new day or "outro horário" is read by extract_quando, not as a bad choice.
            if parse_when(text, now()) or wants_any_time(text) or intent == "alterar":
                return {}
        return {"horario": text}

    async def validate_horario(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None or isinstance(value, dict):
            return {"horario": value}
        option = await self.option_chosen(tracker)
        if option is None:
            dispatcher.utter_message(response="utter_horario_invalido")
        return {"horario": option, "confirmacao": None}


class ChoosesAppointment(DialogueForm):
    """consulta: which of the patient's upcoming appointments (cancelar, remarcar; abstract,
    a mixin)."""

    async def looks_like_answer(self, slot: str, tracker: Tracker) -> bool:
        if slot == "consulta":
            text = latest_text(tracker)
            return option_number(text) is not None or parse_when(text, now()) is not None
        return await super().looks_like_answer(slot, tracker)

    async def extract_consulta(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        chosen = appointment_id_entity(tracker)
        if chosen is not None:
            return {"consulta": f"#{chosen}"}
        if is_activation(tracker):
            # "Não vou poder ir" after a reminder means that appointment; a patient with a
            # single upcoming appointment means that one.
            patient = patient_id(tracker)
            reminded = await reminded_appointment(patient)
            if reminded is not None:
                return {"consulta": f"#{reminded.id}"}
            appointments = await upcoming(patient)
            return {"consulta": f"#{appointments[0].id}"} if len(appointments) == 1 else {}
        return await self.answer("consulta", tracker)

    async def validate_consulta(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None or isinstance(value, dict):
            return {"consulta": value}
        patient, text = patient_id(tracker), str(value)
        appointments = await upcoming(patient)
        chosen = None
        if text.startswith("#") and text[1:].isdigit():
            chosen = next((a for a in appointments if a.id == int(text[1:])), None)
        elif (number := option_number(text)) is not None:
            offered = tracker.get_slot("opcoes_consulta") or []
            if 0 < number <= len(offered):
                chosen = next((a for a in appointments if a.id == offered[number - 1]), None)
        elif (window := parse_when(text, now())) is not None:
            inside = [a for a in appointments if window.start <= a.starts_at <= window.end]
            day = [
                a
                for a in appointments
                if a.starts_at.astimezone(window.start.tzinfo).date() == window.start.date()
            ]
            matches = inside or day
            chosen = matches[0] if len(matches) == 1 else None
        if chosen is None:
            dispatcher.utter_message(response="utter_consulta_invalida")
            return {"consulta": None}
        return {"consulta": appointment_slot(chosen)}


# --- The forms' validation actions ----------------------------------------------------


class ValidateIdentificacaoForm(DialogueForm):
    def name(self) -> str:
        return "validate_identificacao_form"


class ValidateAgendamentoForm(ChoosesTime, DialogueForm):
    def name(self) -> str:
        return "validate_agendamento_form"

    async def looks_like_answer(self, slot: str, tracker: Tracker) -> bool:
        if slot == "especialidade":
            return await professional_in(latest_text(tracker), asked=True) is not None
        return await super().looks_like_answer(slot, tracker)

    async def extract_especialidade(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        asked = requested(tracker)
        named = entity(tracker, "especialidade")
        # The model's entity when the agenda knows it; else the patient's own words are read
        # against the agenda (specialties and doctors added since the model was trained).
        if named and await professional_in(named, asked=True):
            return {"especialidade": named}
        if asked == "especialidade":
            return await self.answer("especialidade", tracker)
        if asked in IDENTITY_SLOTS or is_payload(tracker):
            return {}
        intent, _ = latest_intent(tracker)
        text = latest_text(tracker)
        if (is_activation(tracker) or intent in CHANGE_INTENTS) and await professional_in(
            text, asked=False
        ):
            return {"especialidade": text}
        return {}

    async def validate_especialidade(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value is None or isinstance(value, dict):
            return {"especialidade": value}
        found = await professional_in(str(value), asked=True)
        if found is None:
            async with database().session() as session:
                names = [s.name for s in await offered_specialties(session)]
            dispatcher.utter_message(
                response="utter_especialidade_desconhecida", especialidades=", ".join(names)
            )
            return {"especialidade": None, "medico": None}
        return {**found, "horario": None, "opcoes_horario": None, "confirmacao": None}

    async def validate_confirmacao(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        answer = await super().validate_confirmacao(value, dispatcher, tracker, domain)
        if answer["confirmacao"] is False:
            # Not this time: offer the times again rather than ending the booking.
            dispatcher.utter_message(response="utter_agendamento_nao_confirmado")
            return {"confirmacao": None, "horario": None}
        return answer


class ValidateCancelamentoForm(ChoosesAppointment, DialogueForm):
    def name(self) -> str:
        return "validate_cancelamento_form"


class ValidateRemarcacaoForm(ChoosesAppointment, ChoosesTime, DialogueForm):
    def name(self) -> str:
        return "validate_remarcacao_form"


# --- Questions with options from the agenda -------------------------------------------


class ActionAskEspecialidade(ClinicAction):
    def name(self) -> str:
        return "action_ask_especialidade"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        async with database().session() as session:
            specialties = await offered_specialties(session)
        buttons = [
            {"title": s.name, "payload": f'/informar{{"especialidade":"{s.slug}"}}'}
            for s in specialties
        ]
        dispatcher.utter_message(response="utter_ask_especialidade", buttons=buttons)
        return []


def _search_criteria(tracker: Tracker) -> dict[str, int]:
    """Same doctor when rescheduling; the chosen doctor or specialty when booking."""
    consulta = tracker.get_slot("consulta")
    if tracker.active_loop_name == "remarcacao_form" and isinstance(consulta, dict):
        return {"doctor_id": consulta["medico_id"]}
    medico, especialidade = tracker.get_slot("medico"), tracker.get_slot("especialidade")
    if isinstance(medico, dict):
        return {"doctor_id": medico["id"]}
    if isinstance(especialidade, dict):
        return {"specialty_id": especialidade["id"]}
    return {}


def _who(tracker: Tracker) -> str:
    consulta, medico = tracker.get_slot("consulta"), tracker.get_slot("medico")
    if tracker.active_loop_name == "remarcacao_form" and isinstance(consulta, dict):
        return str(consulta["medico"])
    if isinstance(medico, dict):
        return str(medico["nome"])
    especialidade = tracker.get_slot("especialidade")
    return especialidade["nome"] if isinstance(especialidade, dict) else "a clínica"


async def _check_may_book(session: AsyncSession, tracker: Tracker) -> None:
    """When booking: whether the patient may book in the chosen specialty at all (the booking
    itself checks again)."""
    especialidade, patient = tracker.get_slot("especialidade"), patient_id(tracker)
    if tracker.active_loop_name != "agendamento_form" or patient is None:
        return
    if not isinstance(especialidade, dict):
        return
    specialty = await session.get(Specialty, especialidade["id"])
    if specialty is not None:
        await check_may_book(
            session,
            booking_rules(),
            patient_id=patient,
            specialty=specialty,
            self_service=True,
            now=now(),
        )


class ActionAskHorario(ClinicAction):
    """Offers the nearest free slots of the window as buttons (or the nearest after it)."""

    def name(self) -> str:
        return "action_ask_horario"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        window, moment = window_of(tracker.get_slot("quando")), now()
        criteria = _search_criteria(tracker)
        async with database().session() as session:
            try:
                await _check_may_book(session, tracker)
            except (CapReached, ContactNotVerified) as refusal:
                # Said before any time is offered, rather than at the confirmation.
                say_refused(dispatcher, refusal)
                return end_dialogue(tracker)
            slots, in_window = await nearest_slots(session, now=moment, window=window, **criteria)
        response = "utter_oferecer_horarios" if in_window else "utter_oferecer_horarios_proximos"
        if not slots:
            dispatcher.utter_message(response="utter_sem_horarios", profissional=_who(tracker))
            return end_dialogue(tracker)
        one_doctor = len({s.doctor_id for s in slots}) == 1
        options, buttons = [], []
        for slot in slots:
            option = {
                "medico_id": slot.doctor_id,
                "medico": slot.doctor_name,
                "especialidade_id": slot.specialty_id,
                "especialidade": slot.specialty_name,
                "inicio": slot.starts_at.isoformat(),
            }
            options.append(option)
            title = show_moment_short(slot.starts_at)
            if not one_doctor:
                title += f" · {slot.doctor_name}"
            value = f"{slot.doctor_id}|{option['inicio']}"
            buttons.append({"title": title, "payload": f'/informar{{"horario":"{value}"}}'})
        dispatcher.utter_message(response=response, quando=show_window(window), buttons=buttons)
        return [SlotSet("opcoes_horario", options)]


class ActionAskConsulta(ClinicAction):
    def name(self) -> str:
        return "action_ask_consulta"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        appointments = await upcoming(patient_id(tracker))
        if not appointments:
            dispatcher.utter_message(response="utter_sem_consultas")
            return end_dialogue(tracker)
        buttons = [
            {
                "title": f"{show_moment_short(a.starts_at)} · {a.doctor.name}",
                "payload": f'/informar{{"consulta":"{a.id}"}}',
            }
            for a in appointments[:5]
        ]
        dispatcher.utter_message(response="utter_ask_consulta", buttons=buttons)
        return [SlotSet("opcoes_consulta", [a.id for a in appointments[:5]])]


class ActionAskConfirmacao(Action):
    """The summary to confirm, for whichever form asks."""

    def name(self) -> str:
        return "action_ask_confirmacao"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        form = tracker.active_loop_name
        consulta: dict[str, Any] = tracker.get_slot("consulta") or {}
        horario: dict[str, Any] = tracker.get_slot("horario") or {}
        if form == "cancelamento_form":
            dispatcher.utter_message(
                response="utter_ask_confirmacao_cancelamento",
                especialidade=consulta["especialidade"],
                medico=consulta["medico"],
                horario=show_moment(datetime.fromisoformat(consulta["inicio"])),
            )
        elif form == "remarcacao_form":
            dispatcher.utter_message(
                response="utter_ask_confirmacao_remarcacao",
                antes=show_moment(datetime.fromisoformat(consulta["inicio"])),
                horario=show_moment(datetime.fromisoformat(horario["inicio"])),
                medico=horario["medico"],
            )
        else:
            dispatcher.utter_message(
                response="utter_ask_confirmacao_agendamento",
                especialidade=horario["especialidade"],
                medico=horario["medico"],
                horario=show_moment(datetime.fromisoformat(horario["inicio"])),
            )
        return []


# --- Starting and finishing the dialogues ---------------------------------------------


class ActionIniciarDialogo(ClinicAction):
    """Starts each dialogue clean: leaves any other form and forgets its answers. Questions
    asked in the same message ("aceitam unimed? quero marcar") are answered first."""

    def name(self) -> str:
        return "action_iniciar_dialogo"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        await answer_questions_asked_with_a_request(dispatcher, tracker)
        return end_dialogue(tracker)


def _offer_again(form: str) -> list[EventType]:
    """The chosen time was taken meanwhile: back to the form, which offers new times."""
    return [
        SlotSet("horario", None),
        SlotSet("opcoes_horario", None),
        SlotSet("confirmacao", None),
        FollowupAction(form),
    ]


class ActionConcluirAgendamento(ClinicAction):
    def name(self) -> str:
        return "action_concluir_agendamento"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        horario, patient = tracker.get_slot("horario"), patient_id(tracker)
        if tracker.get_slot("confirmacao") is not True or not horario or patient is None:
            return end_dialogue(tracker)  # the form ended without a booking (e.g. no consent)
        starts_at = datetime.fromisoformat(horario["inicio"])
        try:
            await book(
                database(),
                booking_rules(),
                patient_id=patient,
                doctor_id=horario["medico_id"],
                specialty_id=horario.get("especialidade_id"),
                starts_at=starts_at,
                channel=channel(tracker),
                self_service=True,
            )
        except SlotTaken:
            dispatcher.utter_message(response="utter_horario_ocupado")
            return _offer_again("agendamento_form")
        except (CapReached, ContactNotVerified, TooManyChanges) as refusal:
            say_refused(dispatcher, refusal)
            return end_dialogue(tracker)
        dispatcher.utter_message(
            response="utter_agendado",
            especialidade=horario["especialidade"],
            medico=horario["medico"],
            horario=show_moment(starts_at),
        )
        return end_dialogue(tracker)


class ActionConcluirCancelamento(ClinicAction):
    def name(self) -> str:
        return "action_concluir_cancelamento"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        consulta, answer = tracker.get_slot("consulta"), tracker.get_slot("confirmacao")
        if not isinstance(consulta, dict) or answer is None:
            return end_dialogue(tracker)
        if answer is False:
            dispatcher.utter_message(response="utter_cancelamento_desfeito")
            return end_dialogue(tracker)
        # Re-checked at the last moment: the id came through the conversation.
        if await own_upcoming(patient_id(tracker), consulta["id"]) is None:
            dispatcher.utter_message(response="utter_consulta_invalida")
            return end_dialogue(tracker)
        try:
            await cancel(
                database(),
                consulta["id"],
                channel=channel(tracker),
                reason="pedido pelo paciente",
                paced_by=booking_rules(),
            )
        except (AppointmentNotFound, InvalidTransition):
            dispatcher.utter_message(response="utter_consulta_invalida")
            return end_dialogue(tracker)
        except TooManyChanges as refusal:
            say_refused(dispatcher, refusal)
            return end_dialogue(tracker)
        dispatcher.utter_message(
            response="utter_cancelado",
            especialidade=consulta["especialidade"],
            medico=consulta["medico"],
            horario=show_moment(datetime.fromisoformat(consulta["inicio"])),
        )
        return end_dialogue(tracker)


class ActionConcluirRemarcacao(ClinicAction):
    def name(self) -> str:
        return "action_concluir_remarcacao"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        consulta, horario = tracker.get_slot("consulta"), tracker.get_slot("horario")
        answer = tracker.get_slot("confirmacao")
        if not isinstance(consulta, dict) or not isinstance(horario, dict) or answer is None:
            return end_dialogue(tracker)
        if answer is False:
            dispatcher.utter_message(response="utter_remarcacao_desfeita")
            return end_dialogue(tracker)
        if await own_upcoming(patient_id(tracker), consulta["id"]) is None:
            dispatcher.utter_message(response="utter_consulta_invalida")
            return end_dialogue(tracker)
        starts_at = datetime.fromisoformat(horario["inicio"])
        try:
            await reschedule(
                database(),
                booking_rules(),
                consulta["id"],
                starts_at=starts_at,
                doctor_id=horario["medico_id"],
                channel=channel(tracker),
                self_service=True,
            )
        except SlotTaken:
            dispatcher.utter_message(response="utter_horario_ocupado")
            return _offer_again("remarcacao_form")
        except (CapReached, TooManyChanges) as refusal:
            say_refused(dispatcher, refusal)
            return end_dialogue(tracker)
        except (AppointmentNotFound, InvalidTransition):
            dispatcher.utter_message(response="utter_consulta_invalida")
            return end_dialogue(tracker)
        dispatcher.utter_message(
            response="utter_remarcado", horario=show_moment(starts_at), medico=horario["medico"]
        )
        return end_dialogue(tracker)


class ActionListarConsultas(ClinicAction):
    def name(self) -> str:
        return "action_listar_consultas"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        patient = patient_id(tracker)
        if await missing_identity(patient):
            return end_dialogue(tracker)  # identification did not finish (e.g. no consent)
        appointments = await upcoming(patient)
        if not appointments:
            dispatcher.utter_message(response="utter_sem_consultas")
            return end_dialogue(tracker)
        lines = []
        for a in appointments:
            status = " (confirmada)" if a.status == AppointmentStatus.CONFIRMED else ""
            lines.append(
                f"• {show_moment(a.starts_at)}: {a.specialty.name} com {a.doctor.name}{status}"
            )
        dispatcher.utter_message(response="utter_lista_consultas", consultas="\n".join(lines))
        return end_dialogue(tracker)


async def confirm_presence(
    dispatcher: CollectingDispatcher, tracker: Tracker, appointment_id: int | None
) -> list[EventType]:
    """Confirm the given appointment (it must be the sender's), else the one last reminded,
    else the only one not confirmed yet (or the next one, already confirmed); with several
    to confirm and no reminder, ask which."""
    patient = patient_id(tracker)
    if appointment_id is not None:
        appointment = await own_upcoming(patient, appointment_id)
    else:
        appointment = await reminded_appointment(patient)
        if appointment is None:
            appointments = await upcoming(patient)
            pending = [a for a in appointments if a.status != AppointmentStatus.CONFIRMED]
            if len(pending) > 1:
                buttons = [
                    {
                        "title": f"{show_moment_short(a.starts_at)} · {a.doctor.name}",
                        "payload": f'/confirmar_presenca{{"appointment_id":"{a.id}"}}',
                    }
                    for a in pending[:5]
                ]
                dispatcher.utter_message(response="utter_qual_consulta_confirmar", buttons=buttons)
                return []
            appointment = next(iter(pending or appointments), None)
    if appointment is None:
        dispatcher.utter_message(response="utter_nada_para_confirmar")
        return []
    values: dict[str, Any] = {
        "horario": show_moment(appointment.starts_at),
        "medico": appointment.doctor.name,
    }
    if appointment.status == AppointmentStatus.CONFIRMED:
        dispatcher.utter_message(response="utter_ja_confirmada", **values)
        return []
    try:
        await confirm(database(), appointment.id, channel=channel(tracker))
    except (AppointmentNotFound, InvalidTransition):
        dispatcher.utter_message(response="utter_nada_para_confirmar")
        return []
    dispatcher.utter_message(response="utter_confirmacao_presenca", **values)
    return []


class ActionConfirmarPresenca(ClinicAction):
    def name(self) -> str:
        return "action_confirmar_presenca"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return await confirm_presence(dispatcher, tracker, appointment_id_entity(tracker))
