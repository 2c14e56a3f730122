"""Service metrics for managers over a period; definitions in docs/metrics.md.

Computed from the conversations handed off in the period, their transition log
(`handoff_events`) and their first human replies. A clinic's volume (hundreds of handoffs a
day) fits comfortably in one pass in Python, which keeps the definitions readable.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import CLINIC_TIMEZONE
from handoff.queue import CLINIC_TZ
from models import (
    ASSIGNING_KINDS,
    AuthorKind,
    Conversation,
    HandoffEvent,
    HandoffKind,
    Message,
    User,
)

# A patient handed off again this soon after a resolution means it did not really resolve.
REOPEN_WINDOW = timedelta(hours=72)
MAX_PERIOD_DAYS = 366


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date  # inclusive

    @classmethod
    def parse(cls, first: str | None, last: str | None, today: date) -> Period:
        """Clinic-local dates `YYYY-MM-DD`; by default the last 7 days up to today."""
        last_day = date.fromisoformat(last) if last else today
        first_day = date.fromisoformat(first) if first else last_day - timedelta(days=6)
        if first_day > last_day or (last_day - first_day).days >= MAX_PERIOD_DAYS:
            raise ValueError("bad period")
        return cls(first_day, last_day)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), tzinfo=CLINIC_TZ)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time(), tzinfo=CLINIC_TZ)


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of values at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def durations(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_seconds": _round(percentile(values, 50)),
        "p90_seconds": _round(percentile(values, 90)),
        "mean_seconds": _round(sum(values) / len(values)) if values else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def csat_summary(scores: list[int]) -> dict[str, Any]:
    return {
        "responses": len(scores),
        "average": round(sum(scores) / len(scores), 2) if scores else None,
        "distribution": {str(n): scores.count(n) for n in range(1, 6)},
    }


async def _first_replies(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    """The staff member who sent each conversation's first human reply."""
    first = (
        select(Message.conversation_id, func.min(Message.id).label("id"))
        .where(
            Message.conversation_id.in_(ids),
            Message.author_kind == AuthorKind.ATTENDANT,
            Message.internal.is_(False),
        )
        .group_by(Message.conversation_id)
        .subquery()
    )
    query = select(Message.conversation_id, Message.author_id).join(first, first.c.id == Message.id)
    return {row.conversation_id: row.author_id for row in await session.execute(query)}


async def report(session: AsyncSession, period: Period) -> dict[str, Any]:
    start, end = period.start, period.end
    opened = (
        await session.execute(
            select(func.count(Conversation.id)).where(
                Conversation.opened_at >= start, Conversation.opened_at < end
            )
        )
    ).scalar_one()
    handed = (
        (
            await session.execute(
                select(Conversation).where(
                    Conversation.handed_off_at >= start, Conversation.handed_off_at < end
                )
            )
        )
        .scalars()
        .all()
    )
    ids = [c.id for c in handed]
    events: dict[int, list[HandoffEvent]] = defaultdict(list)
    if ids:
        query = (
            select(HandoffEvent)
            .where(HandoffEvent.conversation_id.in_(ids))
            .order_by(HandoffEvent.id)
        )
        for event in (await session.execute(query)).scalars():
            events[event.conversation_id].append(event)
    # A conversation that joined a patient's episode from another channel is the same
    # handoff, not a new one.
    handed = [c for c in handed if not _joined(events[c.id])]
    ids = [c.id for c in handed]
    first_reply_by = await _first_replies(session, ids) if ids else {}
    later_handoffs = await _handoffs_by_patient(session, start, end + REOPEN_WINDOW)

    per: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"conversations": set(), "frt": [], "resolved": 0, "transfers_out": 0, "csat": []}
    )
    frt, waits, handling, csat = [], [], [], []
    resolved = reopened = unanswered = 0
    for conversation in handed:
        handed_off_at = conversation.handed_off_at
        assert handed_off_at is not None  # selected by it
        trail = events[conversation.id]
        first_assignment = next((e for e in trail if e.kind in ASSIGNING_KINDS), None)
        if first_assignment is not None:
            waits.append((first_assignment.created_at - handed_off_at).total_seconds())
        for event in trail:
            if event.kind in ASSIGNING_KINDS and event.to_attendant_id:
                per[event.to_attendant_id]["conversations"].add(conversation.id)
            if event.kind == HandoffKind.TRANSFERRED and event.from_attendant_id:
                per[event.from_attendant_id]["transfers_out"] += 1
        if conversation.first_human_reply_at is not None:
            seconds = (conversation.first_human_reply_at - handed_off_at).total_seconds()
            frt.append(seconds)
            if (author := first_reply_by.get(conversation.id)) is not None:
                per[author]["frt"].append(seconds)
        elif conversation.resolved_at is None:
            unanswered += 1
        if conversation.resolved_at is None:
            continue
        resolved += 1
        if first_assignment is not None:
            handling.append(
                (conversation.resolved_at - first_assignment.created_at).total_seconds()
            )
        if any(
            conversation.resolved_at < moment <= conversation.resolved_at + REOPEN_WINDOW
            for moment in later_handoffs.get(conversation.patient_id, ())
        ):
            reopened += 1
        resolution = next((e for e in reversed(trail) if e.kind == HandoffKind.RESOLVED), None)
        holder = resolution.from_attendant_id if resolution else None
        if holder is not None:
            per[holder]["resolved"] += 1
        if conversation.csat_score is not None:
            csat.append(conversation.csat_score)
            if holder is not None:
                per[holder]["csat"].append(conversation.csat_score)

    names = {}
    if per:
        people = select(User.id, User.name).where(User.id.in_(list(per)))
        names = {row.id: row.name for row in await session.execute(people)}
    return {
        "period": {
            "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(),
            "timezone": CLINIC_TIMEZONE,
        },
        "conversations": opened,
        "handoffs": len(handed),
        "handoff_rate": _share(len(handed), opened),
        "handoff_reasons": [
            {"reason": reason, "count": count}
            for reason, count in Counter(c.handoff_reason or "" for c in handed).most_common()
        ],
        "queue_wait": durations(waits),
        "first_response": {**durations(frt), "unanswered": unanswered},
        "handling_time": durations(handling),
        "resolved": resolved,
        "resolved_share": _share(resolved, len(handed)),
        "reopened": reopened,
        "resolution_rate": _share(resolved - reopened, resolved),
        "csat": {**csat_summary(csat), "response_rate": _share(len(csat), resolved)},
        "attendants": sorted(
            (
                {
                    "id": user_id,
                    "name": names.get(user_id),
                    "conversations": len(stats["conversations"]),
                    "first_response": durations(stats["frt"]),
                    "resolved": stats["resolved"],
                    "transfers_out": stats["transfers_out"],
                    "csat": csat_summary(stats["csat"]),
                }
                for user_id, stats in per.items()
            ),
            key=lambda row: (row["name"] or "", row["id"]),
        ),
    }


def _joined(trail: list[HandoffEvent]) -> bool:
    return bool(trail) and trail[0].kind == HandoffKind.LINKED


async def _handoffs_by_patient(
    session: AsyncSession, start: datetime, end: datetime
) -> dict[int, list[datetime]]:
    query = select(Conversation.patient_id, Conversation.handed_off_at).where(
        Conversation.handed_off_at >= start, Conversation.handed_off_at < end
    )
    found: dict[int, list[datetime]] = defaultdict(list)
    for row in await session.execute(query):
        found[row.patient_id].append(row.handed_off_at)
    return found
