"""A hand-made week of a clinic (2026-11-02 to 2026-11-08, São Paulo days, UTC-3), with every
moment written out, so the analytics tests can state each figure by hand.

Conversations (times UTC):
- A whatsapp, patient 1: handoff 11-02 12:00 (09:00 local), Ana assigned 12:01, replies 12:02,
  resolves 12:30, CSAT 5. Reopened: the same patient is handed off again (D) within 72 h.
- B whatsapp, patient 2: handoff 11-03 02:30 (11-02 23:30 local: still Monday in São Paulo),
  Ana assigned 02:40, transfers to Bruno 02:45, Bruno replies 02:50 (20 min: over the SLA),
  resolves 03:10, CSAT 2.
- C webchat, patient 3: handoff 11-03 03:30 (00:30 local on Tuesday), Ana assigned 03:35, Ana
  goes offline and it is requeued 03:40, then a second handoff request adds a priority
  event; nobody answers: still waiting.
- D webchat, patient 1: handoff 11-04 12:00, Bruno assigned 12:05, replies 12:06; open.
- E webchat, patient 4: the bot alone, 11-05 15:00 (contained).
- F whatsapp, patient 1: 11-04 12:01, linked to Bruno's episode (same handoff as D).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from handoff import facts
from handoff.analytics import Filters, Period, Scope
from models import (
    Appointment,
    AppointmentEvent,
    AppointmentStatus,
    AttendantProfile,
    AuthorKind,
    ChannelIdentity,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Doctor,
    HandoffEvent,
    Message,
    Owner,
    Presence,
    Reminder,
    ReminderStatus,
    Role,
    Specialty,
    User,
)
from models.db import Database

WEEK = Period(date(2026, 11, 2), date(2026, 11, 8))
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Week:
    ana: int
    bruno: int
    conversations: dict[str, int]
    appointments: dict[str, int]


def scope(dialect: str, period: Period = WEEK, **filters: object) -> Scope:
    return Scope(period, Filters(**filters), dialect, NOW)  # type: ignore[arg-type]


async def build(db: Database) -> Week:
    async with db.session() as session:
        ana = _staff("Ana", Role.ATTENDANT, Presence.ONLINE)
        bruno = _staff("Bruno", Role.ATTENDANT, Presence.PAUSED)
        marta = _staff("Marta", Role.MANAGER, Presence.OFFLINE)
        patients = [User(name=f"Paciente {n}", role=Role.PATIENT) for n in range(1, 5)]
        session.add_all([ana, bruno, marta, *patients])
        await session.flush()
        ids = {
            channel: {
                p.id: ChannelIdentity(
                    channel=channel, external_id=f"{channel}-{p.id}", patient_id=p.id
                )
                for p in patients
            }
            for channel in ("whatsapp", "webchat")
        }
        session.add_all([i for per in ids.values() for i in per.values()])
        await session.flush()

        def conversation(
            patient: User, channel: str, opened: datetime, **fields: object
        ) -> Conversation:
            c = Conversation(
                patient_id=patient.id,
                channel=channel,
                channel_identity_id=ids[channel][patient.id].id,
                opened_at=opened,
                last_message_at=opened,
                **fields,
            )
            session.add(c)
            return c

        p1, p2, p3, p4 = patients
        a = conversation(
            p1,
            "whatsapp",
            at(11, 2, 11, 58),
            handed_off_at=at(11, 2, 12),
            handoff_reason="pedido_do_paciente",
            first_human_reply_at=at(11, 2, 12, 2),
            resolved_at=at(11, 2, 12, 30),
            csat_score=5,
            status=ConversationStatus.CLOSED,
        )
        b = conversation(
            p2,
            "whatsapp",
            at(11, 3, 2, 29),
            handed_off_at=at(11, 3, 2, 30),
            handoff_reason="emergencia",
            first_human_reply_at=at(11, 3, 2, 50),
            resolved_at=at(11, 3, 3, 10),
            csat_score=2,
            status=ConversationStatus.CLOSED,
        )
        c = conversation(
            p3,
            "webchat",
            at(11, 3, 3, 30),
            handed_off_at=at(11, 3, 3, 30),
            handoff_reason="pedido_do_paciente",
            owner=Owner.QUEUED,
            queued_at=at(11, 3, 3, 30),
        )
        d = conversation(
            p1,
            "webchat",
            at(11, 4, 11, 59),
            handed_off_at=at(11, 4, 12),
            handoff_reason="duvida",
            first_human_reply_at=at(11, 4, 12, 6),
            owner=Owner.ATTENDANT,
            assigned_attendant_id=bruno.id,
        )
        e = conversation(p4, "webchat", at(11, 5, 15))
        f = conversation(
            p1,
            "whatsapp",
            at(11, 4, 12, 1),
            handed_off_at=at(11, 4, 12, 1),
            owner=Owner.ATTENDANT,
            assigned_attendant_id=bruno.id,
        )
        await session.flush()

        def event(
            conv: Conversation,
            kind: str,
            moment: datetime,
            frm: User | None = None,
            to: User | None = None,
        ) -> None:
            session.add(
                HandoffEvent(
                    conversation_id=conv.id,
                    patient_id=conv.patient_id,
                    kind=kind,
                    from_attendant_id=frm.id if frm else None,
                    to_attendant_id=to.id if to else None,
                    created_at=moment,
                )
            )

        def reply(
            conv: Conversation, author: User, moment: datetime, internal: bool = False
        ) -> Message:
            m = Message(
                conversation_id=conv.id,
                patient_id=conv.patient_id,
                channel=conv.channel,
                direction=Direction.OUTBOUND,
                author_kind=AuthorKind.ATTENDANT,
                author_id=author.id,
                text="…",
                internal=internal,
                delivery_status=DeliveryStatus.SENT,
                created_at=moment,
            )
            session.add(m)
            return m

        event(a, "handoff", at(11, 2, 12))
        event(a, "assigned", at(11, 2, 12, 1), to=ana)
        reply(a, ana, at(11, 2, 12, 2))
        event(a, "resolved", at(11, 2, 12, 30), frm=ana)

        event(b, "handoff", at(11, 3, 2, 30))
        event(b, "assigned", at(11, 3, 2, 40), to=ana)
        reply(b, ana, at(11, 3, 2, 44), internal=True)  # a note is not a reply
        event(b, "transferred", at(11, 3, 2, 45), frm=ana, to=bruno)
        reply(b, bruno, at(11, 3, 2, 50))
        event(b, "resolved", at(11, 3, 3, 10), frm=bruno)

        event(c, "handoff", at(11, 3, 3, 30))
        event(c, "assigned", at(11, 3, 3, 35), to=ana)
        event(c, "requeued", at(11, 3, 3, 40), frm=ana)
        event(c, "priority", at(11, 3, 3, 45))

        event(d, "handoff", at(11, 4, 12))
        event(d, "assigned", at(11, 4, 12, 5), to=bruno)
        reply(d, bruno, at(11, 4, 12, 6))
        event(f, "linked", at(11, 4, 12, 1), to=bruno)

        visits = await _appointments(session, p1, p2, p3, ana)
        message = reply(a, ana, at(11, 4, 13))
        message.delivery_status = DeliveryStatus.READ
        delivered = reply(a, ana, at(11, 6, 10))
        delivered.delivery_status = DeliveryStatus.DELIVERED
        await session.flush()
        session.add_all(
            [
                Reminder(
                    appointment_id=visits["p1"],
                    offset_minutes=1440,
                    due_at=at(11, 4, 13),
                    status=ReminderStatus.SENT,
                    channel="whatsapp",
                    message_id=message.id,
                    sent_at=at(11, 4, 13),
                ),
                Reminder(
                    appointment_id=visits["p2"],
                    offset_minutes=1440,
                    due_at=at(11, 5, 14),
                    status=ReminderStatus.FAILED,
                    channel="telegram",
                ),
                Reminder(
                    appointment_id=visits["p5"],
                    offset_minutes=1440,
                    due_at=at(11, 6, 10),
                    status=ReminderStatus.SENT,
                    channel="whatsapp",
                    message_id=delivered.id,
                    sent_at=at(11, 6, 10),
                ),
                # Due next week: outside the report.
                Reminder(
                    appointment_id=visits["p4"],
                    offset_minutes=60,
                    due_at=at(11, 19, 10),
                    status=ReminderStatus.PENDING,
                    channel="whatsapp",
                ),
            ]
        )
        # The trail and replies were written here, not by the transitions: their facts are
        # rebuilt as the migration that introduced them does.
        await session.flush()
        for statement in facts.rebuild():
            await session.execute(statement)
        names = {"A": a, "B": b, "C": c, "D": d, "E": e, "F": f}
        return Week(ana.id, bruno.id, {k: v.id for k, v in names.items()}, visits)


def _staff(name: str, role: Role, presence: Presence) -> User:
    user = User(name=name, email=f"{name.lower()}@clinica.test", role=role)
    user.attendant_profile = AttendantProfile(presence=presence)
    return user


async def _appointments(session, p1: User, p2: User, p3: User, ana: User) -> dict[str, int]:
    """P1 booked by the bot on WhatsApp, confirmed by the patient's reply to its reminder, seen;
    P2 on the portal, missed; P3 by staff, cancelled; P4 by the bot, rescheduled into P5."""
    specialty = Specialty(name="Clínica geral", slug="clinica-geral-analytics")
    session.add(specialty)
    await session.flush()
    doctor = Doctor(name="Dra. Teste", specialties=[specialty])
    session.add(doctor)
    await session.flush()

    def appointment(
        patient: User,
        created: datetime,
        starts: datetime,
        status: AppointmentStatus,
        **fields: object,
    ) -> Appointment:
        a = Appointment(
            patient_id=patient.id,
            doctor_id=doctor.id,
            specialty_id=specialty.id,
            starts_at=starts,
            ends_at=starts.replace(minute=30),
            status=status,
            created_at=created,
            **fields,
        )
        session.add(a)
        return a

    def event(
        a: Appointment,
        frm: str | None,
        to: str,
        channel: str,
        moment: datetime,
        actor: User | None = None,
    ) -> None:
        session.add(
            AppointmentEvent(
                appointment_id=a.id,
                from_status=frm,
                to_status=to,
                channel=channel,
                created_at=moment,
                actor_id=actor.id if actor else None,
            )
        )

    first = appointment(p1, at(11, 2, 13), at(11, 5, 13), AppointmentStatus.DONE)
    second = appointment(p2, at(11, 3, 14), at(11, 6, 14), AppointmentStatus.NO_SHOW)
    third = appointment(p3, at(11, 3, 15), at(11, 4, 15), AppointmentStatus.CANCELLED)
    fourth = appointment(p1, at(11, 2, 10), at(11, 20, 10), AppointmentStatus.CANCELLED)
    await session.flush()
    fifth = appointment(
        p1,
        at(11, 4, 10),
        at(11, 21, 10),
        AppointmentStatus.SCHEDULED,
        rescheduled_from_id=fourth.id,
    )
    await session.flush()
    event(first, None, "agendada", "whatsapp", at(11, 2, 13))
    event(first, "agendada", "confirmada", "whatsapp", at(11, 4, 14))
    event(first, "confirmada", "realizada", "staff", at(11, 5, 14), ana)
    event(second, None, "agendada", "portal", at(11, 3, 14))
    event(second, "agendada", "faltou", "staff", at(11, 6, 15), ana)
    event(third, None, "agendada", "staff", at(11, 3, 15), ana)
    event(third, "agendada", "cancelada", "staff", at(11, 3, 16), ana)
    event(fourth, None, "agendada", "whatsapp", at(11, 2, 10))
    event(fourth, "agendada", "cancelada", "whatsapp", at(11, 4, 10))
    event(fifth, None, "agendada", "whatsapp", at(11, 4, 10))
    return {"p1": first.id, "p2": second.id, "p3": third.id, "p4": fourth.id, "p5": fifth.id}
