"""The clinic's approved message templates: what may be sent to a patient when a channel's
messaging window is closed (WhatsApp's 24 hours), kept by an admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, StrEnum, UTCDateTime, enum_type, utcnow


class TemplateKind(StrEnum):
    """Which provider approved the template: a WhatsApp Cloud template (name + language) or a
    Twilio Content template (ContentSid)."""

    WHATSAPP = "whatsapp"
    TWILIO = "twilio"


class TemplatePurpose(StrEnum):
    """What the template is for: re-opening a conversation with a free reply, an
    appointment reminder, or telling the patient the clinic cancelled, moved or must move
    their appointment (`scheduling.reminders.NOTICE_TEMPLATES`)."""

    REPLY = "reply"
    REMINDER = "reminder"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    APPOINTMENT_RESCHEDULED = "appointment_rescheduled"
    APPOINTMENT_BLOCKED = "appointment_blocked"


class MessageTemplate(Base):
    """One approved template. `body` is its pt-BR text with numbered placeholders ({{1}},
    {{2}}...), as approved at the provider: staff see it rendered and the history records it;
    `variables` describes each placeholder in order (`[{"description": "Nome do paciente"}]`).
    Inactive templates are kept (messages name them) but no longer offered."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("kind", "name", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[TemplateKind] = mapped_column(enum_type(TemplateKind))
    # What staff and admins call it; for WhatsApp also the template's name at Meta.
    name: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(16), default="pt_BR")
    # Twilio only: the Content template's id (HX...).
    content_sid: Mapped[str | None] = mapped_column(String(64))
    purpose: Mapped[TemplatePurpose] = mapped_column(enum_type(TemplatePurpose))
    body: Mapped[str] = mapped_column(Text)
    variables: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
