"""The assistant's custom actions on a real database: identity, FAQ from the clinic profile,
CSAT, presence confirmation, typed options, fallback and emergencies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rasa_sdk.events import ConversationPaused, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from bot.actions.booking import (
    ActionAskHorario,
    ActionConcluirAgendamento,
    ActionConcluirCancelamento,
    ActionConfirmarPresenca,
    ActionIniciarDialogo,
    ValidateAgendamentoForm,
    appointment_slot,
    option_number,
    upcoming,
)
from bot.actions.common import use_booking_rules
from bot.actions.csat import ActionRegistrarAvaliacao
from bot.actions.faq import ActionResponderFaq
from bot.actions.forms import DialogueForm
from bot.actions.greeting import ActionSaudacao
from bot.actions.handoff import ActionForaDoEscopo, ActionNaoEntendi, ActionTransferirAtendente
from bot.actions.identity import ActionAskLgpdConsentimento, clean_name, missing_identity
from bot.actions.options import ActionResponderOpcao
from bot.emergency import looks_like_emergency
from messaging.history import record_outbound
from models import (
    Appointment,
    AppointmentStatus,
    AuthorKind,
    ChannelIdentity,
    ClinicProfile,
    Conversation,
    ConversationStatus,
    PatientProfile,
    Reminder,
    ReminderStatus,
    User,
    utcnow,
)
from scheduling.agenda import find_slots
from scheduling.appointments import book, confirm
from tests.bot.conftest import handoff_of, new_patient, sent, tracker
from tests.factories import clinic_rules

VALID_CPF = "529.982.247-25"


class Form(DialogueForm):
    def name(self) -> str:
        return "validate_identificacao_form"


async def _validate(slot: str, value: str, patient: User, **tracker_args) -> tuple:
    dispatcher = CollectingDispatcher()
    method = getattr(Form(), f"validate_{slot}")
    result = await method(value, dispatcher, tracker(patient.id, value, **tracker_args), {})
    return result, dispatcher


async def _user(clinic, patient_id: int) -> User:
    async with clinic.db.session() as session:
        return await session.get(User, patient_id)


# --- The clinic's name -------------------------------------------------------------------


async def test_the_greeting_and_the_consent_question_name_the_clinic_from_its_profile(
    clinic_db,
):
    async with clinic_db.db.session() as session:
        profile = (await session.execute(select(ClinicProfile))).scalar_one()
        profile.name = "Clínica Bem Viver"
    greeting, consent = CollectingDispatcher(), CollectingDispatcher()

    await ActionSaudacao().run(greeting, tracker(1, "oi", intent="saudacao"), {})
    await ActionAskLgpdConsentimento().run(consent, tracker(1, "quero marcar"), {})

    assert [(m["response"], m["clinica"]) for m in greeting.messages + consent.messages] == [
        ("utter_saudacao", "Clínica Bem Viver"),
        ("utter_ask_lgpd_consentimento", "Clínica Bem Viver"),
    ]


# --- Identity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "name"),
    [
        ("maria da silva", "Maria da Silva"),
        ("Meu nome é João Pereira", "João Pereira"),
        ("me chamo ana paula souza", "Ana Paula Souza"),
        ("Maria", None),
        ("não", None),
        ("529.982.247-25", None),
    ],
)
def test_a_full_name_is_required_and_tidied(typed, name):
    assert clean_name(typed) == name


@pytest.mark.parametrize(
    "typed", ["529.982.247-24", "111.111.111-11", "000.000.000-00", "1234567890", "cpf"]
)
async def test_a_cpf_with_wrong_check_digits_or_repeated_digits_is_refused(clinic_db, typed):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")

    result, dispatcher = await _validate("cpf", typed, patient)

    assert result == {"cpf": None}
    assert sent(dispatcher) == ["utter_cpf_invalido"]
    assert (await _user(clinic_db, patient.id)).cpf is None


async def test_a_valid_cpf_is_saved_on_the_patients_own_record_only(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")

    # On a channel that proves a phone (on the widget a typed CPF waits for a code).
    result, dispatcher = await _validate("cpf", VALID_CPF, patient, input_channel="whatsapp")

    assert result == {"cpf": "informado"}  # the tracker never keeps the number itself
    assert dispatcher.messages == []
    assert (await _user(clinic_db, patient.id)).cpf == "52998224725"


async def test_a_cpf_of_another_record_is_never_linked_and_a_person_is_called(clinic_db):
    owner = await new_patient(clinic_db.db, name="Dona do CPF", cpf="52998224725")
    stranger = await new_patient(clinic_db.db)

    # On a channel that proves a phone (the code flow is for Messenger, Instagram, widget).
    result, dispatcher = await _validate("cpf", VALID_CPF, stranger, input_channel="whatsapp")

    assert result == {"cpf": None}
    assert sent(dispatcher) == ["utter_cpf_de_outro_cadastro", "handoff"]
    assert handoff_of(dispatcher)["reason"] == "cpf_ja_cadastrado"
    assert (await _user(clinic_db, stranger.id)).cpf is None
    assert (await _user(clinic_db, owner.id)).name == "Dona do CPF"


async def test_a_typed_phone_is_stored_in_e164_without_a_match_key(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")

    result, _ = await _validate("telefone", "(11) 98765-4321", patient, input_channel="whatsapp")

    assert result == {"telefone": "informado"}
    async with clinic_db.db.session() as session:
        user = await session.get(User, patient.id)
        profile = await session.get(PatientProfile, patient.id)
    assert user.phone_e164 == "+5511987654321"
    assert profile.phone_match_key is None


async def test_consent_is_recorded_with_its_time(clinic_db):
    patient = await new_patient(clinic_db.db)

    result, _ = await _validate("lgpd_consentimento", "sim", patient, intent="afirmar")

    assert result == {"lgpd_consentimento": True}
    async with clinic_db.db.session() as session:
        assert (await session.get(PatientProfile, patient.id)).lgpd_consent_at is not None


async def test_refusing_consent_saves_nothing(clinic_db):
    patient = await new_patient(clinic_db.db)

    result, dispatcher = await _validate("lgpd_consentimento", "não", patient, intent="negar")

    assert result == {"lgpd_consentimento": False}
    assert sent(dispatcher) == ["utter_sem_consentimento"]
    async with clinic_db.db.session() as session:
        assert (await session.get(PatientProfile, patient.id)).lgpd_consent_at is None


async def test_only_what_the_record_lacks_is_asked(clinic_db):
    unknown = await new_patient(clinic_db.db)
    from_whatsapp = await new_patient(clinic_db.db, name="Ana Lima", phone="+5511912345678")
    complete = await new_patient(
        clinic_db.db, name="Ana Lima", phone="+5511912345678", cpf="39053344705"
    )

    assert await missing_identity(unknown.id) == ["lgpd_consentimento", "nome", "cpf", "telefone"]
    assert await missing_identity(from_whatsapp.id) == ["lgpd_consentimento", "cpf"]
    assert await missing_identity(complete.id) == []


# --- FAQ from the clinic profile ------------------------------------------------------


async def _faq(clinic, key: str, text: str = "?") -> str:
    dispatcher = CollectingDispatcher()
    await ActionResponderFaq().run(dispatcher, tracker(1, text, intent="faq", faq_key=key), {})
    [message] = dispatcher.messages
    return message


async def test_faq_answers_come_from_the_clinic_profile(clinic_db):
    hours = await _faq(clinic_db, "horario")
    plans = await _faq(clinic_db, "convenios")

    assert hours["response"] == "utter_resposta_horario"
    assert "segunda a sexta, das 8h às 18h" in hours["horario"]
    assert "Unimed" in plans["convenios"]


def _asking(text: str, intent: str, faq_keys: list[str]):
    """The tracker of a message the connector read as several asks."""
    asked = tracker(1, text, intent=intent, faq_key=faq_keys[0])
    asked.latest_message["faq_keys"] = faq_keys
    return asked


async def test_every_faq_question_of_a_message_is_answered_in_order(clinic_db):
    dispatcher = CollectingDispatcher()
    asked = _asking("quanto custa? aceitam unimed?", "faq", ["valores", "convenios"])

    await ActionResponderFaq().run(dispatcher, asked, {})

    assert sent(dispatcher) == ["utter_resposta_valores", "utter_resposta_convenios"]
    assert "Unimed" in dispatcher.messages[1]["convenios"]


async def test_questions_asked_with_a_booking_are_answered_before_it_starts(clinic_db):
    dispatcher = CollectingDispatcher()
    asked = _asking("onde fica? quero marcar", "agendar_consulta", ["endereco"])

    await ActionIniciarDialogo().run(dispatcher, asked, {})

    assert sent(dispatcher) == ["utter_resposta_endereco"]


async def test_questions_asked_with_a_request_for_a_person_come_before_the_handoff(clinic_db):
    dispatcher = CollectingDispatcher()
    asked = _asking("horário? quero uma atendente", "falar_com_atendente", ["horario"])

    events = await ActionTransferirAtendente().run(dispatcher, asked, {})

    assert sent(dispatcher) == ["utter_resposta_horario", "utter_transferindo", "handoff"]
    assert ConversationPaused() in events


async def test_changing_the_profile_changes_the_answer_without_retraining(clinic_db):
    async with clinic_db.db.session() as session:
        profile = (await session.execute(select(ClinicProfile))).scalar_one()
        profile.data = {**profile.data, "convenios": ["Cassi", "Geap"]}

    plans = await _faq(clinic_db, "convenios")

    assert plans["convenios"] == "Cassi e Geap"


async def test_a_fact_missing_from_the_profile_falls_back_to_the_generic_answer(clinic_db):
    async with clinic_db.db.session() as session:
        profile = (await session.execute(select(ClinicProfile))).scalar_one()
        profile.data = {k: v for k, v in profile.data.items() if k != "valores"}

    assert (await _faq(clinic_db, "valores"))["response"] == "utter_faq/valores"


async def test_profile_fields_edited_as_plain_text_are_answered_as_written(clinic_db):
    async with clinic_db.db.session() as session:
        profile = (await session.execute(select(ClinicProfile))).scalar_one()
        profile.data = {
            **profile.data,
            "horario": "todos os dias, das 7h às 19h",
            "convenios": "Unimed",
            "valores": "consulte a recepção",
        }

    assert (await _faq(clinic_db, "horario"))["horario"] == "todos os dias, das 7h às 19h"
    assert (await _faq(clinic_db, "convenios"))["convenios"] == "Unimed"
    prices = await _faq(clinic_db, "valores")
    assert (prices["response"], prices["texto"]) == ("utter_resposta_livre", "consulte a recepção")


async def test_exam_preparation_names_the_exam_asked_about(clinic_db):
    answer = await _faq(clinic_db, "preparo_exame", "qual o preparo do ultrassom?")

    assert answer["preparos"].startswith("• ultrassom abdominal: jejum de 6 horas")
    assert "exame de sangue" not in answer["preparos"]


async def test_specialties_are_listed_from_the_agenda_with_their_doctors(clinic_db):
    answer = await _faq(clinic_db, "especialidades")

    assert "• Cardiologia: Dr. Ricardo Alves" in answer["especialidades"]


# --- Satisfaction score ---------------------------------------------------------------


async def _identity_id(session, patient_id: int) -> int:
    query = select(ChannelIdentity.id).where(ChannelIdentity.patient_id == patient_id)
    return (await session.execute(query)).scalar_one()


async def _conversation(clinic, patient: User, *, resolved_minutes_ago: int | None = None) -> int:
    async with clinic.db.session() as session:
        conversation = Conversation(
            patient_id=patient.id,
            channel="webchat",
            channel_identity_id=await _identity_id(session, patient.id),
        )
        if resolved_minutes_ago is not None:
            resolved = utcnow() - timedelta(minutes=resolved_minutes_ago)
            conversation.status = ConversationStatus.CLOSED
            conversation.resolved_at = conversation.closed_at = resolved
        session.add(conversation)
        await session.flush()
        return conversation.id


async def test_the_score_is_stored_on_the_most_recently_resolved_conversation(clinic_db):
    patient = await new_patient(clinic_db.db)
    older = await _conversation(clinic_db, patient, resolved_minutes_ago=300)
    latest = await _conversation(clinic_db, patient, resolved_minutes_ago=2)
    dispatcher = CollectingDispatcher()

    await ActionRegistrarAvaliacao().run(
        dispatcher, tracker(patient.id, "/avaliar", intent="avaliar", entities={"nota": "4"}), {}
    )

    async with clinic_db.db.session() as session:
        assert (await session.get(Conversation, latest)).csat_score == 4
        assert (await session.get(Conversation, older)).csat_score is None
    assert sent(dispatcher) == ["utter_avaliacao_registrada"]


async def test_a_score_given_days_after_the_resolution_is_not_stored(clinic_db):
    patient = await new_patient(clinic_db.db)
    long_ago = await _conversation(clinic_db, patient, resolved_minutes_ago=3 * 24 * 60)
    dispatcher = CollectingDispatcher()

    await ActionRegistrarAvaliacao().run(
        dispatcher, tracker(patient.id, "/avaliar", intent="avaliar", entities={"nota": "1"}), {}
    )

    async with clinic_db.db.session() as session:
        assert (await session.get(Conversation, long_ago)).csat_score is None
    assert sent(dispatcher) == ["utter_avaliacao_sem_atendimento"]


@pytest.mark.parametrize("typed", ["nota 0", "nota 10", "ótimo"])
async def test_a_score_outside_one_to_five_is_asked_again(clinic_db, typed):
    patient = await new_patient(clinic_db.db)
    await _conversation(clinic_db, patient, resolved_minutes_ago=2)
    dispatcher = CollectingDispatcher()

    await ActionRegistrarAvaliacao().run(
        dispatcher, tracker(patient.id, typed, intent="avaliar"), {}
    )

    assert sent(dispatcher) == ["utter_avaliacao_invalida"]


# --- Appointments -----------------------------------------------------------------------


async def _appointment(clinic, patient: User, first_name: str = "Ricardo", nth: int = 0):
    async with clinic.db.session() as session:
        slots = await find_slots(
            session, now=utcnow(), doctor_id=clinic.doctor(first_name).id, limit=nth + 1
        )
    slot = slots[nth]
    return await book(
        clinic.db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=slot.doctor_id,
        starts_at=slot.starts_at,
        channel="webchat",
        self_service=False,
    )


async def _status(clinic, appointment_id: int) -> AppointmentStatus:
    async with clinic.db.session() as session:
        return (await session.get(Appointment, appointment_id)).status


async def _remind(clinic, appointment: Appointment, minutes_ago: int) -> None:
    async with clinic.db.session() as session:
        sent_at = utcnow() - timedelta(minutes=minutes_ago)
        session.add(
            Reminder(
                appointment_id=appointment.id,
                offset_minutes=minutes_ago,
                due_at=sent_at,
                status=ReminderStatus.SENT,
                sent_at=sent_at,
            )
        )


async def test_typed_confirmation_confirms_the_appointment_last_reminded(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")
    sooner = await _appointment(clinic_db, patient, "Ricardo")
    reminded = await _appointment(clinic_db, patient, "Ana")
    await _remind(clinic_db, reminded, minutes_ago=5)
    dispatcher = CollectingDispatcher()

    await ActionConfirmarPresenca().run(
        dispatcher, tracker(patient.id, "confirmo", intent="confirmar_presenca"), {}
    )

    assert await _status(clinic_db, reminded.id) == AppointmentStatus.CONFIRMED
    assert await _status(clinic_db, sooner.id) == AppointmentStatus.SCHEDULED
    assert sent(dispatcher) == ["utter_confirmacao_presenca"]


async def test_an_appointment_id_of_someone_else_is_never_confirmed(clinic_db):
    owner = await new_patient(clinic_db.db, name="Dona da Consulta")
    theirs = await _appointment(clinic_db, owner)
    intruder = await new_patient(clinic_db.db)
    dispatcher = CollectingDispatcher()

    await ActionConfirmarPresenca().run(
        dispatcher,
        tracker(
            intruder.id,
            f'/confirmar_presenca{{"appointment_id":"{theirs.id}"}}',
            intent="confirmar_presenca",
            entities={"appointment_id": str(theirs.id)},
        ),
        {},
    )

    assert await _status(clinic_db, theirs.id) == AppointmentStatus.SCHEDULED
    assert sent(dispatcher) == ["utter_nada_para_confirmar"]


async def _bot_message(clinic, patient: User, text: str, buttons: list[dict]) -> None:
    """A clinic message with buttons, recorded as the channel's Sender records it."""
    conversation_id = await _conversation(clinic, patient)
    async with clinic.db.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        await record_outbound(
            session, conversation, text=text, author_kind=AuthorKind.BOT, buttons=buttons
        )


