"""Conversations, the shared message history, and what staff did in them."""

from __future__ import annotations

import enum

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import relationship

from models.base import Base, StrEnum, UTCDateTime, enum_type, utcnow


class Owner(StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    ATTENDANT = "attendant"


class ConversationStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Priority(enum.IntEnum):
    NORMAL = 0
    HIGH = 1
    CRITICAL = 2


class Direction(StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class AuthorKind(StrEnum):
    PATIENT = "patient"
    BOT = "bot"
    ATTENDANT = "attendant"
    SYSTEM = "system"


class DeliveryStatus(StrEnum):
    """Outbound states only move forward (see `DELIVERY_RANK`); inbound rows are `received`."""

    RECEIVED = "received"
    PENDING = "pending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


DELIVERY_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
    DeliveryStatus.FAILED: 4,
}


class Conversation(Base):
    """One episode between a patient and the clinic on one channel.

    A conversation is open until an attendant resolves it (or it goes idle); the next message
    after that opens a new one owned by the bot.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_queue", "owner", "priority", "queued_at"),
        Index("ix_conversations_patient_open", "patient_id", "channel", "status"),
    )

    id = Column(Integer, primary_key=True)
    patient_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    channel = Column(String(24), nullable=False)
    channel_identity_id = Column(Integer, ForeignKey("channel_identities.id"), nullable=False)
    status = Column(enum_type(ConversationStatus), nullable=False, default=ConversationStatus.OPEN)
    owner = Column(enum_type(Owner), nullable=False, default=Owner.BOT)
    assigned_attendant_id = Column(Integer, ForeignKey("users.id"), index=True)
    priority = Column(SmallInteger, nullable=False, default=int(Priority.NORMAL))
    handoff_reason = Column(String(64))
    opened_at = Column(UTCDateTime, nullable=False, default=utcnow)
    last_message_at = Column(UTCDateTime, nullable=False, default=utcnow)
    handed_off_at = Column(UTCDateTime)
    queued_at = Column(UTCDateTime)  # kept on requeue so a returning conversation keeps its place
    assigned_at = Column(UTCDateTime)
    first_human_reply_at = Column(UTCDateTime)
    resolved_at = Column(UTCDateTime)
    closed_at = Column(UTCDateTime)
    csat_score = Column(SmallInteger)
    # Set once Rasa confirmed the hand-back after resolution; the worker retries while unset.
    handed_back_at = Column(UTCDateTime)
    # Bumped by every ownership transition; writers compare-and-set on it.
    version = Column(Integer, nullable=False, default=0)

    patient = relationship("User", foreign_keys=[patient_id])
    assigned_attendant = relationship("User", foreign_keys=[assigned_attendant_id])
    channel_identity = relationship("ChannelIdentity")


class Message(Base):
    """One turn in the shared history, whoever wrote it and on whichever channel."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        Index("ix_messages_patient_created", "patient_id", "created_at"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    patient_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    channel = Column(String(24), nullable=False)
    direction = Column(enum_type(Direction), nullable=False)
    author_kind = Column(enum_type(AuthorKind), nullable=False)
    author_id = Column(Integer, ForeignKey("users.id"))
    text = Column(Text, nullable=False, default="")
    # Inbound taps on our buttons: the payload the bot receives instead of the text.
    payload = Column(String(255))
    attachments = Column(JSON, nullable=False, default=list)
    buttons = Column(JSON, nullable=False, default=list)
    # Context for channels that must send an approved template outside their messaging window:
    # {"name": ..., "language": ..., "parameters": [...]}; None for free-form messages.
    template = Column(JSON)
    # Staff-only note (internal note, manager whisper): never sent to the patient.
    internal = Column(Boolean, nullable=False, default=False)
    # The provider got a text that is not stored (a one-time code): `text` only describes it,
    # and the message is never retried, since what was sent no longer exists.
    sealed = Column(Boolean, nullable=False, default=False)
    # Inbound: the provider's id. Outbound: the id of its first part (see `OutboundPart`).
    provider_message_id = Column(String(255))
    delivery_status = Column(enum_type(DeliveryStatus), nullable=False)
    error = Column(String(500))
    attempts = Column(Integer, nullable=False, default=0)
    # Outbound sent in parts (long texts): how many the provider took, over every attempt; a
    # retry resumes after them, so the patient never gets a part twice.
    parts_sent = Column(Integer, nullable=False, default=0)
    # Outbound: no retry before this time, when the provider said how long to wait (a 429's
    # retry_after).
    retry_not_before = Column(UTCDateTime)
    # An inbound message's `created_at` is when the patient sent it; this is when it was
    # recorded here (what the sweep of unrouted messages goes by).
    recorded_at = Column(UTCDateTime, nullable=False, default=utcnow)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    sent_at = Column(UTCDateTime)
    delivered_at = Column(UTCDateTime)
    read_at = Column(UTCDateTime)
    # Inbound only: set once the message was routed (to Rasa or to staff). Unset rows are replayed.
    processed_at = Column(UTCDateTime)

    conversation = relationship("Conversation")


class OutboundPart(Base):
    """One piece of an outbound message as its provider knows it (a long text goes out in
    several), with the latest delivery status heard for it; a message's status follows its
    parts' (`messaging.history.settle_delivery`).

    A status can arrive before the send that caused it has recorded the provider's id (Twilio
    calls back at once): it is kept here without a message and applied when the send records
    the id; one never claimed is pruned after a day (`messaging.retries`).
    """

    __tablename__ = "outbound_parts"
    __table_args__ = (UniqueConstraint("channel", "provider_message_id"),)

    id = Column(Integer, primary_key=True)
    message_id = Column(Integer, ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    channel = Column(String(24), nullable=False)
    provider_message_id = Column(String(255), nullable=False)
    position = Column(Integer)
    delivery_status = Column(enum_type(DeliveryStatus), nullable=False)
    error = Column(String(500))
    status_at = Column(UTCDateTime, nullable=False, default=utcnow)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow, index=True)


class AttendantAction(Base):
    """A typed action staff recorded (consulta confirmada, exames entregues...)."""

    __tablename__ = "attendant_actions"

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    patient_id = Column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    actor_id = Column(Integer, ForeignKey("users.id"), nullable=False)
    kind = Column(String(48), nullable=False)
    details = Column(JSON, nullable=False, default=dict)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)


