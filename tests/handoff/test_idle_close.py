"""A conversation the bot owns closes after IDLE_CLOSE_HOURS without a message, through the
worker's handoff timers (handoff.timers, handoff.transitions.resolution.close_idle); the
patient's next message opens a new one, and the analytics console counts it as kept by the
bot, never as resolved by staff."""

from dataclasses import replace
from datetime import timedelta

import pytest

import handoff.analytics as analytics
from handoff.analytics import drill
from handoff.queue import CLINIC_TZ
from handoff.transitions import resolution, talking
from models import ConversationStatus, Owner, utcnow
from processes.worker import JOBS
from tests.factories import patient_message, staff
from tests.handoff.steps import handed_off, read_conversation, transition_kinds

TIMERS = next(job for job in JOBS if job.name == "handoff timers")


@pytest.fixture
def clock(monkeypatch):
    """Move the worker's clock for the idle close forward by some hours."""

    def forward(hours: float) -> None:
        later = utcnow() + timedelta(hours=hours)
        monkeypatch.setattr(resolution, "utcnow", lambda: later)

    return forward


async def test_a_quiet_bot_conversation_closes_and_the_next_message_opens_a_new_one(ctx, clock):
    first = await patient_message(ctx.db, "qual o horário de vocês?", user="maria")
    quiet = first.conversation.id

    clock(23)
    await TIMERS.run_once(ctx)
    assert (await read_conversation(ctx.db, quiet)).status == ConversationStatus.OPEN

    clock(24.1)
    await TIMERS.run_once(ctx)
    closed = await read_conversation(ctx.db, quiet)
    assert (closed.status, closed.owner, closed.resolved_at) == (
        ConversationStatus.CLOSED,
        Owner.BOT,
        None,
    )
    assert closed.closed_at is not None
    assert await transition_kinds(ctx.db, quiet) == ["closed_idle"]
    # Staff screens drop it.
    [event] = [e for e in ctx.bus.of_type("conversation") if e["conversation"]["id"] == quiet]
    assert (event["conversation"]["status"], event["change"]["kind"]) == ("closed", "closed_idle")

    again = await patient_message(ctx.db, "oi de novo", user="maria")
    assert again.conversation.id != quiet
    assert again.conversation.patient_id == first.conversation.patient_id
    assert (
        await read_conversation(ctx.db, again.conversation.id)
    ).status == ConversationStatus.OPEN


async def test_only_the_bots_conversations_close_and_never_when_switched_off(ctx, clock):
    ana = await staff(ctx.db, capacity=1)
    with_ana = await handed_off(ctx)
    queued = await handed_off(ctx)
    await talking.reply(ctx, with_ana, ana, "Já vejo isso.")
    bot = (await patient_message(ctx.db, "oi")).conversation.id

    ctx.settings = replace(ctx.settings, idle_close_hours=0)
    clock(48)
    await TIMERS.run_once(ctx)
    assert (await read_conversation(ctx.db, bot)).status == ConversationStatus.OPEN

    ctx.settings = replace(ctx.settings, idle_close_hours=24)
    await TIMERS.run_once(ctx)
    states = [(await read_conversation(ctx.db, c)).status for c in (with_ana, queued, bot)]
    assert states == [ConversationStatus.OPEN, ConversationStatus.OPEN, ConversationStatus.CLOSED]


async def test_an_idle_closed_conversation_counts_as_kept_by_the_bot_not_as_resolved(ctx, clock):
    ana = await staff(ctx.db)
    helped = await handed_off(ctx)
    await talking.reply(ctx, helped, ana, "Pronto, remarquei.")
    await resolution.resolve(ctx, helped, ana)
    idle = (await patient_message(ctx.db, "vocês abrem sábado?")).conversation.id
    clock(25)
    await TIMERS.run_once(ctx)
    assert (await read_conversation(ctx.db, idle)).status == ConversationStatus.CLOSED

    now = utcnow()
    scope = analytics.Scope(
        analytics.Period.parse(None, None, now.astimezone(CLINIC_TZ).date()),
        analytics.Filters(),
        ctx.db.engine.dialect.name,
        now,
    )
    async with ctx.db.session() as session:
        report = await analytics.report(session, scope)
        contained = await drill.listing(session, scope, "contained", None)
    service = report["service"]
    assert (service["conversations"], service["contained"], service["containment_rate"]) == (
        2,
        1,
        0.5,
    )
    assert (service["handoffs"], service["resolved"]) == (1, 1)
    assert [(a["attendant_id"], a["resolved"]) for a in report["attendants"]] == [(ana.id, 1)]
    assert [row["conversation_id"] for row in contained["rows"]] == [idle]
