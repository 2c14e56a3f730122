from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import update

import handoff.analytics as analytics
from handoff.analytics import Period
from handoff.queue import CLINIC_TZ, StaffHours, describe_when, reopens_at
from handoff.transitions import queueing, resolution, talking
from models import Conversation, Role, ScheduleException, utcnow
from tests.factories import patient_message, staff


def test_a_period_is_inclusive_clinic_days_and_refuses_nonsense():
    period = Period.parse("2026-11-02", "2026-11-02", date(2026, 11, 27))
    assert period.start == datetime(2026, 11, 2, tzinfo=CLINIC_TZ)
    assert period.end == datetime(2026, 11, 3, tzinfo=CLINIC_TZ)
    assert Period.parse(None, None, date(2026, 11, 27)).first_day == date(2026, 11, 21)
    assert Period.parse("2026-11-02", "2026-11-08", date(2026, 11, 27)).previous() == Period(
        date(2026, 10, 26), date(2026, 11, 1)
    )
    nonsense = [
        ("2026-11-03", "2026-11-02"),
        ("2024-01-01", "2026-01-01"),
        ("x", None),
        ("0001-01-01", "0001-01-02"),
        (None, "9999-12-31"),
    ]
    for first, last in nonsense:
        with pytest.raises(ValueError):
            Period.parse(first, last, date(2026, 11, 27))


def test_staff_hours_are_parsed_by_weekday():
    hours = StaffHours.parse("0-4 08:00-18:00; 5 08:00-12:00")
    assert sorted(hours.blocks) == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError):
        StaffHours.parse("7 08:00-12:00")
    with pytest.raises(ValueError):
        StaffHours.parse("weekdays 8h to 6pm")


@pytest.fixture
def reception(settings):
    return replace(settings, staff_hours="0-4 08:00-18:00; 5 08:00-12:00")


async def test_closed_hours_and_holidays_push_the_reopening(db, reception):
    friday_evening = datetime(2026, 11, 27, 19, 0, tzinfo=CLINIC_TZ)
    saturday_morning = datetime(2026, 11, 28, 8, 0, tzinfo=CLINIC_TZ)
    async with db.session() as session:
        assert await reopens_at(session, reception, friday_evening) == saturday_morning
        assert await reopens_at(session, reception, friday_evening - timedelta(hours=3)) is None
        # A clinic-wide closure on Saturday moves the reopening to Monday.
        session.add(
            ScheduleException(
                doctor_id=None,
                starts_at=saturday_morning,
                ends_at=saturday_morning + timedelta(days=1),
                reason="Feriado",
            )
        )
        await session.flush()
        assert await reopens_at(session, reception, friday_evening) == datetime(
            2026, 11, 30, 8, 0, tzinfo=CLINIC_TZ
        )
    assert describe_when(saturday_morning, friday_evening) == "amanhã às 8h"
    assert describe_when(datetime(2026, 11, 30, 8, 30, tzinfo=CLINIC_TZ), friday_evening) == (
        "na segunda-feira às 8h30"
    )


async def _backdate(db, conversation_id, **moments):
    async with db.session() as session:
        await session.execute(
            update(Conversation).where(Conversation.id == conversation_id).values(**moments)
        )


async def test_the_report_measures_from_handoff_and_attributes_to_people(ctx):
    ana = await staff(ctx.db, capacity=1)
    bruno = await staff(ctx.db, capacity=1)
    marta = await staff(ctx.db, Role.MANAGER)
    first = await patient_message(ctx.db, user="m-1")
    second = await patient_message(ctx.db, user="m-2")
    await patient_message(ctx.db, "só uma dúvida para o robô")
    for recorded in (first, second):
        await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    a, b = first.conversation.id, second.conversation.id
    await talking.reply(ctx, a, ana, "Oi!")
    await talking.reply(ctx, b, bruno, "Olá!")
    await queueing.request_handoff(ctx, b, reason="emergencia")  # asked twice: one handoff
    await resolution.resolve(ctx, a, marta)  # a manager presses the button; Ana held it
    now = utcnow()
    await _backdate(ctx.db, a, handed_off_at=now - timedelta(seconds=100), csat_score=4)
    await _backdate(ctx.db, b, handed_off_at=now - timedelta(seconds=30))
    # Ana's patient is handed off again within 72 hours: it did not really resolve.
    again = await patient_message(ctx.db, "voltei", user="m-1")
    await queueing.request_handoff(ctx, again.conversation.id, reason="emergencia")

    today = now.astimezone(CLINIC_TZ).date()
    scope = analytics.Scope(
        Period(today - timedelta(days=1), today),
        analytics.Filters(),
        ctx.db.engine.dialect.name,
        utcnow(),
    )
    async with ctx.db.session() as session:
        report = await analytics.report(session, scope)
    figures = report["service"]

    assert figures["conversations"] == 4
    assert figures["handoffs"] == 3
    # The second request for B changes its priority, not its reason: still one handoff.
    assert figures["handoff_reasons"] == [
        {"reason": "pedido_do_paciente", "count": 2},
        {"reason": "emergencia", "count": 1},
    ]
    assert figures["first_response"]["count"] == 2
    assert 99 < figures["first_response"]["p90_seconds"] < 110
    assert figures["first_response"]["unanswered"] == 1
    assert (figures["resolved"], figures["reopened"], figures["resolution_rate"]) == (1, 1, 0.0)
    assert figures["csat"]["mean"] == 4
    per = {row["name"]: row for row in report["attendants"]}
    assert per[ana.name]["resolved"] == 1
    assert per[ana.name]["csat_mean"] == 4
    assert per[bruno.name]["first_response"]["count"] == 1
    assert marta.name not in per