async def _reminder_message(clinic, patient: User, appointment: Appointment) -> None:
    """A reminder as the worker records it: a message with the three reply buttons."""
    buttons = [
        {"title": title, "payload": f'/{intent}{{"appointment_id":"{appointment.id}"}}'}
        for title, intent in (
            ("Confirmar", "confirmar_presenca"),
            ("Remarcar", "remarcar_consulta"),
            ("Cancelar", "cancelar_consulta"),
        )
    ]
    await _bot_message(clinic, patient, "Lembrete da sua consulta", buttons)


async def test_typed_confirmation_with_several_appointments_and_no_reminder_asks_which(
    clinic_db,
):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")
    sooner = await _appointment(clinic_db, patient, "Ricardo")
    later = await _appointment(clinic_db, patient, "Ana")
    dispatcher = CollectingDispatcher()

    await ActionConfirmarPresenca().run(
        dispatcher, tracker(patient.id, "confirmo", intent="confirmar_presenca"), {}
    )

    [question] = dispatcher.messages
    assert question["response"] == "utter_qual_consulta_confirmar"
    assert [b["payload"] for b in question["buttons"]] == [
        f'/confirmar_presenca{{"appointment_id":"{a.id}"}}' for a in (sooner, later)
    ]
    assert await _status(clinic_db, sooner.id) == AppointmentStatus.SCHEDULED
    assert await _status(clinic_db, later.id) == AppointmentStatus.SCHEDULED

    # The patient answers by typing, and "sim" names none of the two.
    await _bot_message(clinic_db, patient, "Qual delas?", question["buttons"])
    _, unclear = await _choose(patient, "sim", intent="afirmar")
    _, chosen = await _choose(patient, "2")

    assert sent(unclear) == ["utter_posso_ajudar"]
    assert sent(chosen) == ["utter_confirmacao_presenca"]
    assert await _status(clinic_db, sooner.id) == AppointmentStatus.SCHEDULED
    assert await _status(clinic_db, later.id) == AppointmentStatus.CONFIRMED


