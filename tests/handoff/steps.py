"""Steps the handoff's specifications share: a patient handed off, a conversation and its
transition log read back, an assignment made to look old, a patient on two channels, an
appointment to act on, and an assistant that fails its first hand-backs."""

from datetime import timedelta

from sqlalchemy import select, update

from core.context import AssistantUnavailable
from handoff.transitions import queueing, talking
from models import Appointment, Conversation, Doctor, HandoffEvent, Specialty, utcnow
from tests.factories import patient_message


async def read_conversation(db, conversation_id):
    async with db.session() as session:
        return await session.get(Conversation, conversation_id)


async def transition_kinds(db, conversation_id):
    async with db.session() as session:
        query = (
            select(HandoffEvent.kind)
            .where(HandoffEvent.conversation_id == conversation_id)
            .order_by(HandoffEvent.id)
        )
        return list((await session.execute(query)).scalars())


async def handed_off(ctx, text="quero falar com alguém", **fields):
    recorded = await patient_message(ctx.db, text, **fields)
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    return recorded.conversation.id


async def assigned_ago(db, conversation_id, seconds):
    """Pretend the conversation was assigned `seconds` ago."""
    async with db.session() as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(assigned_at=utcnow() - timedelta(seconds=seconds))
        )


class FlakyBot:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.hand_backs = []

    async def hand_back(self, ctx, patient_id, intent):
        if self.failures:
            self.failures -= 1
            raise AssistantUnavailable("hand_back: HTTP 502")
        self.hand_backs.append((patient_id, intent))

    async def close(self):
        pass


async def appointment_for(db, patient_id, *, days_ahead=3):
    async with db.session() as session:
        specialty = Specialty(name=f"Clínica {patient_id}", slug=f"clinica-{patient_id}")
        doctor = Doctor(name="Dra. Ana Carvalho", specialties=[specialty])
        starts = utcnow() + timedelta(days=days_ahead)
        appointment = Appointment(
            patient_id=patient_id,
            doctor=doctor,
            specialty=specialty,
            starts_at=starts,
            ends_at=starts + timedelta(minutes=30),
        )
        session.add(appointment)
    return appointment.id


async def on_two_channels(ctx, phone):
    """A patient with a person on webchat who then wrote on WhatsApp too (joined)."""
    webchat = await handed_off(ctx, channel="webchat", phone=phone)
    whatsapp = await patient_message(
        ctx.db, "escrevi aqui também", channel="whatsapp", user=phone.lstrip("+"), phone=phone
    )
    assert await talking.join_open_episode(ctx, whatsapp.conversation.id)
    return webchat, whatsapp.conversation.id


async def holders(db, *conversation_ids):
    return [
        ((c := await read_conversation(db, i)).owner, c.assigned_attendant_id)
        for i in conversation_ids
    ]
