"""The registry of the clinic's approved templates (`MessageTemplate`), kept by an admin, and
what a template message carries.

An approved template has numbered placeholders ({{1}}, {{2}}...) in the text the provider
approved; the admin types that text in pt-BR (`body`, what staff see and the history
records) and describes each placeholder (`variables`). A message sent as a template carries
`Message.template`: `{"name", "language", "parameters"}` for WhatsApp Cloud,
`{"content_sid", "parameters"}` for Twilio Content, plus the registry id. A message that
names only a `purpose` (reminders) gets the clinic's newest active template for that purpose
when it has to go as a template (`resolve`); with none in the registry, the channel's own
configured default (WHATSAPP_TEMPLATE_NAME, TWILIO_CONTENT_SID) is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import access, audit
from core.audit import AuditAction
from core.errors import BadRequest, Conflict, Forbidden, NotFound
from models import MessageTemplate, TemplateKind, TemplatePurpose, User
from models.db import Database

PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
NAME = re.compile(r"^[a-z0-9_]{1,120}$")  # Meta's template names: lower case, digits, _
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
MAX_BODY = 1024  # Meta's limit for a template's body
MAX_VALUE = 200


class TemplateInvalid(BadRequest):
    code = "error.template_invalid"


class TemplateNotFound(NotFound):
    code = "error.template_not_found"


class TemplateTaken(Conflict):
    code = "error.template_taken"


@dataclass(frozen=True)
class TemplateFields:
    """What the admin types for one template, checked."""

    kind: TemplateKind
    name: str
    language: str
    content_sid: str | None
    purpose: TemplatePurpose
    body: str
    variables: list[dict[str, str]]
    active: bool

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> TemplateFields:
        """The admin's form, or TemplateInvalid naming the field that is wrong."""

        def text(key: str, default: str = "") -> str:
            value = data.get(key)
            if value is None:
                return default
            if not isinstance(value, str):
                raise TemplateInvalid(f"error.template_field.{key}")
            return value.strip()

        try:
            kind = TemplateKind(str(data.get("kind")))
        except ValueError:
            raise TemplateInvalid("error.template_field.kind") from None
        try:
            purpose = TemplatePurpose(str(data.get("purpose")))
        except ValueError:
            raise TemplateInvalid("error.template_field.purpose") from None
        name, body = text("name"), text("body")
        language = text("language", "pt_BR") or "pt_BR"
        content_sid = text("content_sid") or None
        if not name or len(name) > 120 or (kind == TemplateKind.WHATSAPP and not NAME.match(name)):
            raise TemplateInvalid("error.template_field.name")
        if not LANGUAGE.match(language):
            raise TemplateInvalid("error.template_field.language")
        if kind == TemplateKind.TWILIO and not (content_sid and CONTENT_SID.match(content_sid)):
            raise TemplateInvalid("error.template_field.content_sid")
        if kind == TemplateKind.WHATSAPP:
            content_sid = None
        if not body or len(body) > MAX_BODY:
            raise TemplateInvalid("error.template_field.body")
        raw = data.get("variables", [])
        if not isinstance(raw, list) or not all(
            isinstance(v, str) and v.strip() and len(v) <= 120 for v in raw
        ):
            raise TemplateInvalid("error.template_field.variables")
        numbers = {int(n) for n in PLACEHOLDER.findall(body)}
        if numbers != set(range(1, len(raw) + 1)):
            # Every described variable appears in the text and every placeholder is described.
            raise TemplateInvalid("error.template_placeholders", quantidade=len(raw))
        active = data.get("active", True)
        if not isinstance(active, bool):
            raise TemplateInvalid("error.template_field.active")
        return cls(
            kind=kind,
            name=name,
            language=language,
            content_sid=content_sid,
            purpose=purpose,
            body=body,
            variables=[{"description": v.strip()} for v in raw],
            active=active,
        )


def render(template: MessageTemplate, values: Sequence[str]) -> str:
    """The template's text with each {{n}} replaced by the n-th value."""
    return PLACEHOLDER.sub(lambda m: values[int(m.group(1)) - 1], template.body)


