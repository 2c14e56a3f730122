"""The clinic's agenda: specialties, doctors, working hours, appointments and reminders."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import relationship

from models.base import Base, StrEnum, UTCDateTime, enum_type, utcnow


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


class Specialty(Base):
    __tablename__ = "specialties"

    id = Column(Integer, primary_key=True)
    name = Column(String(80), nullable=False, unique=True)
    slug = Column(String(80), nullable=False, unique=True)


class Doctor(Base):
    __tablename__ = "doctors"

    id = Column(Integer, primary_key=True)
    name = Column(String(160), nullable=False)
    crm = Column(String(32))
    specialty_id = Column(Integer, ForeignKey("specialties.id"), nullable=False, index=True)
    slot_minutes = Column(SmallInteger, nullable=False, default=30)
    is_active = Column(Boolean, nullable=False, default=True)

    specialty = relationship("Specialty")
    working_hours = relationship("WorkingHours", cascade="all, delete-orphan")


class WorkingHours(Base):
    """A weekly block in clinic-local time (America/Sao_Paulo); weekday 0 is Monday."""

    __tablename__ = "working_hours"

    id = Column(Integer, primary_key=True)
    doctor_id = Column(
        Integer, ForeignKey("doctors.id", ondelete="CASCADE"), nullable=False, index=True
    )
    weekday = Column(SmallInteger, nullable=False)
    starts = Column(Time, nullable=False)
    ends = Column(Time, nullable=False)


class ScheduleException(Base):
    """A time nobody (doctor_id NULL: a clinic holiday) or one doctor can be booked."""

    __tablename__ = "schedule_exceptions"

    id = Column(Integer, primary_key=True)
    doctor_id = Column(Integer, ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    starts_at = Column(UTCDateTime, nullable=False)
    ends_at = Column(UTCDateTime, nullable=False)
    reason = Column(String(160), nullable=False, default="")


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
    )

    id = Column(Integer, primary_key=True)
    patient_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    doctor_id = Column(Integer, ForeignKey("doctors.id"), nullable=False)
    specialty_id = Column(Integer, ForeignKey("specialties.id"), nullable=False)
    starts_at = Column(UTCDateTime, nullable=False)
    ends_at = Column(UTCDateTime, nullable=False)
    status = Column(
        enum_type(AppointmentStatus), nullable=False, default=AppointmentStatus.SCHEDULED
    )
    rescheduled_from_id = Column(Integer, ForeignKey("appointments.id"))
    notes = Column(Text, nullable=False, default="")
    # Set once the worker has created this appointment's reminder rows (see scheduling.reminders).
    reminders_planned_at = Column(UTCDateTime)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)

    doctor = relationship("Doctor")
    specialty = relationship("Specialty")
    patient = relationship("User")


class AppointmentEvent(Base):
    """Every change to an appointment: who made it and through which channel."""

    __tablename__ = "appointment_events"

    id = Column(Integer, primary_key=True)
    appointment_id = Column(
        Integer, ForeignKey("appointments.id", ondelete="CASCADE"), nullable=False, index=True
    )
    from_status = Column(String(24))
    to_status = Column(String(24), nullable=False)
    actor_id = Column(Integer, ForeignKey("users.id"))
    channel = Column(String(24), nullable=False)
    note = Column(Text, nullable=False, default="")
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)


class Reminder(Base):
    """A durable outbox row: one reminder per (appointment, offset), claimed with a lease."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("appointment_id", "offset_minutes"),
        Index("ix_reminders_due", "status", "due_at"),
    )

    id = Column(Integer, primary_key=True)
    appointment_id = Column(
        Integer, ForeignKey("appointments.id", ondelete="CASCADE"), nullable=False
    )
    offset_minutes = Column(Integer, nullable=False)
    due_at = Column(UTCDateTime, nullable=False)
    status = Column(enum_type(ReminderStatus), nullable=False, default=ReminderStatus.PENDING)
    lease_owner = Column(String(64))
    lease_until = Column(UTCDateTime)
    attempts = Column(Integer, nullable=False, default=0)
    channel = Column(String(24))
    message_id = Column(Integer, ForeignKey("messages.id"))
    # The staff member who asked for this reminder ("Enviar lembrete"); None for automatic ones.
    requested_by_id = Column(Integer, ForeignKey("users.id"))
    error = Column(Text)
    sent_at = Column(UTCDateTime)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
