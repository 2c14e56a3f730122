"""The staff search and the list of past conversations: what a person typed or wrote, found
whatever its accents and case, within what `core.access.searchable_patients` lets the user
see (managers everything; an attendant the patients they serve or have served).

The indexes are the database's (`models.search`): PostgreSQL full-text search in Portuguese
over unaccented text, SQLite FTS5 elsewhere. Each word typed must be found, as the start of a
word (so "cirurg" finds "cirurgia" too). Patients are found by name and e-mail the same way,
by their phone (four or more digits of it, however typed), by their whole CPF (typed with
or without the mask) and by their whole e-mail address. Erased patients are found by
nothing: their messages are gone with their rows, their name and contacts replaced, and they
are left out besides.

Nothing here writes; the caller records the read in the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    column,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from core import access
from core.errors import BadRequest, Forbidden, NotFound
from core.settings import CLINIC_TIMEZONE
from models import (
    Conversation,
    ConversationLabel,
    ConversationStatus,
    HandoffEvent,
    HandoffFacts,
    Message,
    Role,
    User,
)
from models.search import MESSAGES, PATIENTS, SearchIndex

CLINIC_TZ = ZoneInfo(CLINIC_TIMEZONE)
MIN_QUERY_CHARS = 2
MAX_QUERY_CHARS = 200
MAX_TERMS = 8
PATIENTS_LIMIT = 20
MESSAGES_LIMIT = 50
PAST_LIMIT = 100
# Fewer digits than this are part of a date, a price, a house number: not a phone.
MIN_PHONE_DIGITS = 4
CPF_DIGITS = 11
# The days a period filter may name (a day past 9999 is no date at all).
FIRST_YEAR, LAST_YEAR = 2000, 2999
CHANNEL_SLUG = re.compile(r"[a-z][a-z0-9_]{0,23}")


@dataclass(frozen=True)
class FoundPatient:
    patient: User
    # Their open conversations the user may read in the workspace, oldest first.
    open_conversations: list[Conversation]


@dataclass(frozen=True)
class FoundMessage:
    message: Message
    patient_name: str | None


@dataclass(frozen=True)
class Found:
    patients: list[FoundPatient]
    messages: list[FoundMessage]

    @property
    def patient_ids(self) -> list[int]:
        ids = {p.patient.id for p in self.patients} | {m.message.patient_id for m in self.messages}
        return sorted(ids)


def terms_of(query: str) -> list[str]:
    """The words typed (letters and digits; punctuation and operators are not syntax)."""
    return re.findall(r"[^\W_]+", query.lower())[:MAX_TERMS]


def _matches(
    dialect: str, searched: SearchIndex, terms: list[str], key: InstrumentedAttribute[int]
) -> ColumnElement[bool]:
    """`key`'s row holds every term as the start of a word, in the dialect's index."""
    if not terms:
        return false()
    if dialect == "sqlite":
        fts = table(searched.fts, column("rowid", Integer), column(searched.fts))
        words = " ".join(f'"{term}"*' for term in terms)
        return key.in_(select(fts.c.rowid).where(fts.c[searched.fts].op("MATCH")(words)))
    words = " & ".join(f"{term}:*" for term in terms)
    query = func.to_tsquery(
        literal_column(f"'{searched.config}'::regconfig"),
        func.search_unaccent(bindparam(f"{searched.fts}_terms", words)),
    )
    return literal_column(searched.document).op("@@")(query)


def _findable(user: User, patient: Any) -> list[ColumnElement[bool]]:
    return [
        patient.role == Role.PATIENT,
        patient.erased_at.is_(None),
        access.searchable_patients(user, patient.id),
    ]


async def search(session: AsyncSession, user: User, query: str) -> Found:
    """Patients and messages matching `query`, as far as the user may see them: patients by
    name, newest messages first."""
    query = query.replace("\x00", "")[:MAX_QUERY_CHARS]  # no database takes a NUL in text
    if len(query.strip()) < MIN_QUERY_CHARS:
        raise BadRequest("search.error.too_short", minimo=MIN_QUERY_CHARS)
    dialect = session.get_bind().dialect.name
    terms = terms_of(query)
    digits = re.sub(r"\D", "", query)
    by_contact: list[ColumnElement[bool]] = []
    if len(digits) >= MIN_PHONE_DIGITS:
        by_contact.append(User.phone_e164.like(f"%{digits}%"))
    if len(digits) == CPF_DIGITS:
        by_contact.append(User.cpf == digits)
    if "@" in query:  # PostgreSQL's parser keeps an address as one word: the whole of it
        by_contact.append(User.email == query.strip().lower())
    patients = (
        select(User)
        .where(
            *_findable(user, User),
            User.merged_into_id.is_(None),
            or_(_matches(dialect, PATIENTS, terms, User.id), *by_contact),
        )
        .order_by(User.name, User.id)
        .limit(PATIENTS_LIMIT)
    )
    author = aliased(User)
    messages = (
        select(Message, author.name)
        .join(author, author.id == Message.patient_id)
        .where(*_findable(user, author), _matches(dialect, MESSAGES, terms, Message.id))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(MESSAGES_LIMIT)
    )
    found_patients = list((await session.execute(patients)).scalars())
    return Found(
        await _with_open_conversations(session, user, found_patients),
        [FoundMessage(m, name) for m, name in await session.execute(messages)],
    )


async def _with_open_conversations(
    session: AsyncSession, user: User, patients: list[User]
) -> list[FoundPatient]:
    """The patients, each with the open conversations the user may read in the workspace
    (a patient found may be talking to the clinic now: that is what staff look for first)."""
    open_conversations = await session.execute(
        select(Conversation)
        .where(
            Conversation.patient_id.in_([p.id for p in patients]),
            Conversation.status == ConversationStatus.OPEN,
            access.readable_conversations(user),
        )
        .order_by(Conversation.id)
    )
    by_patient: dict[int, list[Conversation]] = {p.id: [] for p in patients}
    for conversation in open_conversations.scalars():
        by_patient[conversation.patient_id].append(conversation)
    return [FoundPatient(p, by_patient[p.id]) for p in patients]


def _invalid() -> BadRequest:
    return BadRequest("search.error.invalid_filter")


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise _invalid() from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:  # and a day later still is a date
        raise _invalid()
    return day


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=CLINIC_TZ)


# An id fits a 32-bit integer column.
_MAX_ID_DIGITS = 9


def _number(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_ID_DIGITS:
        raise _invalid()
    return int(text)


def _channel(text: str) -> str:
    if not CHANNEL_SLUG.fullmatch(text):
        raise _invalid()
    return text


def _served_by(attendant_id: int) -> ColumnElement[bool]:
    return exists().where(
        HandoffEvent.conversation_id == Conversation.id,
        HandoffEvent.to_attendant_id == attendant_id,
    )


@dataclass(frozen=True)
class PastFilter:
    """One filter of the past conversations: how its query-string value reads, and what it
    asks of a conversation."""

    read: Callable[[str], Any]
    where: Callable[[Any], ColumnElement[bool]]


# Filter name (the query-string key) → the filter. Periods are clinic-local days, both
# inclusive, over when the conversation closed.
def _labelled(label_id: int) -> ColumnElement[bool]:
    return exists().where(
        ConversationLabel.conversation_id == Conversation.id,
        ConversationLabel.label_id == label_id,
    )


PAST_FILTERS: Mapping[str, PastFilter] = {
    "since": PastFilter(_day, lambda day: Conversation.closed_at >= _local_midnight(day)),
    "until": PastFilter(
        _day, lambda day: Conversation.closed_at < _local_midnight(day + timedelta(days=1))
    ),
    "channel": PastFilter(_channel, lambda channel: Conversation.channel == channel),
    "attendant_id": PastFilter(_number, _served_by),
    "patient_id": PastFilter(_number, lambda patient_id: Conversation.patient_id == patient_id),
    "label_id": PastFilter(_number, lambda label_id: _labelled(label_id)),
}


def past_filters(values: Mapping[str, str]) -> list[ColumnElement[bool]]:
    """The conditions of the filters given (blank ones and unknown keys ignored)."""
    return [
        past.where(past.read(values[name].strip()))
        for name, past in PAST_FILTERS.items()
        if values.get(name, "").strip()
    ]


@dataclass(frozen=True)
class Past:
    conversation: Conversation
    patient_name: str | None
    resolver_id: int | None


def _past_query(
    user: User, conditions: list[ColumnElement[bool]]
) -> Select[Conversation, str | None, int | None]:
    return (
        select(Conversation, User.name, HandoffFacts.resolver_id)
        .join(User, User.id == Conversation.patient_id)
        .outerjoin(HandoffFacts, HandoffFacts.conversation_id == Conversation.id)
        .where(
            Conversation.status == ConversationStatus.CLOSED,
            *_findable(user, User),
            *conditions,
        )
        .order_by(Conversation.closed_at.desc(), Conversation.id.desc())
        .limit(PAST_LIMIT)
    )


async def past_conversations(
    session: AsyncSession, user: User, conditions: list[ColumnElement[bool]]
) -> list[Past]:
    """Closed conversations the user may read, latest closed first, narrowed by
    `conditions` (`past_filters`)."""
    rows = await session.execute(_past_query(user, conditions))
    return [Past(c, name, resolver) for c, name, resolver in rows]


async def transcript_conversation(
    session: AsyncSession, user: User, conversation_id: int | None
) -> tuple[Conversation, User]:
    """The conversation and its patient, if the user may look the patient up (then the
    transcript is theirs to read): NotFound (also for an id that cannot be one), or
    Forbidden."""
    conversation = await session.get(Conversation, conversation_id) if conversation_id else None
    if conversation is None:
        raise NotFound()
    findable = select(User).where(User.id == conversation.patient_id, *_findable(user, User))
    patient = (await session.execute(findable)).scalar_one_or_none()
    if patient is None:
        raise Forbidden("search.error.not_served")
    return conversation, patient