def checked_values(template: MessageTemplate, values: object) -> list[str]:
    """The values staff typed for the template's variables, one per variable, each filled."""
    if (
        not isinstance(values, list)
        or len(values) != len(template.variables)
        or not all(isinstance(v, str) and v.strip() and len(v) <= MAX_VALUE for v in values)
    ):
        raise TemplateInvalid("error.template_values", quantidade=len(template.variables))
    # Meta refuses parameters with new lines, tabs or more than four spaces in a row.
    return [" ".join(v.split()) for v in values]


def message_template(template: MessageTemplate, values: Sequence[str]) -> dict[str, Any]:
    """What a message sent as this template carries for its channel's sender."""
    carried: dict[str, Any] = {"template_id": template.id, "parameters": list(values)}
    if template.kind == TemplateKind.TWILIO:
        return {**carried, "content_sid": template.content_sid}
    return {**carried, "name": template.name, "language": template.language}


async def offered(session: AsyncSession, kind: TemplateKind) -> list[MessageTemplate]:
    """The active templates staff may send on a channel whose templates are `kind`: the
    free reply re-opening the conversation first."""
    query = select(MessageTemplate).where(
        MessageTemplate.kind == kind, MessageTemplate.active.is_(True)
    )
    rows = (await session.execute(query)).scalars().all()
    return sorted(rows, key=lambda t: (t.purpose != TemplatePurpose.REPLY, t.name, t.id))


async def active_template(
    session: AsyncSession, template_id: int, kind: TemplateKind | None
) -> MessageTemplate:
    """An active template of `kind`, by id, or TemplateNotFound."""
    template = await session.get(MessageTemplate, template_id)
    if template is None or not template.active or template.kind != kind:
        raise TemplateNotFound()
    return template


async def resolve(
    session: AsyncSession, carried: dict[str, Any], kind: TemplateKind
) -> dict[str, Any]:
    """A message's template ready to send: one with a `purpose` gets the newest active
    template of `kind` for it; unchanged when staff chose it from the registry, or the
    registry has none (the name it carries, or the channel's configured default, then goes)."""
    if "template_id" in carried or not carried.get("purpose"):
        return carried
    query = (
        select(MessageTemplate)
        .where(
            MessageTemplate.kind == kind,
            MessageTemplate.purpose == carried["purpose"],
            MessageTemplate.active.is_(True),
        )
        .order_by(MessageTemplate.updated_at.desc(), MessageTemplate.id.desc())
        .limit(1)
    )
    template = (await session.execute(query)).scalar_one_or_none()
    if template is None:
        return carried
    return {**carried, **message_template(template, carried.get("parameters") or [])}


# --- the admin's registry ------------------------------------------------------------------


def _check_admin(actor: User) -> None:
    if not access.is_admin(actor):
        raise Forbidden()


async def list_all(db: Database, actor: User) -> list[MessageTemplate]:
    _check_admin(actor)
    async with db.session() as session:
        query = select(MessageTemplate).order_by(MessageTemplate.kind, MessageTemplate.name)
        return list((await session.execute(query)).scalars().all())


async def save(
    db: Database,
    actor: User,
    fields: TemplateFields,
    *,
    template_id: int | None = None,
    ip: str | None = None,
) -> MessageTemplate:
    """Create a template (`template_id` None) or replace one; audit-logged."""
    _check_admin(actor)
    try:
        async with db.session() as session:
            if template_id is None:
                template = MessageTemplate(created_by=actor.id)
                session.add(template)
            else:
                found = await session.get(MessageTemplate, template_id, with_for_update=True)
                if found is None:
                    raise TemplateNotFound()
                template = found
            for key, value in vars(fields).items():
                setattr(template, key, value)
            await session.flush()
            await audit.record(
                session,
                actor,
                AuditAction.MESSAGE_TEMPLATE_SAVED,
                ip=ip,
                template_id=template.id,
                created=template_id is None,
            )
    except IntegrityError:
        raise TemplateTaken() from None
    return template
