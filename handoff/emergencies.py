"""How far an emergency may jump the human queue when nobody knows who is writing.

An emergency phrase makes the bot answer with the SAMU 192 guidance and ask for a critical
handoff, which puts the conversation at the head of the queue. Anyone can open the site
widget (or a Messenger account) without saying who they are, so a script repeating an
emergency phrase could fill the head of the queue and starve every other patient. The
guidance is the bot's answer and is always given, whatever happens here; what is bounded is
the jump:

- a patient the clinic knows by a phone a provider proved (WhatsApp, SMS, a shared Telegram
  contact) always jumps: phones cannot be multiplied by a script. A typed CPF proves
  nothing (it is only checked when it belongs to someone else), so it does not count;
- an anonymous patient's conversation becomes critical only while its source has pushed
  fewer than `PER_SOURCE` critical handoffs in `PER_SOURCE_SECONDS`, and all anonymous
  patients together fewer than `GLOBAL` in `GLOBAL_SECONDS`. The source is the client
  network the widget saw (hashed; `channels.webchat.WidgetLimits`), else the channel
  identity. Per source, two an hour leaves room for a family reporting a relative from one
  home or phone line; the global bound caps what a flood from many addresses can put ahead
  of everyone else at a handful per quarter hour, which a reception team can check by hand;
- over either bound the conversation is still queued, at normal priority in its arrival
  order, with the reason `emergencia_a_conferir`, so whoever takes it sees that it was an
  emergency phrase and checks it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.webchat import SOURCE
from core.ratelimit import RateLimits
from models import ChannelIdentity, Conversation

PER_SOURCE = 2
PER_SOURCE_SECONDS = 3600.0
GLOBAL = 6
GLOBAL_SECONDS = 900.0
# The handoff reason of an emergency queued without jumping: a person checks it.
UNCHECKED_EMERGENCY = "emergencia_a_conferir"


async def is_identified(session: AsyncSession, patient_id: int) -> bool:
    """Whether the patient writes from a phone a provider proved."""
    query = select(ChannelIdentity.id).where(
        ChannelIdentity.patient_id == patient_id, ChannelIdentity.verified_phone.is_not(None)
    )
    return await session.scalar(query.limit(1)) is not None


async def may_jump_queue(
    session: AsyncSession, limits: RateLimits, conversation: Conversation
) -> bool:
    """Whether this emergency may be queued as critical; counts it when it may."""
    if await is_identified(session, conversation.patient_id):
        return True
    identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
    source = (identity.details or {}).get(SOURCE) or f"{identity.channel}:{identity.id}"
    if await limits.hit(f"critical:anonymous:{source}", PER_SOURCE, PER_SOURCE_SECONDS):
        return False
    return not await limits.hit("critical:anonymous", GLOBAL, GLOBAL_SECONDS)