async def test_typed_confirmation_confirms_the_only_appointment_not_yet_confirmed(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")
    confirmed = await _appointment(clinic_db, patient, "Ricardo")
    pending = await _appointment(clinic_db, patient, "Ana")
    await confirm(clinic_db.db, confirmed.id, channel="webchat")
    dispatcher = CollectingDispatcher()

    await ActionConfirmarPresenca().run(
        dispatcher, tracker(patient.id, "vou sim, confirmo", intent="confirmar_presenca"), {}
    )

    assert sent(dispatcher) == ["utter_confirmacao_presenca"]
    assert await _status(clinic_db, pending.id) == AppointmentStatus.CONFIRMED


async def _choose(patient: User, text: str, intent: str = "escolher_opcao"):
    dispatcher = CollectingDispatcher()
    chosen_tracker = tracker(patient.id, text, intent=intent)
    chosen_tracker.latest_message["input_channel"] = "webchat"
    events = await ActionResponderOpcao().run(dispatcher, chosen_tracker, {})
    return events, dispatcher


async def test_typing_1_after_a_reminder_confirms_that_appointment(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")
    appointment = await _appointment(clinic_db, patient)
    await _reminder_message(clinic_db, patient, appointment)

    _, dispatcher = await _choose(patient, "1")

    assert await _status(clinic_db, appointment.id) == AppointmentStatus.CONFIRMED
    assert sent(dispatcher) == ["utter_confirmacao_presenca"]


async def test_typing_3_after_a_reminder_starts_cancelling_that_appointment(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")
    appointment = await _appointment(clinic_db, patient)
    await _reminder_message(clinic_db, patient, appointment)

    events, _ = await _choose(patient, "a terceira")

    assert SlotSet("consulta", f"#{appointment.id}") in events
    assert events[-1] == FollowupAction("cancelamento_form")
    assert await _status(clinic_db, appointment.id) == AppointmentStatus.SCHEDULED


async def test_no_after_a_reminder_offers_to_move_or_cancel(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")
    appointment = await _appointment(clinic_db, patient)
    await _reminder_message(clinic_db, patient, appointment)

    _, dispatcher = await _choose(patient, "não", intent="negar")

    [message] = dispatcher.messages
    assert message["response"] == "utter_nao_vai_comparecer"
    assert [b["title"] for b in message["buttons"]] == ["Remarcar", "Cancelar"]
    assert await _status(clinic_db, appointment.id) == AppointmentStatus.SCHEDULED


async def test_a_number_with_nothing_offered_is_not_guessed(clinic_db):
    patient = await new_patient(clinic_db.db)

    _, dispatcher = await _choose(patient, "2")

    assert sent(dispatcher) == ["utter_opcao_sem_contexto"]


@pytest.mark.parametrize(
    ("typed", "number"),
    [("2", 2), ("opção 3", 3), ("a primeira", 1), ("quero a 2", 2), ("segunda", None)],
)
def test_options_are_read_by_number_or_ordinal(typed, number):
    assert option_number(typed) == number


async def test_a_slot_taken_meanwhile_offers_new_times(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva", whatsapp="+5521998765432")
    rival = await new_patient(clinic_db.db, name="Outra Pessoa")
    taken = await _appointment(clinic_db, rival)
    horario = {
        "medico_id": taken.doctor_id,
        "medico": "Dr. Ricardo Alves",
        "especialidade": "Cardiologia",
        "inicio": taken.starts_at.isoformat(),
    }
    dispatcher = CollectingDispatcher()

    events = await ActionConcluirAgendamento().run(
        dispatcher,
        tracker(
            patient.id, "sim", intent="afirmar", slots={"horario": horario, "confirmacao": True}
        ),
        {},
    )

    assert sent(dispatcher) == ["utter_horario_ocupado"]
    assert events[-1] == FollowupAction("agendamento_form")
    async with clinic_db.db.session() as session:
        mine = select(Appointment).where(Appointment.patient_id == patient.id)
        assert (await session.execute(mine)).first() is None


async def _confirming(clinic, patient: User, first_name: str, nth: int) -> tuple:
    async with clinic.db.session() as session:
        slots = await find_slots(
            session, now=utcnow(), doctor_id=clinic.doctor(first_name).id, limit=nth + 1
        )
    slot = slots[nth]
    horario = {
        "medico_id": slot.doctor_id,
        "medico": slot.doctor_name,
        "especialidade": slot.specialty_name,
        "inicio": slot.starts_at.isoformat(),
    }
    dispatcher = CollectingDispatcher()
    events = await ActionConcluirAgendamento().run(
        dispatcher,
        tracker(
            patient.id, "sim", intent="afirmar", slots={"horario": horario, "confirmacao": True}
        ),
        {},
    )
    return dispatcher, events


async def _appointments_of(clinic, patient: User) -> list[Appointment]:
    async with clinic.db.session() as session:
        query = select(Appointment).where(Appointment.patient_id == patient.id)
        return list((await session.execute(query)).scalars())


async def test_the_bot_books_up_to_the_cap_per_specialty_and_then_says_why_not(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva", whatsapp="+5521998765432")
    for nth in (0, 1):
        dispatcher, _ = await _confirming(clinic_db, patient, "Ricardo", nth)
        assert sent(dispatcher) == ["utter_agendado"]

    dispatcher, _ = await _confirming(clinic_db, patient, "Ricardo", 2)

    assert sent(dispatcher) == ["utter_limite_consultas"]
    assert dispatcher.messages[0]["maximo"] == 2
    assert dispatcher.messages[0]["especialidade"] == "Cardiologia"
    assert handoff_of(dispatcher) is None  # a refusal, not a failure handed to a person
    assert len(await _appointments_of(clinic_db, patient)) == 2
    # Another specialty is still open to them.
    dispatcher, _ = await _confirming(clinic_db, patient, "Ana", 0)
    assert sent(dispatcher) == ["utter_agendado"]


async def test_at_the_cap_the_bot_says_so_before_offering_any_time(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva", whatsapp="+5521998765432")
    await _appointment(clinic_db, patient, "Ricardo", 0)
    await _appointment(clinic_db, patient, "Ricardo", 1)
    cardiologia = clinic_db.specialties["cardiologia"]
    dispatcher = CollectingDispatcher()

    await ActionAskHorario().run(
        dispatcher,
        tracker(
            patient.id,
            "o quanto antes",
            slots={"especialidade": {"id": cardiologia.id, "nome": "Cardiologia"}},
            active_loop="agendamento_form",
        ),
        {},
    )

    assert sent(dispatcher) == ["utter_limite_consultas"]


async def test_a_patient_without_a_verified_contact_is_told_how_to_get_one(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva", phone="+5521998765432")

    dispatcher, _ = await _confirming(clinic_db, patient, "Ricardo", 0)

    assert sent(dispatcher) == ["utter_contato_nao_verificado"]
    assert await _appointments_of(clinic_db, patient) == []
    early = CollectingDispatcher()
    await ActionAskHorario().run(
        early,
        tracker(
            patient.id,
            "amanhã",
            slots={"especialidade": {"id": clinic_db.specialties["cardiologia"].id, "nome": "x"}},
            active_loop="agendamento_form",
        ),
        {},
    )
    assert sent(early) == ["utter_contato_nao_verificado"]


async def test_the_bot_holds_a_patient_to_the_pace_of_changes(clinic_db):
    use_booking_rules(clinic_rules(changes_per_hour=2))
    patient = await new_patient(clinic_db.db, name="Maria da Silva", whatsapp="+5521998765432")
    dispatcher, _ = await _confirming(clinic_db, patient, "Ricardo", 0)
    [booked] = await upcoming(patient.id)
    cancelled = CollectingDispatcher()
    await ActionConcluirCancelamento().run(
        cancelled,
        tracker(
            patient.id,
            "sim",
            intent="afirmar",
            slots={"consulta": appointment_slot(booked), "confirmacao": True},
        ),
        {},
    )
    assert sent(cancelled) == ["utter_cancelado"]

    dispatcher, _ = await _confirming(clinic_db, patient, "Ana", 0)

    assert sent(dispatcher) == ["utter_muitas_alteracoes"]
    assert dispatcher.messages[0]["minutos"] == 60


async def test_a_time_already_past_today_is_refused_and_asked_again(clinic_db, monkeypatch):
    # 16:00 in São Paulo: "hoje às 9h" has passed, "hoje às 17h" has not.
    monkeypatch.setattr("bot.actions.booking.now", lambda: datetime(2025, 3, 5, 19, 0, tzinfo=UTC))
    form, past, ahead = ValidateAgendamentoForm(), CollectingDispatcher(), CollectingDispatcher()

    refused = await form.validate_quando("hoje às 9h", past, tracker(1, "hoje às 9h"), {})
    accepted = await form.validate_quando("hoje às 17h", ahead, tracker(1, "hoje às 17h"), {})

    assert refused["quando"] is None
    assert sent(past) == ["utter_quando_passado"]
    assert accepted["quando"]["inicio"] == "2025-03-05T17:00:00-03:00"
    assert ahead.messages == []


# --- Fallback and emergencies -----------------------------------------------------------


def _turns(*intents: str) -> list[dict]:
    """Events of consecutive turns, each answered by action_nao_entendi when not understood."""
    events = []
    for intent in intents:
        events.append({"event": "user", "parse_data": {"intent": {"name": intent}}})
        if intent == "nlu_fallback":
            events.append({"event": "action", "name": "action_nao_entendi"})
        else:
            events.append({"event": "action", "name": "action_saudacao"})
    return events[:-1]  # the latest turn is being answered now


async def test_the_first_misunderstanding_asks_again_with_options(clinic_db):
    dispatcher = CollectingDispatcher()

    events = await ActionNaoEntendi().run(
        dispatcher, tracker(1, "blorf", intent="nlu_fallback", events=_turns("nlu_fallback")), {}
    )

    assert sent(dispatcher) == ["utter_default"]
    assert events == []


async def test_a_second_misunderstanding_in_a_row_calls_a_person(clinic_db):
    dispatcher = CollectingDispatcher()
    history = _turns("nlu_fallback", "nlu_fallback")

    events = await ActionNaoEntendi().run(
        dispatcher, tracker(1, "snark", intent="nlu_fallback", events=history), {}
    )

    assert sent(dispatcher) == ["utter_nao_entendi_de_novo", "handoff"]
    assert handoff_of(dispatcher) == {"reason": "nao_entendeu_duas_vezes", "priority": "normal"}
    assert ConversationPaused() in events


async def test_misunderstandings_that_are_not_consecutive_do_not_call_a_person(clinic_db):
    dispatcher = CollectingDispatcher()
    history = _turns("nlu_fallback", "saudacao", "nlu_fallback")

    await ActionNaoEntendi().run(
        dispatcher, tracker(1, "snark", intent="nlu_fallback", events=history), {}
    )

    assert sent(dispatcher) == ["utter_default"]


async def test_an_emergency_the_model_missed_still_gets_samu_and_a_critical_handoff(clinic_db):
    dispatcher = CollectingDispatcher()

    events = await ActionForaDoEscopo().run(
        dispatcher, tracker(1, "meu filho tomou veneno", intent="fora_do_escopo"), {}
    )

    assert sent(dispatcher) == ["utter_emergencia", "handoff"]
    assert handoff_of(dispatcher) == {"reason": "emergencia", "priority": "critical"}
    assert ConversationPaused() in events


async def test_a_greeting_with_an_emergency_in_it_gets_samu_and_a_critical_handoff(clinic_db):
    dispatcher = CollectingDispatcher()

    events = await ActionSaudacao().run(
        dispatcher, tracker(1, "oi, minha mãe desmaiou", intent="saudacao"), {}
    )

    assert sent(dispatcher) == ["utter_emergencia", "handoff"]
    assert handoff_of(dispatcher) == {"reason": "emergencia", "priority": "critical"}
    assert ConversationPaused() in events


@pytest.mark.parametrize(
    "text",
    [
        "estou com dor no peito",
        "sinto uma dor enorme no peito",
        "estou com muita dificuldade pra respirar",
        "minha mãe desmaiou",
        "não consigo respirar",
        "está sangrando muito",
        "acho que é um AVC",
        "tomei a cartela inteira",
        "quero me matar",
    ],
)
def test_emergency_phrases_are_recognised(text):
    assert looks_like_emergency(text)


@pytest.mark.parametrize(
    "text", ["quero marcar cardiologista", "qual o preparo do exame de sangue?", "dia 20 às 9h"]
)
def test_everyday_phrases_are_not_emergencies(text):
    assert not looks_like_emergency(text)


async def test_an_action_that_breaks_hands_the_patient_to_a_person(clinic_db, monkeypatch, caplog):
    cpf = "52998224725"

    async def unreadable_profile() -> dict:
        # Database errors quote the statement's parameters in their message.
        raise RuntimeError(f"UPDATE users SET cpf=('{cpf}')")

    monkeypatch.setattr("bot.actions.faq._profile", unreadable_profile)
    dispatcher = CollectingDispatcher()

    events = await ActionResponderFaq().run(
        dispatcher, tracker(1, "horário?", intent="faq", faq_key="horario"), {}
    )

    assert sent(dispatcher) == ["utter_erro_agenda", "handoff"]
    assert handoff_of(dispatcher)["reason"] == "erro_no_assistente"
    assert ConversationPaused() in events
    assert "RuntimeError" in caplog.text
    assert cpf not in caplog.text
