""" "Não quero mais lembretes" told to the bot stops reminders on every channel, recorded as a
withdrawal of the reminders consent on the channel it was said on."""

from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from accounts import consent
from bot.actions.reminders import ActionPararLembretes
from models import Consent, PatientProfile
from tests.bot.conftest import new_patient, sent, tracker


async def test_telling_the_bot_stops_reminders(clinic_db):
    patient = await new_patient(clinic_db.db, name="Maria da Silva")
    async with clinic_db.db.session() as session:
        await consent.grant(session, patient.id, consent.REMINDERS, channel="portal")
    dispatcher = CollectingDispatcher()

    await ActionPararLembretes().run(
        dispatcher,
        tracker(
            patient.id,
            "não quero mais lembretes",
            intent="parar_lembretes",
            input_channel="whatsapp",
        ),
        {},
    )

    assert sent(dispatcher) == ["utter_lembretes_desligados"]
    async with clinic_db.db.session() as session:
        profile = await session.get_one(PatientProfile, patient.id)
        withdrawn = (
            await session.execute(select(Consent).where(Consent.patient_id == patient.id))
        ).scalar_one()
    assert profile.reminders_opt_in is False  # what the reminder dispatch checks
    assert withdrawn.withdrawn_channel == "whatsapp"
