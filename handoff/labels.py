"""The reception's own vocabulary, managed in the app: labels (name, colour) that staff put on
conversations, and canned responses staff insert by typing `/shortcut` in the reply box.

Managers and admins manage both (core.access); serving staff put labels on the conversations
they may act in. Every write is here; the web only reads the request (web/labels.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import access
from core.context import Context
from core.errors import BadRequest, Conflict, Forbidden, NotFound
from models import CannedResponse, Conversation, ConversationLabel, Label, User
from models.views import conversation_view

MAX_LABEL_NAME = 40
COLOUR = re.compile(r"#[0-9a-f]{6}")
SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MAX_CANNED_TEXT = 4096
# The live event that tells staff screens a conversation's labels changed.
LABELS_EVENT = "labels"


class ManagersOnly(Forbidden):
    code = "labels.error.managers_only"


class LabelNotFound(NotFound):
    code = "labels.error.not_found"


class CannedNotFound(NotFound):
    code = "labels.error.canned_not_found"


@dataclass(frozen=True)
class LabelFields:
    name: str
    colour: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> LabelFields:
        name, colour = body.get("name"), body.get("colour")
        if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_LABEL_NAME:
            raise BadRequest("labels.error.name", limite=MAX_LABEL_NAME)
        if not isinstance(colour, str) or not COLOUR.fullmatch(colour.lower()):
            raise BadRequest("labels.error.colour")
        return cls(" ".join(name.split()), colour.lower())


@dataclass(frozen=True)
class CannedFields:
    shortcut: str
    text: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> CannedFields:
        shortcut, text = body.get("shortcut"), body.get("text")
        shortcut = shortcut.strip().lstrip("/").lower() if isinstance(shortcut, str) else ""
        if not SHORTCUT.fullmatch(shortcut):
            raise BadRequest("labels.error.shortcut")
        if not isinstance(text, str) or not 0 < len(text.strip()) <= MAX_CANNED_TEXT:
            raise BadRequest("labels.error.canned_text", limite=MAX_CANNED_TEXT)
        return cls(shortcut, text.strip())


def label_view(label: Label) -> dict[str, Any]:
    return {"id": label.id, "name": label.name, "colour": label.colour}


def canned_view(canned: CannedResponse) -> dict[str, Any]:
    return {"id": canned.id, "shortcut": canned.shortcut, "text": canned.text}


def _check_manager(actor: User) -> None:
    if not access.may_manage_labels(actor):
        raise ManagersOnly()


# ---------------------------------------------------------------------------------------------
# Reading


async def all_labels(session: AsyncSession) -> list[Label]:
    return list((await session.execute(select(Label).order_by(Label.name))).scalars())


async def all_canned(session: AsyncSession) -> list[CannedResponse]:
    query = select(CannedResponse).order_by(CannedResponse.shortcut)
    return list((await session.execute(query)).scalars())


async def labels_of(session: AsyncSession, conversation_ids: Sequence[int]) -> dict[int, list[int]]:
    """The label ids on each of these conversations (by label name)."""
    if not conversation_ids:
        return {}
    query = (
        select(ConversationLabel.conversation_id, ConversationLabel.label_id)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.conversation_id.in_(conversation_ids))
        .order_by(Label.name)
    )
    found: dict[int, list[int]] = defaultdict(list)
    for conversation_id, label_id in await session.execute(query):
        found[conversation_id].append(label_id)
    return found


# ---------------------------------------------------------------------------------------------
# Managing labels and canned responses (managers and admins)


async def create_label(ctx: Context, actor: User, fields: LabelFields) -> Label:
    return await _save(ctx, actor, Label, None, fields.__dict__)


async def update_label(ctx: Context, actor: User, label_id: int, fields: LabelFields) -> Label:
    return await _save(ctx, actor, Label, label_id, fields.__dict__)


async def delete_label(ctx: Context, actor: User, label_id: int) -> None:
    """Remove the label, and with it from every conversation that had it."""
    await _delete(ctx, actor, Label, label_id)


async def create_canned(ctx: Context, actor: User, fields: CannedFields) -> CannedResponse:
    return await _save(ctx, actor, CannedResponse, None, fields.__dict__)


async def update_canned(
    ctx: Context, actor: User, canned_id: int, fields: CannedFields
) -> CannedResponse:
    return await _save(ctx, actor, CannedResponse, canned_id, fields.__dict__)


async def delete_canned(ctx: Context, actor: User, canned_id: int) -> None:
    await _delete(ctx, actor, CannedResponse, canned_id)


# What each managed kind is refused with: missing, and a duplicate name or shortcut.
_MISSING: dict[type[Any], type[NotFound]] = {Label: LabelNotFound, CannedResponse: CannedNotFound}
_TAKEN = {Label: "labels.error.name_taken", CannedResponse: "labels.error.shortcut_taken"}


async def _save[Row: (Label, CannedResponse)](
    ctx: Context, actor: User, model: type[Row], row_id: int | None, values: dict[str, str]
) -> Row:
    """Create (`row_id` None) or change a row with `values`; a duplicate name or shortcut
    is refused (409) with nothing written."""
    _check_manager(actor)
    try:
        async with ctx.db.session() as session:
            row = model() if row_id is None else await session.get(model, row_id)
            if row is None:
                raise _MISSING[model]()
            for key, value in values.items():
                setattr(row, key, value)
            session.add(row)
    except IntegrityError:
        raise Conflict(_TAKEN[model]) from None
    return row


async def _delete(
    ctx: Context, actor: User, model: type[Label] | type[CannedResponse], row_id: int
) -> None:
    _check_manager(actor)
    async with ctx.db.session() as session:
        row = await session.get(model, row_id)
        if row is None:
            raise _MISSING[model]()
        await session.delete(row)


# ---------------------------------------------------------------------------------------------
# Labels on conversations (staff who may act in the conversation; managers on any)


async def set_label(
    ctx: Context, actor: User, conversation_id: int, label_id: int, *, on: bool
) -> list[int]:
    """Put the label on the conversation (`on`) or take it off; both idempotent. Announces
    the conversation's labels to the staff screens and returns them."""
    async with ctx.db.session() as session:
        conversation = await session.get(Conversation, conversation_id, with_for_update=True)
        if conversation is None:
            raise NotFound()
        if not access.may_label_conversation(actor, conversation):
            raise Forbidden("error.not_owner")
        if await session.get(Label, label_id) is None:
            raise LabelNotFound()
        current = await session.get(ConversationLabel, (conversation_id, label_id))
        if on and current is None:
            session.add(
                ConversationLabel(
                    conversation_id=conversation_id, label_id=label_id, actor_id=actor.id
                )
            )
        elif not on and current is not None:
            await session.delete(current)
        await session.flush()
        labels = (await labels_of(session, [conversation_id])).get(conversation_id, [])
        event = {
            "type": LABELS_EVENT,
            "conversation": conversation_view(conversation),
            "labels": labels,
        }
    await ctx.bus.publish(event)
    return labels
