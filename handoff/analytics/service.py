"""Service figures: conversations, handoffs, waits, first responses, resolutions, CSAT and SLA,
overall, per attendant, per channel and per day, as SQL aggregates (definitions: the page's
help panel and docs/metrics.md).

The unit is the handoff: a conversation whose bot → queue transition happened in the period.
A conversation that joined a patient's episode from another channel (`linked`) is that same
handoff, not a new one; a repeated handoff request of a waiting conversation changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Float,
    FromClause,
    Integer,
    MetaData,
    Select,
    String,
    Subquery,
    Table,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.analytics.scope import (
    Filters,
    Scope,
    bucket,
    distribution,
    durations,
    plus_seconds,
    seconds_between,
    share,
)
from models import (
    ASSIGNING_KINDS,
    Conversation,
    ConversationLabel,
    HandoffEvent,
    HandoffFacts,
    HandoffKind,
    User,
)
from models.base import UTCDateTime

# A patient handed off again this soon after a resolution means it did not really resolve.
REOPEN_WINDOW_SECONDS = 72 * 3600


def conversation_clauses(filters: Filters) -> list[ColumnElement[bool]]:
    """The filters as conditions on `Conversation` (an attendant: one they held at any time;
    a label: one on it now)."""
    clauses: list[ColumnElement[bool]] = []
    if filters.channel:
        clauses.append(Conversation.channel == filters.channel)
    if filters.attendant_id is not None:
        clauses.append(
            exists().where(
                HandoffEvent.conversation_id == Conversation.id,
                HandoffEvent.to_attendant_id == filters.attendant_id,
            )
        )
    if filters.label_id is not None:
        clauses.append(
            exists().where(
                ConversationLabel.conversation_id == Conversation.id,
                ConversationLabel.label_id == filters.label_id,
            )
        )
    return clauses


def opened(scope: Scope) -> Subquery:
    """Conversations opened in the period, and whether the bot kept them to the end."""
    period = scope.period
    return (
        select(
            Conversation.id,
            Conversation.channel,
            Conversation.opened_at.label("at"),
            cast(Conversation.handed_off_at.is_(None), Integer).label("contained"),
        )
        .where(
            Conversation.opened_at >= period.start,
            Conversation.opened_at < period.end,
            *conversation_clauses(scope.filters),
        )
        .subquery("opened")
    )


def handoffs(scope: Scope) -> Select[Any]:
    """One row per handoff of the period with every per-conversation measure (see
    `HANDOFF_TABLE_COLUMNS`): its conversation joined to its facts, kept by the transitions
    (`handoff.facts`), so a year reads one row per handoff, not its whole trail."""
    period = scope.period
    conversations = (
        select(Conversation)
        .where(
            Conversation.handed_off_at >= period.start,
            Conversation.handed_off_at < period.end,
            *conversation_clauses(scope.filters),
        )
        .subquery("c")
    )
    c = conversations.c
    f = HandoffFacts.__table__.c
    later = Conversation.__table__.alias("later")
    reopened = exists().where(
        later.c.patient_id == c.patient_id,
        later.c.handed_off_at > c.resolved_at,
        later.c.handed_off_at <= plus_seconds(scope, c.resolved_at, REOPEN_WINDOW_SECONDS),
    )
    frt = seconds_between(scope, c.first_human_reply_at, c.handed_off_at)
    waited_so_far = seconds_between(scope, literal(scope.now), c.handed_off_at)
    unanswered = and_(c.first_human_reply_at.is_(None), c.resolved_at.is_(None))
    return (
        select(
            c.id,
            c.channel,
            func.coalesce(c.handoff_reason, "").label("reason"),
            c.handed_off_at,
            c.resolved_at,
            c.csat_score.label("csat"),
            f.resolver_id,
            f.replier_id,
            frt.label("frt"),
            seconds_between(scope, f.first_assigned_at, c.handed_off_at).label("wait"),
            seconds_between(scope, c.resolved_at, f.first_assigned_at).label("handling"),
            cast(unanswered, Integer).label("unanswered"),
            cast(c.resolved_at.is_not(None), Integer).label("resolved"),
            cast(and_(c.resolved_at.is_not(None), reopened), Integer).label("reopened"),
            cast(
                case(
                    (c.first_human_reply_at.is_not(None), frt > scope.sla_seconds),
                    (unanswered, waited_so_far > scope.sla_seconds),
                    else_=False,
                ),
                Integer,
            ).label("breach"),
        )
        .join(HandoffFacts, f.conversation_id == c.id)
        # A conversation that only joined another's episode (`linked`) is not a handoff.
        .where(f.handed == true())
    )


HANDOFF_TABLE_COLUMNS = (
    Column("id", Integer),
    Column("channel", String(24)),
    Column("reason", String(64)),
    Column("handed_off_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("csat", Integer),
    Column("resolver_id", Integer),
    Column("replier_id", Integer),
    Column("frt", Float),
    Column("wait", Float),
    Column("handling", Float),
    Column("unanswered", Integer),
    Column("resolved", Integer),
    Column("reopened", Integer),
    Column("breach", Integer),
)


@asynccontextmanager
async def materialized(session: AsyncSession, scope: Scope) -> AsyncIterator[Table]:
    """The period's handoffs computed once into a temporary table (this connection's only,
    dropped after use) that every figure of the request then aggregates."""
    # One fixed name: temporary tables are per connection, and a stable name keeps the
    # statements over it in SQLAlchemy's compiled cache.
    table = Table(
        "analytics_handoffs",
        MetaData(),
        *(col.copy() for col in HANDOFF_TABLE_COLUMNS),
        prefixes=["TEMPORARY"],
    )
    connection = await session.connection()
    await connection.run_sync(table.create)
    try:
        await session.execute(
            table.insert().from_select([col.name for col in HANDOFF_TABLE_COLUMNS], handoffs(scope))
        )
        yield table
    finally:
        await connection.run_sync(table.drop)


async def summary(session: AsyncSession, scope: Scope, h: FromClause) -> dict[str, Any]:
    opened_rows = opened(scope)
    conversations, contained = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(opened_rows.c.contained), 0))
        )
    ).one()
    totals = (
        await session.execute(
            select(
                func.count().label("handoffs"),
                func.coalesce(func.sum(h.c.resolved), 0).label("resolved"),
                func.coalesce(func.sum(h.c.reopened), 0).label("reopened"),
                func.coalesce(func.sum(h.c.unanswered), 0).label("unanswered"),
                func.coalesce(func.sum(h.c.breach), 0).label("breaches"),
                func.count(h.c.csat).label("csat_responses"),
                func.avg(h.c.csat).label("csat_mean"),
            )
        )
    ).one()
    times = await _distributions(session, scope, h)
    csat_counts: dict[int, int] = dict(
        (
            await session.execute(
                select(h.c.csat, func.count()).where(h.c.csat.is_not(None)).group_by(h.c.csat)
            )
        ).all()
    )
    reasons = await session.execute(
        select(h.c.reason, func.count().label("n"))
        .group_by(h.c.reason)
        .order_by(func.count().desc(), h.c.reason)
    )
    return {
        "conversations": conversations,
        "contained": contained,
        "containment_rate": share(contained, conversations),
        "handoffs": totals.handoffs,
        "handoff_reasons": [{"reason": r, "count": n} for r, n in reasons],
        "queue_wait": times["wait"],
        "first_response": {**times["frt"], "unanswered": totals.unanswered},
        "handling_time": times["handling"],
        "resolved": totals.resolved,
        "reopened": totals.reopened,
        "resolution_rate": share(totals.resolved - totals.reopened, totals.resolved),
        "sla": {
            "target_seconds": scope.sla_seconds,
            "breaches": totals.breaches,
            "breach_rate": share(totals.breaches, totals.handoffs),
        },
        "csat": {
            "responses": totals.csat_responses,
            "mean": None if totals.csat_mean is None else round(float(totals.csat_mean), 2),
            "distribution": {str(n): csat_counts.get(n, 0) for n in range(1, 6)},
            "response_rate": share(totals.csat_responses, totals.resolved),
        },
    }


async def _distributions(
    session: AsyncSession, scope: Scope, h: FromClause
) -> dict[str, dict[str, Any]]:
    values = union_all(
        *(
            select(literal(name, String).label("grp"), h.c[name].label("v"))
            for name in ("frt", "wait", "handling")
        )
    ).subquery()
    rows = {row.grp: row for row in await session.execute(distribution(scope.dialect, values))}
    return {name: durations(rows.get(name)) for name in ("frt", "wait", "handling")}


async def per_channel(session: AsyncSession, scope: Scope, h: FromClause) -> list[dict[str, Any]]:
    opened_rows = opened(scope)
    volume: dict[str, int] = dict(
        (
            await session.execute(
                select(opened_rows.c.channel, func.count()).group_by(opened_rows.c.channel)
            )
        ).all()
    )
    frt = {
        row.grp: row
        for row in await session.execute(
            distribution(
                scope.dialect, select(h.c.channel.label("grp"), h.c.frt.label("v")).subquery()
            )
        )
    }
    rows = await session.execute(_grouped(h, h.c.channel))
    found = {row.grp: row for row in rows}
    return [
        {
            "channel": channel,
            "conversations": volume.get(channel, 0),
            **_group_figures(found.get(channel)),
            "first_response": durations(frt.get(channel)),
        }
        for channel in sorted(set(volume) | set(found))
    ]


async def per_attendant(session: AsyncSession, h: FromClause) -> list[dict[str, Any]]:
    """Handled: conversations given to them; first response by who sent the first reply;
    resolutions and CSAT by who held the conversation when it was resolved."""
    held = (
        select(
            HandoffEvent.to_attendant_id.label("grp"),
            func.count(func.distinct(HandoffEvent.conversation_id)).label("n"),
        )
        .join(h, h.c.id == HandoffEvent.conversation_id)
        .where(HandoffEvent.kind.in_(ASSIGNING_KINDS), HandoffEvent.to_attendant_id.is_not(None))
        .group_by(HandoffEvent.to_attendant_id)
    )
    transfers = (
        select(HandoffEvent.from_attendant_id.label("grp"), func.count().label("n"))
        .join(h, h.c.id == HandoffEvent.conversation_id)
        .where(HandoffEvent.kind == HandoffKind.TRANSFERRED)
        .group_by(HandoffEvent.from_attendant_id)
    )
    dialect = (await session.connection()).dialect.name
    handled = dict((await session.execute(held)).all())
    transferred = dict((await session.execute(transfers)).all())
    frt = {
        row.grp: row
        for row in await session.execute(
            distribution(
                dialect, select(h.c.replier_id.label("grp"), h.c.frt.label("v")).subquery()
            )
        )
    }
    breaches = dict(
        (
            await session.execute(
                select(h.c.replier_id, func.sum(h.c.breach)).group_by(h.c.replier_id)
            )
        ).all()
    )
    resolved = {row.grp: row for row in await session.execute(_resolved_by(h))}
    people = {p for p in {*handled, *transferred, *frt, *resolved} if p is not None}
    names = await _names(session, people)
    rows = [
        {
            "attendant_id": person,
            "name": names.get(person),
            "handled": handled.get(person, 0),
            "first_response": durations(frt.get(person)),
            "sla_breaches": int(breaches.get(person) or 0),
            "resolved": resolved[person].resolved if person in resolved else 0,
            "reopened": resolved[person].reopened if person in resolved else 0,
            "transfers_out": transferred.get(person, 0),
            "csat_responses": resolved[person].csat_responses if person in resolved else 0,
            "csat_mean": _mean(resolved[person].csat_mean) if person in resolved else None,
        }
        for person in people
    ]
    return sorted(rows, key=lambda row: (row["name"] or "", row["attendant_id"]))


def _resolved_by(h: FromClause) -> Select[Any]:
    return (
        select(
            h.c.resolver_id.label("grp"),
            func.sum(h.c.resolved).label("resolved"),
            func.sum(h.c.reopened).label("reopened"),
            func.count(h.c.csat).label("csat_responses"),
            func.avg(h.c.csat).label("csat_mean"),
        )
        .where(h.c.resolver_id.is_not(None))
        .group_by(h.c.resolver_id)
    )


def _grouped(h: FromClause, key: Any) -> Select[Any]:
    return select(
        key.label("grp"),
        func.count().label("handoffs"),
        func.sum(h.c.resolved).label("resolved"),
        func.sum(h.c.reopened).label("reopened"),
        func.sum(h.c.breach).label("breaches"),
        func.count(h.c.csat).label("csat_responses"),
        func.avg(h.c.csat).label("csat_mean"),
    ).group_by(key)


def _group_figures(row: Any | None) -> dict[str, Any]:
    if row is None:
        return {
            "handoffs": 0,
            "resolved": 0,
            "reopened": 0,
            "sla_breaches": 0,
            "csat_responses": 0,
            "csat_mean": None,
        }
    return {
        "handoffs": row.handoffs,
        "resolved": int(row.resolved or 0),
        "reopened": int(row.reopened or 0),
        "sla_breaches": int(row.breaches or 0),
        "csat_responses": row.csat_responses,
        "csat_mean": _mean(row.csat_mean),
    }


def _mean(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


async def _names(session: AsyncSession, ids: set[int]) -> dict[int, str | None]:
    if not ids:
        return {}
    query = select(User.id, User.name).where(User.id.in_(sorted(ids)))
    return {row.id: row.name for row in await session.execute(query)}


async def series(session: AsyncSession, scope: Scope, h: FromClause) -> dict[str, dict[str, float]]:
    """Per bucket: conversations, contained, handoffs, mean first response, SLA breaches,
    resolved, reopened and mean CSAT."""
    opened_rows = opened(scope)
    day = bucket(scope, opened_rows.c.at)
    found: dict[str, dict[str, float]] = {}
    for row in await session.execute(
        select(day.label("b"), func.count(), func.sum(opened_rows.c.contained)).group_by(day)
    ):
        found.setdefault("conversations", {})[row[0]] = row[1]
        found.setdefault("contained", {})[row[0]] = int(row[2] or 0)
    day = bucket(scope, h.c.handed_off_at)
    query = select(
        day.label("b"),
        func.count().label("handoffs"),
        func.avg(h.c.frt).label("first_response_mean"),
        func.sum(h.c.breach).label("sla_breaches"),
        func.sum(h.c.resolved).label("resolved"),
        func.sum(h.c.reopened).label("reopened"),
        func.avg(h.c.csat).label("csat_mean"),
    ).group_by(day)
    for row in await session.execute(query):
        for name, value in row._mapping.items():
            if name != "b" and value is not None:
                found.setdefault(name, {})[row.b] = round(float(value), 2)
    return found
