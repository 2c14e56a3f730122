"""A patient who never wrote to the clinic is reminded on what they proved at sign-up: their
phone (WhatsApp template, then SMS) and their e-mail; one who proved nothing is left for the
desk to phone."""

from sqlalchemy import select

from accounts import patients
from core.contacts import phone_match_key
from messaging.identities import contact_identities
from models import (
    Appointment,
    ChannelIdentity,
    PatientProfile,
    Reminder,
    ReminderStatus,
    User,
    utcnow,
)
from scheduling import appointments
from scheduling.reminders import dispatch_due, plan_reminders, reached_nowhere
from tests.factories import clinic_rules
from tests.scheduling.conftest import make_patient
from tests.scheduling.test_reminders import DAY_BEFORE, NOW, STARTS, FakeProvider, at

PHONE = "+5511987654321"


async def _signed_up(db, *, phone_proved=False, email_verified=False, preferred=None) -> User:
    """A portal patient: typed phone and e-mail, proved or not, and no channel identity."""
    patient = await make_patient(db, channels=(), preferred=preferred)
    async with db.session() as session:
        user = await session.get_one(User, patient.id)
        user.phone_e164, user.email = PHONE, f"paciente{patient.id}@exemplo.com"
        if email_verified:
            user.email_verified_at = utcnow()
        if phone_proved:
            profile = await session.get_one(PatientProfile, patient.id)
            profile.phone_match_key = phone_match_key(PHONE)
    return patient


async def _remind(ctx, agenda, patient) -> Reminder:
    appointment = await appointments.book(
        ctx.db,
        clinic_rules(),
        patient_id=patient.id,
        doctor_id=agenda.doctor("Paulo").id,
        starts_at=STARTS,
        channel="phone",  # booked at the desk: no verified contact needed
        now=NOW,
        self_service=False,
    )
    await plan_reminders(ctx, clock=at(NOW))
    await dispatch_due(ctx, clock=at(DAY_BEFORE))
    async with ctx.db.session() as session:
        query = select(Reminder).where(Reminder.appointment_id == appointment.id)
        return (
            (await session.execute(query.order_by(Reminder.offset_minutes.desc())))
            .scalars()
            .first()
        )


def _senders(ctx, **failing: str) -> dict[str, FakeProvider]:
    ctx.senders = {
        name: FakeProvider(fail_with=failing.get(name)) for name in ("whatsapp", "twilio", "email")
    }
    return ctx.senders


async def test_a_proved_phone_gets_the_whatsapp_template_without_ever_writing(ctx, agenda):
    senders = _senders(ctx)
    patient = await _signed_up(ctx.db, phone_proved=True, email_verified=True)

    reminder = await _remind(ctx, agenda, patient)

    assert (reminder.status, reminder.channel) == (ReminderStatus.SENT, "whatsapp")
    [message] = senders["whatsapp"].requests
    assert message.template["purpose"] == "reminder"
    async with ctx.db.session() as session:
        query = select(ChannelIdentity).where(ChannelIdentity.patient_id == patient.id)
        reached = {(i.channel, i.external_id) for i in (await session.execute(query)).scalars()}
    assert ("whatsapp", PHONE[1:]) in reached and ("twilio", PHONE) in reached


async def test_whatsapp_refusing_the_number_falls_back_to_sms(ctx, agenda):
    senders = _senders(ctx, whatsapp="(#131026) Message undeliverable")
    patient = await _signed_up(ctx.db, phone_proved=True)

    reminder = await _remind(ctx, agenda, patient)

    assert (reminder.status, reminder.channel) == (ReminderStatus.SENT, "twilio")
    assert len(senders["twilio"].requests) == 1


async def test_the_preferred_channel_chosen_in_the_portal_comes_first(ctx, agenda):
    senders = _senders(ctx)
    patient = await _signed_up(ctx.db, phone_proved=True, email_verified=True, preferred="email")

    reminder = await _remind(ctx, agenda, patient)

    assert reminder.channel == "email" and senders["whatsapp"].requests == []
    [mail] = senders["email"].requests
    assert [a["filename"] for a in mail.attachments] == ["consulta.ics"]


async def test_only_a_verified_email_is_enough(ctx, agenda):
    senders = _senders(ctx)
    patient = await _signed_up(ctx.db, email_verified=True)

    reminder = await _remind(ctx, agenda, patient)

    assert reminder.channel == "email" and senders["twilio"].requests == []


async def test_a_typed_phone_and_an_unverified_email_are_never_written_to(ctx, agenda):
    senders = _senders(ctx)
    patient = await _signed_up(ctx.db)

    reminder = await _remind(ctx, agenda, patient)

    assert (reminder.status, reminder.error) == (ReminderStatus.FAILED, "no_channel")
    assert all(sender.requests == [] for sender in senders.values())
    async with ctx.db.session() as session:
        appointment = await session.get_one(Appointment, reminder.appointment_id)
        rows = (
            (
                await session.execute(
                    select(Reminder).where(Reminder.appointment_id == appointment.id)
                )
            )
            .scalars()
            .all()
        )
    assert reached_nowhere(appointment, rows)  # the staff agenda asks the desk to phone


async def test_after_a_phone_change_the_old_number_gets_nothing_until_the_new_one_is_proved(
    ctx, agenda
):
    senders = _senders(ctx)
    patient = await _signed_up(ctx.db, phone_proved=True)
    async with ctx.db.session() as session:  # reachable on the old number, never written from
        user = await session.get_one(User, patient.id)
        profile = await session.get_one(PatientProfile, patient.id)
        assert {i.channel for i in await contact_identities(session, user, profile)} == {
            "whatsapp",
            "twilio",
        }
    await patients.update_contact(ctx.db, patient.id, phone="+5511912345678")

    reminder = await _remind(ctx, agenda, patient)

    assert (reminder.status, reminder.error) == (ReminderStatus.FAILED, "no_channel")
    assert all(sender.requests == [] for sender in senders.values())


async def test_a_reminder_that_went_out_asks_for_no_call(ctx, agenda):
    _senders(ctx)
    patient = await _signed_up(ctx.db, email_verified=True)

    reminder = await _remind(ctx, agenda, patient)

    async with ctx.db.session() as session:
        appointment = await session.get_one(Appointment, reminder.appointment_id)
    assert not reached_nowhere(appointment, [reminder])


async def test_an_address_another_patient_writes_from_is_not_written_into(ctx, agenda):
    senders = _senders(ctx)
    other = await make_patient(ctx.db, "Outra Pessoa", channels=())
    async with ctx.db.session() as session:
        session.add(ChannelIdentity(channel="whatsapp", external_id=PHONE[1:], patient_id=other.id))
    patient = await _signed_up(ctx.db, phone_proved=True)

    reminder = await _remind(ctx, agenda, patient)

    assert reminder.channel == "twilio" and senders["whatsapp"].requests == []
