"""Conversations, the shared message history, and what staff did in them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, StrEnum, UTCDateTime, enum_type, utcnow

if TYPE_CHECKING:
    from models.people import ChannelIdentity, User


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
        # The analytics console filters by these dates and looks for a patient's next handoff.
        Index("ix_conversations_opened_at", "opened_at"),
        Index("ix_conversations_handed_off_at", "handed_off_at"),
        Index("ix_conversations_patient_handed_off", "patient_id", "handed_off_at"),
        # The idle-close sweep looks for open bot conversations quiet for a while.
        Index("ix_conversations_open_owner_last_message", "status", "owner", "last_message_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(24))
    # Indexed: every inbound message looks up its identity's recent conversations.
    channel_identity_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("channel_identities.id"), index=True
    )
    status: Mapped[ConversationStatus] = mapped_column(
        enum_type(ConversationStatus), default=ConversationStatus.OPEN
    )
    owner: Mapped[Owner] = mapped_column(enum_type(Owner), default=Owner.BOT)
    assigned_attendant_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id"), index=True
    )
    # A `Priority` value, stored as its integer.
    priority: Mapped[int] = mapped_column(SmallInteger, default=int(Priority.NORMAL))
    handoff_reason: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Kept on requeue so a returning conversation keeps its place.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_human_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    csat_score: Mapped[int | None] = mapped_column(SmallInteger)
    # Set once Rasa confirmed the hand-back after resolution; the worker retries while unset.
    handed_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every ownership transition; writers compare-and-set on it.
    version: Mapped[int] = mapped_column(Integer, default=0)

    patient: Mapped[User] = relationship(foreign_keys=[patient_id])
    assigned_attendant: Mapped[User | None] = relationship(foreign_keys=[assigned_attendant_id])
    channel_identity: Mapped[ChannelIdentity] = relationship()


class Message(Base):
    """One turn in the shared history, whoever wrote it and on whichever channel."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id"),
        Index("ix_messages_conversation_created", "conversation_id", "created_at"),
        Index("ix_messages_patient_created", "patient_id", "created_at"),
        # Each conversation's first human reply, for the analytics console.
        Index(
            "ix_messages_attendant_replies",
            "conversation_id",
            "id",
            sqlite_where=text("author_kind = 'attendant' AND internal = 0"),
            postgresql_where=text("author_kind = 'attendant' AND internal = false"),
        ),
        # The few messages whose files are still to fetch, for the sweep.
        Index(
            "ix_messages_files_pending",
            "id",
            sqlite_where=text("files_pending = 1"),
            postgresql_where=text("files_pending = true"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    patient_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(24))
    direction: Mapped[Direction] = mapped_column(enum_type(Direction))
    author_kind: Mapped[AuthorKind] = mapped_column(enum_type(AuthorKind))
    author_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text, default="")
    # Inbound taps on our buttons: the payload the bot receives instead of the text.
    payload: Mapped[str | None] = mapped_column(String(255))
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    buttons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Outbound from the bot: what its question asks for (`messaging.redaction.NAME`); the
    # patient's next text is redacted as that answer before the assistant reads it.
    expects: Mapped[str | None] = mapped_column(String(24))
    # Context for channels that must send an approved template outside their messaging window:
    # {"name": ..., "language": ..., "parameters": [...]}; None for free-form messages.
    template: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Staff-only note (internal note, manager whisper): never sent to the patient.
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    # The provider got a text that is not stored (a one-time code): `text` only describes it,
    # and the message is never retried, since what was sent no longer exists.
    sealed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Inbound: the provider's id. Outbound: the id of its first part (see `OutboundPart`).
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    delivery_status: Mapped[DeliveryStatus] = mapped_column(enum_type(DeliveryStatus))
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Outbound sent in parts (long texts): how many the provider took, over every attempt; a
    # retry resumes after them, so the patient never gets a part twice.
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    # Outbound: no retry before this time, when the provider said how long to wait (a 429's
    # retry_after).
    retry_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An inbound message's `created_at` is when the patient sent it; this is when it was
    # recorded here (what the sweep of unrouted messages goes by).
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Inbound only: set once the message was routed (to Rasa or to staff). Unset rows are replayed.
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Inbound only: attachments still to fetch from the provider (`messaging.files`); set
    # when recorded, cleared once each is stored or given up on. Set rows are fetched again.
    files_pending: Mapped[bool] = mapped_column(Boolean, default=False)

    conversation: Mapped[Conversation] = relationship()


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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(24))
    provider_message_id: Mapped[str] = mapped_column(String(255))
    position: Mapped[int | None] = mapped_column(Integer)
    delivery_status: Mapped[DeliveryStatus] = mapped_column(enum_type(DeliveryStatus))
    error: Mapped[str | None] = mapped_column(String(500))
    status_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AttendantAction(Base):
    """A typed action staff recorded (consulta confirmada, exames entregues...)."""

    __tablename__ = "attendant_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(48))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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
    CLOSED_FOR_ERASURE = "closed_for_erasure"  # closed, wherever it was: the patient was erased
    CLOSED_IDLE = "closed_idle"  # a bot conversation closed after IDLE_CLOSE_HOURS of silence
    # Closed, wherever it was: a manager merged two records and another of the patient's
    # open conversations goes on.
    CLOSED_BY_MERGE = "closed_by_merge"


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
        # The patients an attendant has served (core.access.served_patients).
        Index("ix_handoff_events_to_attendant_patient", "to_attendant_id", "patient_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    patient_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    # A `HandoffKind` value, stored as a plain string.
    kind: Mapped[str] = mapped_column(String(24))
    # None when the system moved it.
    actor_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    from_attendant_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    to_attendant_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class HandoffFacts(Base):
    """What the analytics console needs of one conversation's handoff trail and replies, kept
    up to date in the transaction that changes it (`handoff.facts`) so a report aggregates one
    row per conversation instead of deriving it from every transition and message."""

    __tablename__ = "handoff_facts"

    conversation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    # A bot → queue transition happened (a `linked` conversation only joined another's).
    handed: Mapped[bool] = mapped_column(Boolean, default=False)
    first_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The latest resolution, and who held the conversation then.
    resolution_event_id: Mapped[int | None] = mapped_column(Integer)
    resolver_id: Mapped[int | None] = mapped_column(Integer)
    # The first human reply (notes are not replies), and who sent it.
    first_reply_id: Mapped[int | None] = mapped_column(Integer)
    replier_id: Mapped[int | None] = mapped_column(Integer)


class CannedResponse(Base):
    """A reply staff insert by typing `/shortcut` in the reply box; managed by managers
    (`handoff.labels`)."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(32), unique=True)
    text: Mapped[str] = mapped_column(Text)


class Label(Base):
    """A tag managers define (name, colour) and staff put on conversations: shown on the
    conversation lists, and a filter of the lists and of the analytics console."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    # `#rrggbb`
    colour: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationLabel(Base):
    """A label on a conversation, and who put it there."""

    __tablename__ = "conversation_labels"
    __table_args__ = (
        # The analytics console and the lists filter conversations by label.
        Index("ix_conversation_labels_label_conversation", "label_id", "conversation_id"),
    )

    conversation_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True
    )
    actor_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditLog(Base):
    """Append-only, hash-chained record of who did what to whose data (LGPD art. 37), written
    only through `core.audit.record`. The database refuses UPDATE and DELETE on it. Users,
    patients and conversations are named by id without foreign keys: the log outlives them."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_patient_created", "patient_id", "created_at"),
        Index("ix_audit_log_actor_created", "actor_id", "created_at"),
        Index("ix_audit_log_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(Integer)
    conversation_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # SHA-256 hex of the entry before it (None for the first) and of this one; None for
    # entries written before the chain existed.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))