class HandoffKind(StrEnum):
    HANDOFF = "handoff"  # bot → queue
    ASSIGNED = "assigned"  # queue → attendant, by auto-distribution
    TAKEN = "taken"  # queue → attendant, taken by hand
    TRANSFERRED = "transferred"  # attendant → another attendant, by the attendant
    REASSIGNED = "reassigned"  # → another attendant, by a manager
    TAKEN_OVER = "taken_over"  # → a manager (barge-in)
    LINKED = "linked"  # the patient's conversation on another channel joins the attendant's
    REQUEUED = "requeued"  # attendant → queue (offline, no answer, manager)
    PRIORITY = "priority"
    RESOLVED = "resolved"  # → bot


# Transitions that give a conversation to a person.
ASSIGNING_KINDS = (
    HandoffKind.ASSIGNED,
    HandoffKind.TAKEN,
    HandoffKind.TRANSFERRED,
    HandoffKind.REASSIGNED,
    HandoffKind.TAKEN_OVER,
    HandoffKind.LINKED,
)


class HandoffEvent(Base):
    """One ownership transition (handoff, assignment, transfer, requeue, resolution...), written
    in the transition's own transaction: the conversation's supervision trail and the source of
    the queue and first-response metrics."""

    __tablename__ = "handoff_events"
    __table_args__ = (
        Index("ix_handoff_events_conversation_created", "conversation_id", "created_at"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    patient_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind = Column(String(24), nullable=False)
    actor_id = Column(Integer, ForeignKey("users.id"))  # None when the system moved it
    from_attendant_id = Column(Integer, ForeignKey("users.id"))
    to_attendant_id = Column(Integer, ForeignKey("users.id"))
    details = Column(JSON, nullable=False, default=dict)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow, index=True)


class CannedResponse(Base):
    __tablename__ = "canned_responses"

    id = Column(Integer, primary_key=True)
    shortcut = Column(String(32), nullable=False, unique=True)
    text = Column(Text, nullable=False)


class AuditLog(Base):
    """Append-only record of who read or changed which patient's data (LGPD art. 37)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_patient_created", "patient_id", "created_at"),)

    id = Column(Integer, primary_key=True)
    actor_id = Column(Integer, ForeignKey("users.id"))
    action = Column(String(64), nullable=False)
    patient_id = Column(Integer, ForeignKey("users.id"))
    conversation_id = Column(Integer, ForeignKey("conversations.id"))
    details = Column(JSON, nullable=False, default=dict)
    ip = Column(String(64))
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
