"""The pt-BR assistant's dialogues from the site widget, over the real clinic (Rasa server,
action server, web app, worker): booking, changing an answer, giving up, cancelling,
rescheduling, listing, answering a reminder, FAQ from the clinic profile, fallback, emergency,
the satisfaction score, and identity."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from messaging.outbound import send
from models import (
    Appointment,
    AppointmentStatus,
    AuthorKind,
    ClinicProfile,
    Conversation,
    Owner,
    PatientProfile,
    Priority,
    Reminder,
    ReminderStatus,
    User,
    utcnow,
)
from models.db import Database
from processes.worker import build_context
from scheduling.reminders import reminder_buttons
from tests.clients import WidgetClient
from tests.factories import booked, fresh_cpf, returning_patient, widget_patient

pytestmark = pytest.mark.integration

QUIET = 1.0


async def turn(widget: WidgetClient, text: str, payload: str | None = None) -> list[dict]:
    """Say something and collect everything the clinic answers until it falls quiet."""
    await widget.say(text, payload=payload)
    replies = [await widget.next_reply(timeout=45)]
    while True:
        try:
            replies.append(await widget.next_reply(timeout=QUIET))
        except TimeoutError:
            return replies


def texts(replies: list[dict]) -> str:
    return "\n".join(r["text"] for r in replies)


def buttons(replies: list[dict]) -> list[dict[str, str]]:
    return [b for r in replies for b in r.get("buttons") or []]


async def known_patient(live_db: Database, widget: WidgetClient) -> User:
    """A visitor whose record already has name, CPF, phone and consent (a returning patient)."""
    await turn(widget, "oi")
    return await returning_patient(live_db, (await widget_patient(live_db, widget.token)).id)


async def appointments_of(live_db: Database, patient: User) -> list[Appointment]:
    async with live_db.session() as session:
        query = (
            select(Appointment)
            .where(Appointment.patient_id == patient.id)
            .order_by(Appointment.id)
            .options(selectinload(Appointment.doctor))
        )
        return list((await session.execute(query)).scalars())


async def conversation_of(live_db: Database, patient: User) -> Conversation:
    async with live_db.session() as session:
        query = (
            select(Conversation)
            .where(Conversation.patient_id == patient.id)
            .order_by(Conversation.id.desc())
            .limit(1)
        )
        return (await session.execute(query)).scalar_one()


def tap(replies: list[dict], title_part: str) -> dict[str, Any]:
    return next(b for b in buttons(replies) if title_part in b["title"])


# --- Booking ------------------------------------------------------------------------


async def test_a_new_patient_identifies_and_books_from_the_widget(live_db, widget):
    replies = await turn(widget, "oi, quero marcar uma consulta com cardiologista")
    assert "LGPD" in texts(replies)

    replies = await turn(widget, "Concordo", payload=tap(replies, "Concordo")["payload"])
    assert "nome completo" in texts(replies)
    replies = await turn(widget, "joana d'arc pereira")
    assert "CPF" in texts(replies)
    replies = await turn(widget, "123.456.789-00")
    assert "não parece válido" in texts(replies)
    cpf = fresh_cpf()
    replies = await turn(widget, f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}")
    # The same answer whether or not the CPF is on a record (nothing to learn by probing).
    assert "Se houver um cadastro com esses dados" in texts(replies)
    replies = await turn(widget, "pular")
    assert "seguimos sem o código" in texts(replies)
    assert "telefone" in texts(replies)
    replies = await turn(widget, "(21) 99876-5432")
    assert "Se houver um cadastro com esses dados" in texts(replies)
    replies = await turn(widget, "pular")
    assert "Para quando" in texts(replies)  # identified: the booking goes on

    # A widget visitor has proved no contact: the bot says how to get one before any time.
    replies = await turn(widget, "o quanto antes")
    assert "contato confirmado" in texts(replies)
    patient = await widget_patient(live_db, widget.token)
    assert (patient.name, patient.phone_e164) == ("Joana D'arc Pereira", "+5521998765432")
    assert patient.cpf is None  # typed on the widget, never proved: not stored
    assert patient.patient_profile.lgpd_consent_at is not None
    assert await appointments_of(live_db, patient) == []

    # She confirms her e-mail on the portal; now the bot books for her.
    async with live_db.session() as session:
        user = await session.get_one(User, patient.id)
        user.email, user.email_verified_at = f"joana.{patient.id}@exemplo.com", utcnow()
    replies = await turn(widget, "quero marcar uma consulta com cardiologista")
    assert "Para quando" in texts(replies)
    replies = await turn(widget, "o quanto antes")
    offered = [b for b in buttons(replies) if "horario" in b["payload"]]
    assert len(offered) == 3
    replies = await turn(widget, "2")
    assert "Confirma a consulta de Cardiologia com Dr. Ricardo Alves" in texts(replies)
    replies = await turn(widget, "sim")
    assert "está marcada" in texts(replies)
    [appointment] = await appointments_of(live_db, patient)
    assert appointment.doctor.name == "Dr. Ricardo Alves"
    assert appointment.status == AppointmentStatus.SCHEDULED
    assert offered[1]["payload"].endswith(f'{appointment.starts_at.isoformat()}"}}')


async def test_the_patient_changes_answers_midway_then_books_by_tapping(live_db, widget):
    patient = await known_patient(live_db, widget)

    replies = await turn(widget, "quero marcar dermatologista")
    assert "Para quando" in texts(replies)
    replies = await turn(widget, "o mais cedo possível")
    assert all("Juliana" not in b["title"] for b in buttons(replies))  # one doctor: no names
    replies = await turn(widget, "na verdade prefiro com a dra ana")
    assert "Não entendi" not in texts(replies)
    offered = [b for b in buttons(replies) if "horario" in b["payload"]]
    assert offered
    replies = await turn(widget, "quero mudar o dia")
    assert "Para quando" in texts(replies)
    replies = await turn(widget, "semana que vem de manhã")
    offered = [b for b in buttons(replies) if "horario" in b["payload"]]
    replies = await turn(widget, offered[0]["title"], payload=offered[0]["payload"])
    assert "Clínica Geral com Dra. Ana Carvalho" in texts(replies)
    replies = await turn(widget, "não")
    assert "não marquei" in texts(replies)
    offered = [b for b in buttons(replies) if "horario" in b["payload"]]
    replies = await turn(widget, offered[-1]["title"], payload=offered[-1]["payload"])
    replies = await turn(widget, "Sim, confirmar", payload="/afirmar")
    assert "está marcada" in texts(replies)

    [appointment] = await appointments_of(live_db, patient)
    assert appointment.doctor.name == "Dra. Ana Carvalho"


async def test_giving_up_midway_books_nothing_and_the_bot_moves_on(live_db, widget):
    patient = await known_patient(live_db, widget)

    await turn(widget, "quero marcar uma consulta de pediatria amanhã")
    replies = await turn(widget, "deixa pra lá")
    assert "deixei isso de lado" in texts(replies)
    replies = await turn(widget, "qual o endereço?")
    assert "Av. Paulista, 1000" in texts(replies)

    assert await appointments_of(live_db, patient) == []


async def test_a_question_midway_is_answered_and_the_dialogue_resumes(live_db, widget):
    await known_patient(live_db, widget)

    await turn(widget, "quero marcar uma consulta")
    replies = await turn(widget, "vocês aceitam bradesco saúde?")
    assert "Bradesco Saúde" in texts(replies)
    assert "especialidade ou médico" in texts(replies)


# --- Cancelling, rescheduling, listing ----------------------------------------------


async def test_cancelling_asks_for_confirmation_then_cancels(live_db, widget):
    patient = await known_patient(live_db, widget)
    appointment = await booked(live_db, patient)

    replies = await turn(widget, "preciso cancelar minha consulta")
    assert "Confirma o cancelamento da consulta de Cardiologia" in texts(replies)
    replies = await turn(widget, "sim")
    assert "foi cancelada" in texts(replies)

    [after] = await appointments_of(live_db, patient)
    assert after.id == appointment.id and after.status == AppointmentStatus.CANCELLED


async def test_with_two_appointments_the_patient_picks_which_to_cancel(live_db, widget):
    patient = await known_patient(live_db, widget)
    first = await booked(live_db, patient, "Ricardo")
    second = await booked(live_db, patient, "Camila")

    replies = await turn(widget, "quero cancelar uma consulta")
    choice = tap(replies, "Camila")
    replies = await turn(widget, choice["title"], payload=choice["payload"])
    assert "Pediatria com Dra. Camila Nunes" in texts(replies)
    replies = await turn(widget, "Não, manter", payload="/negar")
    assert "mantive" in texts(replies)

    statuses = {a.id: a.status for a in await appointments_of(live_db, patient)}
    assert statuses == {
        first.id: AppointmentStatus.SCHEDULED,
        second.id: AppointmentStatus.SCHEDULED,
    }


async def test_rescheduling_moves_the_appointment_with_the_same_doctor(live_db, widget):
    patient = await known_patient(live_db, widget)
    old = await booked(live_db, patient, "Paulo")

    replies = await turn(widget, "quero remarcar minha consulta")
    assert "Para quando você quer passar a consulta" in texts(replies)
    replies = await turn(widget, "qualquer dia")
    offered = [b for b in buttons(replies) if "horario" in b["payload"]]
    replies = await turn(widget, "a terceira")
    assert "Confirma a troca da consulta" in texts(replies)
    replies = await turn(widget, "isso")
    assert "remarcada" in texts(replies)

    before, after = await appointments_of(live_db, patient)
    assert before.id == old.id and before.status == AppointmentStatus.CANCELLED
    assert after.rescheduled_from_id == old.id and after.doctor.name == "Dr. Paulo Mendes"
    assert offered[2]["payload"].endswith(f'{after.starts_at.isoformat()}"}}')


async def test_the_patient_sees_their_upcoming_appointments(live_db, widget):
    patient = await known_patient(live_db, widget)
    await booked(live_db, patient, "Fernanda")

    replies = await turn(widget, "quando é minha consulta?")

    assert "Ginecologia com Dra. Fernanda Dias" in texts(replies)


# --- Answering a reminder -------------------------------------------------------------


async def _remind(clinic, live_db: Database, patient: User, appointment: Appointment) -> None:
    """A reminder recorded and delivered as the worker does (whatever the time of day): a
    bot message with the reply buttons in the patient's conversation, and its sent row."""
    ctx = build_context(clinic.settings)
    try:
        conversation = await conversation_of(live_db, patient)
        message = await send(
            ctx,
            conversation.id,
            text="Lembrete da sua consulta. Você confirma sua presença?",
            author_kind=AuthorKind.BOT,
            buttons=reminder_buttons(appointment.id),
        )
    finally:
        await ctx.close()
    async with live_db.session() as session:
        now = utcnow()
        session.add(
            Reminder(
                appointment_id=appointment.id,
                offset_minutes=int((appointment.starts_at - now).total_seconds() // 60),
                due_at=now,
                status=ReminderStatus.SENT,
                sent_at=now,
                channel="webchat",
                message_id=message.id,
            )
        )


async def test_tapping_confirm_on_a_reminder_confirms_that_appointment(clinic, live_db, widget):
    patient = await known_patient(live_db, widget)
    appointment = await booked(live_db, patient)
    await _remind(clinic, live_db, patient, appointment)
    reminder = await widget.next_reply("bot")

    confirm = next(b for b in reminder["buttons"] if "confirmar_presenca" in b["payload"])
    replies = await turn(widget, confirm["title"], payload=confirm["payload"])

    assert "Presença confirmada" in texts(replies)
    [after] = await appointments_of(live_db, patient)
    assert after.status == AppointmentStatus.CONFIRMED


async def test_typing_1_or_not_going_answers_the_reminded_appointment(clinic, live_db, widget):
    patient = await known_patient(live_db, widget)
    kept = await booked(live_db, patient, "Ricardo")
    reminded = await booked(live_db, patient, "Ana Carvalho")
    await _remind(clinic, live_db, patient, reminded)
    await widget.next_reply("bot")

    replies = await turn(widget, "1")
    assert "Presença confirmada" in texts(replies)
    replies = await turn(widget, "não vou poder ir")
    assert "Confirma o cancelamento da consulta de Clínica Geral" in texts(replies)
    await turn(widget, "sim")

    statuses = {a.id: a.status for a in await appointments_of(live_db, patient)}
    assert statuses == {
        kept.id: AppointmentStatus.SCHEDULED,
        reminded.id: AppointmentStatus.CANCELLED,
    }


async def test_typing_confirmo_with_two_appointments_and_no_reminder_asks_which(live_db, widget):
    patient = await known_patient(live_db, widget)
    first = await booked(live_db, patient, "Ricardo")
    second = await booked(live_db, patient, "Camila")

    replies = await turn(widget, "confirmo minha presença")
    assert "Qual delas você quer confirmar" in texts(replies)
    assert "Presença confirmada" not in texts(replies)
    choice = tap(replies, "Camila")
    replies = await turn(widget, choice["title"], payload=choice["payload"])

    assert "Presença confirmada" in texts(replies)
    statuses = {a.id: a.status for a in await appointments_of(live_db, patient)}
    assert statuses == {
        first.id: AppointmentStatus.SCHEDULED,
        second.id: AppointmentStatus.CONFIRMED,
    }


async def test_a_typed_command_cannot_act_on_someone_elses_appointment(live_db, widget):
    other = await known_patient(live_db, widget)
    theirs = await booked(live_db, other)
    intruder = WidgetClient(widget.url)
    await intruder.connect()
    try:
        await turn(intruder, "oi")
        replies = await turn(intruder, f'/confirmar_presenca{{"appointment_id":"{theirs.id}"}}')
    finally:
        await intruder.close()

    assert "Presença confirmada" not in texts(replies)
    [after] = await appointments_of(live_db, other)
    assert after.status == AppointmentStatus.SCHEDULED


async def test_typed_restart_neither_restarts_the_bot_nor_leaves_the_dialogue(
    clinic, live_db, widget
):
    patient = await known_patient(live_db, widget)
    await turn(widget, "quero marcar uma consulta")

    await turn(widget, "/restart")
    replies = await turn(widget, "cardiologia")

    assert "Para quando" in texts(replies)
    events = clinic.tracker_events(patient.id)
    assert not [e for e in events if e["event"] == "restart"]
    intents = [e["parse_data"]["intent"]["name"] for e in events if e["event"] == "user"]
    assert "restart" not in intents


# --- FAQ, fallback, emergency, handoff, satisfaction ---------------------------------


async def test_faq_answers_follow_the_clinic_profile_without_retraining(live_db, widget):
    async with live_db.session() as session:
        profile = (await session.execute(select(ClinicProfile))).scalar_one()
        original = dict(profile.data)
        profile.data = {
            **original,
            "valores": {**original["valores"], "consulta_particular": "R$ 310,00"},
        }
    try:
        replies = await turn(widget, "quanto custa a consulta?")
    finally:
        async with live_db.session() as session:
            profile = (await session.execute(select(ClinicProfile))).scalar_one()
            profile.data = original

    assert "R$ 310,00" in texts(replies)


# --- Several asks in one message -------------------------------------------------


def in_order(answer: str, *parts: str) -> bool:
    """Whether every part is in the answer, each after the one before."""
    positions = [answer.find(part) for part in parts]
    return -1 not in positions and positions == sorted(positions)


async def test_two_questions_in_one_message_get_both_answers(widget):
    replies = await turn(widget, "quanto custa a consulta com cardiologista? aceitam unimed?")

    assert in_order(texts(replies), "R$ 280,00", "Unimed")


async def test_a_whatsapp_style_run_on_with_two_questions_gets_both_answers(widget):
    replies = await turn(widget, "oi qual o endereço de vcs e ate q horas vcs ficam abertos")

    assert in_order(texts(replies), "Av. Paulista, 1000", "das 8h às 18h")


async def test_a_question_then_a_booking_gets_the_answer_then_the_dialogue(live_db, widget):
    await known_patient(live_db, widget)

    replies = await turn(widget, "vocês atendem sulamérica? quero marcar uma consulta")

    assert in_order(texts(replies), "SulAmérica", "especialidade ou médico")


async def test_a_question_then_a_cancellation_gets_the_answer_then_the_cancellation(
    live_db, widget
):
    patient = await known_patient(live_db, widget)
    await booked(live_db, patient)

    replies = await turn(widget, "onde fica a clinica? preciso cancelar minha consulta")

    assert in_order(texts(replies), "Av. Paulista, 1000", "Confirma o cancelamento")


async def test_a_question_then_asking_for_a_person_gets_the_answer_then_the_team(live_db, widget):
    replies = await turn(widget, "qto ta a consulta particular? prefiro falar com uma atendente")

    assert in_order(texts(replies), "R$ 280,00", "alguém da nossa equipe")
    conversation = await conversation_of(live_db, await widget_patient(live_db, widget.token))
    assert conversation.owner in (Owner.QUEUED, Owner.ATTENDANT)
    assert conversation.handoff_reason == "pedido_do_paciente"


async def test_out_of_scope_gets_a_polite_redirect(widget):
    replies = await turn(widget, "quem ganhou o jogo ontem?")

    assert "assistente da clínica" in texts(replies)


async def test_two_misunderstandings_in_a_row_hand_the_patient_to_the_team(live_db, widget):
    first = await turn(widget, "blorf snark vlem")
    assert "não entendi" in texts(first)
    assert "Falar com a equipe" in [b["title"] for b in buttons(first)]

    second = await turn(widget, "zumba trelic grof")

    assert "equipe" in texts(second)
    conversation = await conversation_of(live_db, await widget_patient(live_db, widget.token))
    assert conversation.owner in (Owner.QUEUED, Owner.ATTENDANT)
    assert conversation.handoff_reason == "nao_entendeu_duas_vezes"


async def test_an_emergency_gets_samu_at_once_and_a_critical_handoff(live_db, widget):
    await known_patient(live_db, widget)
    await turn(widget, "quero marcar uma consulta")

    replies = await turn(widget, "meu pai está com dor no peito e suando frio")

    assert "192 (SAMU)" in texts(replies)
    conversation = await conversation_of(live_db, await widget_patient(live_db, widget.token))
    assert conversation.priority == int(Priority.CRITICAL)
    assert conversation.handoff_reason == "emergencia"


async def test_a_greeting_with_an_emergency_in_it_gets_samu_not_a_greeting(live_db, widget):
    replies = await turn(widget, "oi, minha mãe desmaiou")

    assert "192 (SAMU)" in texts(replies)
    assert "assistente virtual" not in texts(replies)
    conversation = await conversation_of(live_db, await widget_patient(live_db, widget.token))
    assert conversation.priority == int(Priority.CRITICAL)
    assert conversation.handoff_reason == "emergencia"


async def test_the_bot_names_the_clinic_as_the_admin_wrote_it(live_db, widget):
    async with live_db.session() as session:
        profile = (await session.execute(select(ClinicProfile))).scalar_one()
        original, profile.name = profile.name, "Clínica Bem Viver"
    try:
        greeting = await turn(widget, "olá")
        consent = await turn(widget, "quero marcar uma consulta")
    finally:
        async with live_db.session() as session:
            profile = (await session.execute(select(ClinicProfile))).scalar_one()
            profile.name = original

    assert "assistente virtual da Clínica Bem Viver" in texts(greeting)
    assert "agendamento na Clínica Bem Viver" in texts(consent)
    assert "LGPD" in texts(consent)


async def test_after_a_person_resolves_the_patient_rates_the_service(live_db, widget, ana):
    await turn(widget, "quero falar com um atendente")
    patient = await widget_patient(live_db, widget.token)
    event = await ana.expect_event(
        lambda e: (
            e["type"] == "conversation"
            and e["conversation"]["patient_id"] == patient.id
            and e["conversation"]["owner"] == "attendant"
        )
    )
    conversation_id = event["conversation"]["id"]

    status, _ = await ana.request("POST", f"/api/conversations/{conversation_id}/resolve")
    assert status == 200
    closing = await widget.next_reply("bot")
    assert "encerrado" in closing["text"]
    assert [b["title"] for b in closing["buttons"]] == ["1", "2", "3", "4", "5"]

    replies = await turn(widget, "4")
    assert "nota (4)" in texts(replies)
    async with live_db.session() as session:
        assert (await session.get(Conversation, conversation_id)).csat_score == 4


async def test_a_cpf_already_on_another_record_is_answered_like_any_other(live_db, widget):
    owner = await known_patient(live_db, widget)
    stranger = WidgetClient(widget.url)
    await stranger.connect()
    try:
        await turn(stranger, "quero ver minhas consultas")
        await turn(stranger, "sim")
        await turn(stranger, "Fulano de Tal")
        replies = await turn(stranger, owner.cpf)
        newcomer = await widget_patient(live_db, stranger.token)
    finally:
        await stranger.close()

    # Probing tells nothing: the words for a known and an unknown CPF are the same, the CPF
    # is not taken, and any code goes only to the owner's confirmed contact.
    assert "Se houver um cadastro com esses dados" in texts(replies)
    assert newcomer.id != owner.id
    assert newcomer.cpf is None
    async with live_db.session() as session:
        assert (await session.get(PatientProfile, newcomer.id)).lgpd_consent_at is not None
