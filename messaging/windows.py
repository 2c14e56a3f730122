"""Messaging windows, decided in one place: how a message may reach a patient now on a
channel, given when the patient last wrote there.

- WhatsApp (Cloud API and Twilio's WhatsApp senders): anything within 24 hours of the
  patient's last message; after that only an approved template (Meta error 131047, Twilio
  63016 for free text).
- Messenger and Instagram: anything within 24 hours; after that, up to 7 days, only a
  person's reply tagged HUMAN_AGENT (never the bot, never a reminder); then nothing until
  the patient writes again.
- Every other channel (site widget, SMS, Telegram, e-mail): always open.

The rules are keyed by the send lane (`ProviderChannel.send_lane`), which already tells a
Twilio WhatsApp sender from an SMS number. `messaging.outbound.deliver` passes the decision
(`Reach`) to the channel's sender; the staff reply box asks the same function, so what it
shows and what the sender does never disagree. The patient's next message re-opens the
window (`ChannelIdentity.last_inbound_at`, kept by `messaging.history.record_inbound`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import ProviderChannel
from core.context import Reach, Sender
from models import AuthorKind, ChannelIdentity, TemplateKind, utcnow


@dataclass(frozen=True)
class Rule:
    """A channel's window: `hours` for any message, `human_agent_hours` for a person's tagged
    reply (Messenger Platform), and which approved templates may go once it is closed."""

    hours: int
    human_agent_hours: int | None = None
    templates: TemplateKind | None = None


RULES: dict[str, Rule] = {
    "whatsapp": Rule(24, templates=TemplateKind.WHATSAPP),
    "twilio_whatsapp": Rule(24, templates=TemplateKind.TWILIO),
    "messenger": Rule(24, human_agent_hours=24 * 7),
    "instagram": Rule(24, human_agent_hours=24 * 7),
}


@dataclass(frozen=True)
class Window:
    """What may go now: `reach`; until when it may (`closes_at`, None when the channel has
    no window or it is closed); which templates apply once it is closed."""

    reach: Reach
    closes_at: datetime | None
    templates: TemplateKind | None

    @property
    def free_text(self) -> bool:
        """Whether a typed message may go now (possibly tagged)."""
        return self.reach != Reach.TEMPLATE


def send_lane(sender: Sender, channel: str, identity: ChannelIdentity) -> str:
    """The lane (rate cap and window rule) a message to `identity` goes on."""
    return sender.send_lane(identity) if isinstance(sender, ProviderChannel) else channel


def window(
    senders: Mapping[str, Sender],
    identity: ChannelIdentity,
    author_kind: AuthorKind,
    *,
    now: datetime | None = None,
) -> Window:
    """The window of `identity` on its channel for a message by `author_kind`."""
    sender = senders.get(identity.channel)
    rule = None if sender is None else RULES.get(send_lane(sender, identity.channel, identity))
    if rule is None:
        return Window(Reach.FREE, None, None)
    now = now or utcnow()
    since = identity.last_inbound_at
    if since is not None and now < since + timedelta(hours=rule.hours):
        person_hours = rule.human_agent_hours if author_kind == AuthorKind.ATTENDANT else None
        closes = since + timedelta(hours=person_hours or rule.hours)
        return Window(Reach.FREE, closes, rule.templates)
    if (
        since is not None
        and rule.human_agent_hours is not None
        and author_kind == AuthorKind.ATTENDANT
        and now < (closes := since + timedelta(hours=rule.human_agent_hours))
    ):
        return Window(Reach.HUMAN_AGENT, closes, rule.templates)
    return Window(Reach.TEMPLATE, None, rule.templates)


async def reply_identity(
    session: AsyncSession, patient_id: int, channel: str
) -> ChannelIdentity | None:
    """Where a staff reply on `channel` goes: the patient's identity there that wrote last."""
    query = (
        select(ChannelIdentity)
        .where(ChannelIdentity.patient_id == patient_id, ChannelIdentity.channel == channel)
        .order_by(ChannelIdentity.last_inbound_at.desc().nulls_last(), ChannelIdentity.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()
