"""The one shared history: every turn of every channel, recorded before it is acted on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from channels.base import Inbound
from messaging.files import claim_uploads, has_files
from messaging.identities import identity_matches, refresh_identity, resolve_identity
from models import (
    DELIVERY_RANK,
    AuthorKind,
    ChannelIdentity,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    OutboundPart,
    Owner,
    User,
    utcnow,
)
from models.db import upsert


@dataclass(frozen=True)
class Around:
    """What recording read about the patient beyond the message's own thread, for routing;
    None where it was not read."""

    # With (or waiting for) a person on another conversation.
    person_elsewhere: bool | None = None
    # Patient messages recorded before this one and not routed yet (a turn failed or died).
    unrouted_before: bool | None = None


@dataclass(frozen=True)
class Recorded:
    message: Message
    conversation: Conversation
    identity: ChannelIdentity
    around: Around = Around()


async def open_conversation(session: AsyncSession, identity: ChannelIdentity) -> Conversation:
    """The identity's open conversation, or a new one owned by the bot."""
    query = (
        select(Conversation)
        .where(
            Conversation.channel_identity_id == identity.id,
            Conversation.status == ConversationStatus.OPEN,
        )
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    conversation = (await session.execute(query)).scalar_one_or_none()
    if conversation is None:
        conversation = Conversation(
            patient_id=identity.patient_id,
            channel=identity.channel,
            channel_identity_id=identity.id,
        )
        session.add(conversation)
        await session.flush()
    return conversation


async def episode_elsewhere(
    session: AsyncSession, conversation: Conversation
) -> Conversation | None:
    """The patient's other open conversation in the queue or with a person, if any."""
    query = (
        select(Conversation)
        .where(
            Conversation.patient_id == conversation.patient_id,
            Conversation.id != conversation.id,
            Conversation.status == ConversationStatus.OPEN,
            Conversation.owner != Owner.BOT,
        )
        .order_by(Conversation.id)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def latest_conversation(
    session: AsyncSession, patient_id: int, channel: str
) -> Conversation | None:
    """Where a bot-initiated message to this patient on this channel belongs: the most
    recently active conversation (one patient may have two, e.g. SMS and WhatsApp on Twilio).
    A patient merged into another has none left: their replies follow the merge (the turn
    that proved an identity is answered under the old patient id)."""
    query = (
        select(Conversation)
        .where(Conversation.patient_id == patient_id, Conversation.channel == channel)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(1)
    )
    conversation = (await session.execute(query)).scalar_one_or_none()
    if conversation is None:
        merged_into = await session.scalar(select(User.merged_into_id).where(User.id == patient_id))
        if merged_into is not None:
            return await latest_conversation(session, merged_into, channel)
    return conversation


async def record_inbound(session: AsyncSession, inbound: Inbound) -> Recorded:
    """Record a patient message. A provider message recorded before fails the insert with
    IntegrityError (unique channel and provider id), which rolls the whole transaction back:
    the caller treats it as a redelivery, and nothing this one did stays.

    A message to a conversation a person serves (or waits to serve) is recorded processed:
    the staff screens show it, and there is nothing to route.

    A known person's message — nearly every one — costs one read (`_known_thread`), the
    insert and two updates, written as statements (no unit of work to flush); a new person,
    a new alias or phone, or no open conversation goes through the full resolution first."""
    identity, conversation, around = await _thread(session, inbound)
    return await _insert_inbound(session, inbound, identity, conversation, around)


async def record_at_once(session: AsyncSession, inbound: Inbound) -> Recorded | None:
    """`record_inbound` of a known person's message that brings nothing new to an open
    conversation, on PostgreSQL, where it is one read and one statement: the session may
    then commit each on its own (autocommit: no BEGIN and COMMIT round trips), since the one
    statement that writes is atomic. None, having written nothing, when recording needs more
    (then `record_inbound`, in a transaction)."""
    if (await session.connection()).dialect.name != "postgresql":
        return None  # elsewhere it takes three statements: a transaction
    known = await _known_thread(session, inbound)
    if known is None:
        return None
    identity, open_one, around = known
    if open_one is None or _news(identity, inbound):
        return None
    return await _insert_inbound(session, inbound, identity, open_one, around)


async def _insert_inbound(
    session: AsyncSession,
    inbound: Inbound,
    identity: ChannelIdentity,
    conversation: Conversation,
    around: Around,
) -> Recorded:
    now = utcnow()
    done = inbound.automatic or conversation.owner != Owner.BOT
    values: dict[str, Any] = {
        **_column_defaults(_messages),
        "direction": Direction.INBOUND,
        "author_kind": AuthorKind.PATIENT,
        "delivery_status": DeliveryStatus.RECEIVED,
        "conversation_id": conversation.id,
        "patient_id": identity.patient_id,
        "channel": inbound.channel,
        "text": inbound.text,
        "payload": inbound.payload,
        "attachments": inbound.attachments,
        "files_pending": has_files(inbound.attachments),
        "provider_message_id": inbound.provider_message_id,
        "recorded_at": now,
        "created_at": inbound.sent_at or now,
        "processed_at": now if done else None,
    }
    touched = {"identity_id": identity.id, "conversation_id": conversation.id, "now": now}
    parameters = {**{f"new_{key}": value for key, value in values.items()}, **touched}
    connection = await session.connection()
    if connection.dialect.name == "postgresql":  # the three writes in one round trip
        message_id = (await connection.execute(_RECORD_AT_ONCE, parameters)).scalar_one()
    else:
        message_id = (await connection.execute(_INSERT_MESSAGE, parameters)).scalar_one()
        await connection.execute(_TOUCH_IDENTITY, touched)
        await connection.execute(_TOUCH_CONVERSATION, touched)
    # What the statements wrote, on the objects the caller gets (as if loaded so).
    set_committed_value(identity, "last_inbound_at", now)
    set_committed_value(conversation, "last_message_at", now)
    return Recorded(_as_loaded(message_id, values), conversation, identity, around)


def _as_loaded(message_id: int, values: dict[str, Any]) -> Message:
    """The message a statement inserted, as if loaded (detached, every attribute set)."""
    message = Message(id=message_id, **values)
    make_transient_to_detached(message)
    return message


# Built once (Core, on the tables): building a statement costs more than running it cached.
_messages, _identities, _conversations = (
    cast(Table, model.__table__) for model in (Message, ChannelIdentity, Conversation)
)
_INSERT_MESSAGE = (
    insert(_messages)
    .values(
        {
            column: bindparam(f"new_{column.key}", type_=column.type)
            for column in _messages.c
            if not column.primary_key
        }
    )
    .returning(_messages.c.id)
)
_TOUCH_IDENTITY = (
    update(_identities)
    .where(_identities.c.id == bindparam("identity_id"))
    .values(last_inbound_at=bindparam("now"))
)
_TOUCH_CONVERSATION = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"))
    .values(last_message_at=bindparam("now"))
)

_MARK_PROCESSED = (
    update(_messages)
    .where(_messages.c.id == bindparam("message_id"), _messages.c.processed_at.is_(None))
    .values(processed_at=bindparam("processed_at_now"))
)

# The conversation an answer goes to, as it is now, its last message time moved to `now`
# unless that is None (the answer says nothing to the patient).
_TOUCH_AND_READ_CONVERSATION = (
    update(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .values(last_message_at=func.coalesce(bindparam("now"), Conversation.last_message_at))
    .returning(Conversation)
    .execution_options(synchronize_session=False)
)

# PostgreSQL runs data-modifying CTEs: the insert and both updates as one statement.
_RECORD_AT_ONCE = select(_INSERT_MESSAGE.cte("recorded").c.id).add_cte(
    _TOUCH_IDENTITY.cte("identity_touched"), _TOUCH_CONVERSATION.cte("conversation_touched")
)


def _column_defaults(table: Table) -> dict[str, Any]:
    """Every column but the key with its default (None when it has none), evaluated now: a
    statement that binds each column, and an object with each attribute set, whatever
    columns the table has."""
    return {column.key: _default(column.default) for column in table.c if not column.primary_key}


def _default(default: Any) -> Any:
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg


async def _thread(
    session: AsyncSession, inbound: Inbound
) -> tuple[ChannelIdentity, Conversation, Around]:
    """The identity, its open conversation and what was read around them; resolved in full,
    and the identity refreshed, only when the message brings something new."""
    known = await _known_thread(session, inbound)
    if known is not None:
        identity, open_one, around = known
        if open_one is not None and not _news(identity, inbound):
            return identity, open_one, around
        patient_id = identity.patient_id
        await refresh_identity(
            session,
            identity,
            phone=inbound.phone,
            aliases=inbound.aliases,
            details=inbound.identity_details,
        )
        if open_one is not None and identity.patient_id == patient_id:  # not merged
            return identity, open_one, around
    else:
        identity = await resolve_identity(
            session,
            inbound.channel,
            inbound.external_user_id,
            display_name=inbound.display_name,
            phone=inbound.phone,
            email=inbound.email,
            aliases=inbound.aliases,
            details=inbound.identity_details,
        )
    return identity, await open_conversation(session, identity), Around()


def _news(identity: ChannelIdentity, inbound: Inbound) -> bool:
    """Whether the message tells something the identity does not know yet (a phone the
    provider proved, a new alias or detail): then `refresh_identity` has work to do."""
    if inbound.phone and inbound.phone != identity.verified_phone:
        return True
    known = identity.details or {}
    new = {**inbound.aliases, **inbound.identity_details}
    return any(known.get(key) != value for key, value in new.items())


def _known_thread_query() -> Select[ChannelIdentity, Conversation, bool, bool]:
    """`_known_thread`'s query but for which identity: built once, since building it (an
    alias of a table makes a copy of each column) costs more than running it."""
    unrouted = (
        select(Message.id)
        .where(
            Message.patient_id == ChannelIdentity.patient_id,
            Message.direction == Direction.INBOUND,
            Message.processed_at.is_(None),
        )
        .exists()
    )
    other = aliased(Conversation)
    with_a_person_elsewhere = (
        select(other.id)
        .where(
            other.patient_id == ChannelIdentity.patient_id,
            other.status == ConversationStatus.OPEN,
            other.owner != Owner.BOT,
            or_(Conversation.id.is_(None), other.id != Conversation.id),
        )
        .exists()
    )
    return (
        select(ChannelIdentity, Conversation, with_a_person_elsewhere, unrouted)
        .outerjoin(
            Conversation,
            and_(
                Conversation.channel_identity_id == ChannelIdentity.id,
                Conversation.status == ConversationStatus.OPEN,
            ),
        )
        .order_by(ChannelIdentity.id, Conversation.id.desc())
        .limit(1)
    )


_KNOWN_THREAD = _known_thread_query()


async def _known_thread(
    session: AsyncSession, inbound: Inbound
) -> tuple[ChannelIdentity, Conversation | None, Around] | None:
    """The identity the message comes from, its open conversation (if any), whether its
    patient is with (or waiting for) a person on another conversation and whether they have
    messages not routed yet, in one query; None for someone never seen on this channel."""
    query = _KNOWN_THREAD.where(
        identity_matches(inbound.channel, inbound.external_user_id, inbound.aliases)
    )
    row = (await session.execute(query)).first()
    if row is None:
        return None
    identity, conversation, elsewhere, unrouted = row
    return identity, conversation, Around(bool(elsewhere), bool(unrouted))


async def record_outbound(
    session: AsyncSession,
    conversation: Conversation,
    *,
    text: str,
    author_kind: AuthorKind,
    author_id: int | None = None,
    buttons: list[dict[str, str]] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    internal: bool = False,
    template: dict[str, Any] | None = None,
    sealed: bool = False,
    claimed: bool = False,
    expects: str | None = None,
) -> Message:
    """Record a message to the patient (pending delivery) or a staff-only note; a `sealed`
    one's text describes what the provider got (see messaging.outbound.Sealed). A `claimed`
    one is recorded with its first delivery attempt taken (`messaging.outbound.deliver`).
    A bot question `expects` what it asks for (`messaging.redaction`)."""
    now = utcnow()
    message = Message(
        **_outbound_values(
            conversation,
            now,
            Reply(text, buttons or [], expects),
            author_kind=author_kind,
            author_id=author_id,
            attachments=attachments or [],
            template=template,
            internal=internal,
            sealed=sealed,
            claimed=claimed,
        )
    )
    session.add(message)
    if not internal:
        conversation.last_message_at = now
    await session.flush()
    await claim_uploads(session, message)
    return message


@dataclass(frozen=True)
class Reply:
    """What one message of the clinic's answer says."""

    text: str
    buttons: list[dict[str, str]]
    expects: str | None = None


def _outbound_values(
    conversation: Conversation,
    now: datetime,
    reply: Reply,
    *,
    author_kind: AuthorKind,
    author_id: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
    template: dict[str, Any] | None = None,
    internal: bool = False,
    sealed: bool = False,
    claimed: bool = False,
) -> dict[str, Any]:
    return {
        "conversation_id": conversation.id,
        "patient_id": conversation.patient_id,
        "channel": conversation.channel,
        "direction": Direction.OUTBOUND,
        "author_kind": author_kind,
        "author_id": author_id,
        "text": reply.text,
        "buttons": reply.buttons,
        "attachments": attachments or [],
        "template": template,
        "internal": internal,
        "sealed": sealed,
        "expects": reply.expects,
        "delivery_status": DeliveryStatus.SENT if internal else DeliveryStatus.PENDING,
        "sent_at": now if internal else None,
        "created_at": now,
        "attempts": 1 if claimed else 0,
    }


async def mark_processed(session: AsyncSession, message_id: int, now: datetime) -> bool:
    """An inbound message is routed; False when it had been already."""
    # An UPDATE's result is a CursorResult, which counts the rows it matched.
    marked = cast(
        CursorResult[Any],
        await session.execute(_MARK_PROCESSED, {"message_id": message_id, "processed_at_now": now}),
    )
    return marked.rowcount == 1


async def record_answer(
    session: AsyncSession, message: Message, replies: Sequence[Reply], author_kind: AuthorKind
) -> tuple[Conversation, list[Message]] | None:
    """Mark a patient's message processed and record the clinic's replies to it on its
    conversation, each with its first delivery attempt taken; None, having written nothing,
    when the message was processed already (answered by another routing). Statements, not
    a unit of work: the mark, the conversation touched and read back, one insert per reply.
    The conversation is returned as it is now (a person may have taken it meanwhile)."""
    now = utcnow()
    if not await mark_processed(session, message.id, now):
        return None
    touched = {"conversation_id": message.conversation_id, "now": now if replies else None}
    conversation = (await session.execute(_TOUCH_AND_READ_CONVERSATION, touched)).scalar_one()
    connection = await session.connection()
    recorded = []
    for reply in replies:
        values = {
            **_column_defaults(_messages),
            **_outbound_values(conversation, now, reply, author_kind=author_kind, claimed=True),
        }
        parameters = {f"new_{key}": value for key, value in values.items()}
        message_id = (await connection.execute(_INSERT_MESSAGE, parameters)).scalar_one()
        recorded.append(_as_loaded(message_id, values))
    return conversation, recorded


def advance_delivery(message: Message, status: DeliveryStatus, at: datetime | None = None) -> bool:
    """Move an outbound message's delivery state forward only; False when it would go back."""
    if DELIVERY_RANK[status] <= DELIVERY_RANK.get(message.delivery_status, -1):
        return False
    at = at or utcnow()
    message.delivery_status = status
    stamp = {
        DeliveryStatus.SENT: "sent_at",
        DeliveryStatus.DELIVERED: "delivered_at",
        DeliveryStatus.READ: "read_at",
    }.get(status)
    if stamp and getattr(message, stamp) is None:
        setattr(message, stamp, at)
    return True


async def _by_provider_id(
    session: AsyncSession, channel: str, provider_message_id: str, direction: Direction
) -> Message | None:
    query = select(Message).where(
        Message.channel == channel,
        Message.provider_message_id == provider_message_id,
        Message.direction == direction,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _part(
    session: AsyncSession, channel: str, provider_message_id: str
) -> OutboundPart | None:
    query = select(OutboundPart).where(
        OutboundPart.channel == channel, OutboundPart.provider_message_id == provider_message_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def _inserted(session: AsyncSession, part: dict[str, Any]) -> bool:
    """Insert a part; False when its provider id is already known (a receipt and the send
    that caused it may record the same id at the same moment). One statement: no savepoint
    to roll back to."""
    statement = (await upsert(session, OutboundPart)).values(**part)
    unique = [OutboundPart.channel, OutboundPart.provider_message_id]
    inserted = statement.on_conflict_do_nothing(index_elements=unique).returning(OutboundPart.id)
    return (await session.execute(inserted)).scalar() is not None


def _advance_part(
    part: OutboundPart, status: DeliveryStatus, at: datetime | None, error: str | None
) -> bool:
    if DELIVERY_RANK[status] <= DELIVERY_RANK[part.delivery_status]:
        return False
    part.delivery_status = status
    part.status_at = at or utcnow()
    if error:
        part.error = error[:500]
    return True


async def settle_delivery(session: AsyncSession, message: Message) -> bool:
    """Move the message's status forward to what its parts' statuses say; False if it stays.

    A message sent in parts is failed as soon as any part failed (the patient did not get all
    of it). Otherwise, once the provider took every part (the message is no longer pending),
    it is as far as its least advanced part: delivered when every part was delivered, read
    when every part was read."""
    query = select(OutboundPart).where(OutboundPart.message_id == message.id)
    parts = (await session.execute(query)).scalars().all()
    failed = next((p for p in parts if p.delivery_status == DeliveryStatus.FAILED), None)
    if failed is not None:
        if not advance_delivery(message, DeliveryStatus.FAILED, failed.status_at):
            return False
        message.error = failed.error or message.error
        return True
    if not parts or message.delivery_status == DeliveryStatus.PENDING:
        return False
    least = min(parts, key=lambda part: DELIVERY_RANK[part.delivery_status])
    return advance_delivery(message, least.delivery_status, least.status_at)


async def record_part(session: AsyncSession, message: Message, provider_message_id: str) -> bool:
    """The provider took the next part of our message: from now on receipts naming its id
    find the message, and one that arrived before this keeps its place on the part (False:
    the message's status must then be settled from its parts)."""
    position = message.parts_sent
    part = {
        "message_id": message.id,
        "channel": message.channel,
        "provider_message_id": provider_message_id,
        "position": position,
        "delivery_status": DeliveryStatus.SENT,
    }
    fresh = await _inserted(session, part)
    if not fresh:
        known = await _part(session, message.channel, provider_message_id)
        assert known is not None  # its insert failed on the unique provider id
        known.message_id, known.position = message.id, position
    message.parts_sent = position + 1
    if message.provider_message_id is None:
        message.provider_message_id = provider_message_id
    return fresh


async def record_status(
    session: AsyncSession,
    channel: str,
    provider_message_id: str,
    status: DeliveryStatus,
    *,
    at: datetime | None = None,
    error: str | None = None,
) -> Message | None:
    """Apply a provider's delivery receipt to the part of our message it names; returns the
    message when its status moved. Receipts arrive in any order and only move forward; one
    naming an id no send has recorded yet is kept for it (`record_part` applies it)."""
    part = await _part(session, channel, provider_message_id)
    if part is None:
        early = {
            "channel": channel,
            "provider_message_id": provider_message_id,
            "delivery_status": status,
            "error": error[:500] if error else None,
            "status_at": at or utcnow(),
        }
        if await _inserted(session, early):
            return None
        part = await _part(session, channel, provider_message_id)  # the send just recorded it
        assert part is not None  # its insert failed on the unique provider id
    if not _advance_part(part, status, at, error) or part.message_id is None:
        return None
    message = await session.get_one(Message, part.message_id)
    return message if await settle_delivery(session, message) else None


async def record_watermark(
    session: AsyncSession,
    channel: str,
    external_user_id: str,
    status: DeliveryStatus,
    until: datetime,
) -> list[Message]:
    """Messenger's delivery and read receipts: every message we sent this person up to
    `until` reached `status`. Returns the messages that moved."""
    query = (
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(ChannelIdentity, ChannelIdentity.id == Conversation.channel_identity_id)
        .where(
            ChannelIdentity.channel == channel,
            ChannelIdentity.external_id == external_user_id,
            Message.direction == Direction.OUTBOUND,
            Message.internal.is_(False),
            Message.delivery_status.in_((DeliveryStatus.SENT, DeliveryStatus.DELIVERED)),
            Message.created_at <= until,
        )
    )
    messages = (await session.execute(query)).scalars().all()
    return [m for m in messages if advance_delivery(m, status, until)]


async def record_edit(
    session: AsyncSession, channel: str, provider_message_id: str, text: str
) -> Message | None:
    """The patient edited a message: the history shows the new text (the bot already
    answered the old one and is not asked again)."""
    message = await _by_provider_id(session, channel, provider_message_id, Direction.INBOUND)
    if message is not None:
        message.text = text
    return message
