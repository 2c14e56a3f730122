"""The clinic's agenda: specialties, doctors, working hours, appointments and reminders."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, StrEnum, UTCDateTime, enum_type, utcnow

if TYPE_CHECKING:
    from models.people import User


class AppointmentStatus(StrEnum):
    SCHEDULED = "agendada"
    CONFIRMED = "confirmada"
    DONE = "realizada"
    NO_SHOW = "faltou"
    CANCELLED = "cancelada"


ACTIVE_APPOINTMENT_STATUSES = (AppointmentStatus.SCHEDULED, AppointmentStatus.CONFIRMED)
_ACTIVE_SQL = "status IN ('agendada', 'confirmada')"


class ReminderStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ReminderKind(StrEnum):
    """What an outbox row tells the patient: a reminder, or a change staff made (the
    appointment cancelled, moved to another time, or inside time the doctor no longer has)."""

    REMINDER = "reminder"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"
    BLOCKED = "blocked"


class Specialty(Base):
    __tablename__ = "specialties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)


# Which specialties each doctor serves (a doctor may serve several).
doctor_specialties = Table(
    "doctor_specialties",
    Base.metadata,
    Column("doctor_id", Integer, ForeignKey("doctors.id", ondelete="CASCADE"), primary_key=True),
    Column("specialty_id", Integer, ForeignKey("specialties.id"), primary_key=True, index=True),
)


class Doctor(Base):
    """A doctor of the clinic's agenda, bookable on the clinic-local days from `active_from`
    to `active_until` (either open); appointments outside them stay as they are."""

    __tablename__ = "doctors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(160))
    crm: Mapped[str | None] = mapped_column(String(32))
    slot_minutes: Mapped[int] = mapped_column(SmallInteger, default=30)
    # The convênios (health plans) the doctor accepts, by the names the clinic profile lists.
    convenios: Mapped[list[str]] = mapped_column(JSON, default=list)
    active_from: Mapped[date | None] = mapped_column(Date)
    active_until: Mapped[date | None] = mapped_column(Date)

    specialties: Mapped[list[Specialty]] = relationship(
        secondary=doctor_specialties, order_by=Specialty.name
    )
    working_hours: Mapped[list[WorkingHours]] = relationship(
        cascade="all, delete-orphan", order_by=lambda: [WorkingHours.weekday, WorkingHours.starts]
    )

    def works_on(self, day: date) -> bool:
        """Whether the clinic-local `day` lies within the doctor's active dates."""
        return (self.active_from is None or self.active_from <= day) and (
            self.active_until is None or day <= self.active_until
        )


class WorkingHours(Base):
    """A weekly block in clinic-local time (America/Sao_Paulo); weekday 0 is Monday."""

    __tablename__ = "working_hours"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    doctor_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("doctors.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)


class ScheduleException(Base):
    """A time nobody (doctor_id NULL: a clinic holiday) or one doctor can be booked."""

    __tablename__ = "schedule_exceptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    doctor_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("doctors.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(160), default="")


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        # The database itself refuses a second active booking of the same doctor and start.
        Index(
            "uq_appointments_active_slot",
            "doctor_id",
            "starts_at",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_appointments_patient_starts", "patient_id", "starts_at"),
        # Appointments whose reminders the worker has not planned yet (a handful at a time).
        Index(
            "ix_appointments_unplanned",
            "id",
            sqlite_where=text("reminders_planned_at IS NULL"),
            postgresql_where=text("reminders_planned_at IS NULL"),
        ),
        # The analytics console: bookings, visits and reschedules by date.
        Index("ix_appointments_created_at", "created_at"),
        Index("ix_appointments_starts_at", "starts_at"),
        Index("ix_appointments_rescheduled_from_id", "rescheduled_from_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    doctor_id: Mapped[int] = mapped_column(Integer, ForeignKey("doctors.id"))
    specialty_id: Mapped[int] = mapped_column(Integer, ForeignKey("specialties.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[AppointmentStatus] = mapped_column(
        enum_type(AppointmentStatus), default=AppointmentStatus.SCHEDULED
    )
    rescheduled_from_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("appointments.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    # Set once the worker has created this appointment's reminder rows (see scheduling.reminders).
    reminders_planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    doctor: Mapped[Doctor] = relationship()
    specialty: Mapped[Specialty] = relationship()
    patient: Mapped[User] = relationship()


class AppointmentEvent(Base):
    """Every change to an appointment: who made it and through which channel."""

    __tablename__ = "appointment_events"
    __table_args__ = (Index("ix_appointment_events_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reminder(Base):
    """A durable outbox row about an appointment, claimed with a lease: one reminder per
    (appointment, offset), and at most one notice of each change staff made (`kind`, offset 0)."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("appointment_id", "kind", "offset_minutes"),
        Index("ix_reminders_due", "status", "due_at"),
        Index("ix_reminders_due_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("appointments.id", ondelete="CASCADE")
    )
    kind: Mapped[ReminderKind] = mapped_column(
        enum_type(ReminderKind), default=ReminderKind.REMINDER, server_default="reminder"
    )
    offset_minutes: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[ReminderStatus] = mapped_column(
        enum_type(ReminderStatus), default=ReminderStatus.PENDING
    )
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str | None] = mapped_column(String(24))
    message_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("messages.id"))
    # The staff member who asked for this reminder ("Enviar lembrete"); None for automatic ones.
    requested_by_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
