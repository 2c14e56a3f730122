"""What a patient waiting for a person is told: their place in the queue, an honest expected
wait, and, when the reception is closed, when the team is back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from statistics import median
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.catalog import t
from core.settings import CLINIC_TIMEZONE, Settings
from models import (
    AttendantProfile,
    Conversation,
    ConversationStatus,
    Owner,
    Presence,
    utcnow,
)
from scheduling.agenda import blocks_in

CLINIC_TZ = ZoneInfo(CLINIC_TIMEZONE)
# Handling times older than this say little about today's pace.
HANDLING_SAMPLE_WINDOW = timedelta(days=7)
HANDLING_SAMPLE_LIMIT = 200
MIN_HANDLING_SAMPLES = 3
LOOKAHEAD_DAYS = 14

_BLOCK = re.compile(r"^\s*([\d,\-]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class StaffHours:
    """Weekly opening blocks of the reception in clinic time; weekday 0 is Monday."""

    blocks: dict[int, list[tuple[time, time]]]

    @classmethod
    def parse(cls, spec: str) -> StaffHours:
        """`"0-4 08:00-18:00; 5 08:00-12:00"`: weekdays (ranges or commas) and a time span."""
        blocks: dict[int, list[tuple[time, time]]] = {}
        for part in filter(str.strip, spec.split(";")):
            match = _BLOCK.match(part)
            if match is None:
                raise ValueError(f"bad STAFF_HOURS block {part!r}")
            days, h1, m1, h2, m2 = match.groups()
            span = (time(int(h1), int(m1)), time(int(h2), int(m2)))
            for day in _weekdays(days):
                blocks.setdefault(day, []).append(span)
        for spans in blocks.values():
            spans.sort()
        return cls(blocks)

    def openings(self, start: datetime) -> list[tuple[datetime, datetime]]:
        """Opening blocks (aware, clinic time) that end after `start`, for two weeks."""
        local = start.astimezone(CLINIC_TZ)
        found = []
        for offset in range(LOOKAHEAD_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            for opens, closes in self.blocks.get(day.weekday(), []):
                block = (_at(day, opens), _at(day, closes))
                if block[1] > local:
                    found.append(block)
        return found


def _weekdays(spec: str) -> list[int]:
    days: list[int] = []
    for piece in spec.split(","):
        first, _, last = piece.partition("-")
        days.extend(range(int(first), int(last or first) + 1))
    if not all(0 <= d <= 6 for d in days):
        raise ValueError(f"weekdays go from 0 (Monday) to 6: {spec!r}")
    return days


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=CLINIC_TZ)


async def _clinic_closures(session: AsyncSession, now: datetime) -> list[tuple[datetime, datetime]]:
    """Clinic-wide closures: holidays and exceptions with no doctor."""
    span = (now, now + timedelta(days=LOOKAHEAD_DAYS))
    return [(b.starts_at, b.ends_at) for b in await blocks_in(session, span)]


async def reopens_at(session: AsyncSession, settings: Settings, now: datetime) -> datetime | None:
    """None while the reception is open (or when STAFF_HOURS is empty: always open), else
    when it opens next, skipping clinic-wide closures such as holidays."""
    closures = await _clinic_closures(session, now)

    def closed_at(moment: datetime) -> datetime | None:
        return next((end for start, end in closures if start <= moment < end), None)

    for opens, closes in StaffHours.parse(settings.staff_hours).openings(now):
        candidate = max(opens, now.astimezone(CLINIC_TZ))
        while candidate < closes and (end := closed_at(candidate)) is not None:
            candidate = end.astimezone(CLINIC_TZ)
        if candidate < closes:
            return None if candidate <= now else candidate
    return None


async def queue_position(session: AsyncSession, conversation: Conversation) -> int:
    """1 for the next conversation to be assigned: priority first, then the longest waiting."""
    ahead = select(func.count(Conversation.id)).where(
        Conversation.owner == Owner.QUEUED,
        Conversation.status == ConversationStatus.OPEN,
        Conversation.id != conversation.id,
        or_(
            Conversation.priority > conversation.priority,
            and_(
                Conversation.priority == conversation.priority,
                or_(
                    Conversation.queued_at < conversation.queued_at,
                    and_(
                        Conversation.queued_at == conversation.queued_at,
                        Conversation.id < conversation.id,
                    ),
                ),
            ),
        ),
    )
    return (await session.execute(ahead)).scalar_one() + 1


async def expected_wait(session: AsyncSession, position: int, now: datetime) -> timedelta | None:
    """Little's law: the conversations attendants hold now finish at the recent pace (median
    handling time), each one freeing a slot for the next in line. None without data: nobody
    online serving, or too few recent resolutions to know the pace."""
    serving = select(func.count(Conversation.id)).where(
        Conversation.owner == Owner.ATTENDANT,
        Conversation.status == ConversationStatus.OPEN,
        Conversation.assigned_attendant_id.in_(
            select(AttendantProfile.user_id).where(AttendantProfile.presence == Presence.ONLINE)
        ),
    )
    active = (await session.execute(serving)).scalar_one()
    if active == 0:
        return None
    recent = (
        select(Conversation.assigned_at, Conversation.resolved_at)
        .where(
            Conversation.resolved_at > now - HANDLING_SAMPLE_WINDOW,
            Conversation.assigned_at.is_not(None),
        )
        .order_by(Conversation.resolved_at.desc())
        .limit(HANDLING_SAMPLE_LIMIT)
    )
    samples = [
        (row.resolved_at - row.assigned_at).total_seconds()
        for row in await session.execute(recent)
        if row.resolved_at > row.assigned_at
    ]
    if len(samples) < MIN_HANDLING_SAMPLES:
        return None
    return timedelta(seconds=position * median(samples) / active)


def describe_when(moment: datetime, now: datetime) -> str:
    """ "hoje às 13h", "amanhã às 8h", "na segunda-feira às 8h30" (clinic time)."""
    local, today = moment.astimezone(CLINIC_TZ), now.astimezone(CLINIC_TZ).date()
    clock = f"{local.hour}h{local.minute:02d}" if local.minute else f"{local.hour}h"
    if local.date() == today:
        return t("patient.when_today", time=clock)
    if local.date() == today + timedelta(days=1):
        return t("patient.when_tomorrow", time=clock)
    return t("patient.when_weekday", weekday=t(f"patient.on_weekday.{local.weekday()}"), time=clock)


def describe_wait(wait: timedelta | None) -> str:
    if wait is None:
        return t("patient.wait_unknown")
    minutes = wait.total_seconds() / 60
    if minutes < 5:
        return t("patient.wait_short")
    # Rounded up to 5 minutes: an estimate should not sound more precise than it is.
    return t("patient.wait_minutes", minutes=int(-(-minutes // 5) * 5))


async def queue_notice(
    session: AsyncSession, settings: Settings, conversation: Conversation
) -> str:
    """The message for a patient who just joined (or went back to) the queue."""
    now = utcnow()
    position = await queue_position(session, conversation)
    reopening = await reopens_at(session, settings, now)
    if reopening is not None:
        return t("patient.queued_closed", when=describe_when(reopening, now), position=position)
    wait = await expected_wait(session, position, now)
    return t("patient.queued", position=position) + " " + describe_wait(wait)
