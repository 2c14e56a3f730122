"""Every figure of the analytics console against the hand-made week of analytics_fixture
(where each moment and its reason is written out), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

import handoff.analytics as analytics
from handoff.analytics import Period, appointments, drill, live, reminders, service
from models import Conversation
from tests.handoff.analytics_fixture import NOW, WEEK, Week, at, build, scope


@pytest.fixture
async def week(db) -> Week:
    return await build(db)


async def _service(db, figures, sc=None):
    """`figures` (service.summary, per_channel, per_attendant or series) over the week."""
    sc = sc or scope(_dialect(db))
    async with db.session() as session, service.materialized(session, sc) as handoffs:
        if figures is service.per_attendant:
            return await figures(session, handoffs)
        return await figures(session, sc, handoffs)


def _dialect(db) -> str:
    return db.engine.dialect.name


async def test_service_figures_follow_their_definitions(db, week):
    figures = await _service(db, service.summary)
    assert (figures["conversations"], figures["contained"]) == (6, 1)
    assert figures["containment_rate"] == round(1 / 6, 4)
    # A, B, C, D: F joined D's episode (linked) and C's second request changed nothing.
    assert figures["handoffs"] == 4
    assert figures["handoff_reasons"] == [
        {"reason": "pedido_do_paciente", "count": 2},
        {"reason": "duvida", "count": 1},
        {"reason": "emergencia", "count": 1},
    ]
    # Waits 60, 600, 300 (C's first assignment, before its requeue), 300.
    assert figures["queue_wait"] == {
        "count": 4,
        "mean_seconds": 315.0,
        "p50_seconds": 300.0,
        "p90_seconds": 600.0,
    }
    # First replies 120 (A), 1200 (B: Ana's internal note is no reply), 360 (D); C unanswered.
    assert figures["first_response"] == {
        "count": 3,
        "mean_seconds": 560.0,
        "p50_seconds": 360.0,
        "p90_seconds": 1200.0,
        "unanswered": 1,
    }
    # From first assignment to resolution: A 1740, B 1800.
    assert figures["handling_time"] == {
        "count": 2,
        "mean_seconds": 1770.0,
        "p50_seconds": 1740.0,
        "p90_seconds": 1800.0,
    }
    # A's patient came back (D) within 72 h: resolved twice, once for good.
    assert (figures["resolved"], figures["reopened"], figures["resolution_rate"]) == (2, 1, 0.5)
    # B answered after 20 min; C still unanswered long past 15 min.
    assert figures["sla"] == {"target_seconds": 900, "breaches": 2, "breach_rate": 0.5}
    assert figures["csat"] == {
        "responses": 2,
        "mean": 3.5,
        "response_rate": 1.0,
        "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1},
    }


async def test_a_longer_sla_target_counts_fewer_breaches(db, week):
    wide = analytics.Scope(WEEK, analytics.Filters(), _dialect(db), NOW, sla_seconds=1800)
    figures = await _service(db, service.summary, wide)
    assert figures["sla"]["breaches"] == 1  # C only


async def test_attendants_get_what_they_did(db, week):
    rows = await _service(db, service.per_attendant)
    by = {row["name"]: row for row in rows}
    assert set(by) == {"Ana", "Bruno"}
    ana, bruno = by["Ana"], by["Bruno"]
    assert (ana["handled"], ana["transfers_out"], ana["resolved"], ana["reopened"]) == (3, 1, 1, 1)
    assert (ana["first_response"]["count"], ana["first_response"]["mean_seconds"]) == (1, 120.0)
    assert (ana["csat_mean"], ana["sla_breaches"]) == (5.0, 0)
    # B (by transfer) and D: the linked F is D's handoff, not one more.
    assert (bruno["handled"], bruno["resolved"], bruno["csat_mean"]) == (2, 1, 2.0)
    assert bruno["first_response"]["mean_seconds"] == 780.0
    assert bruno["sla_breaches"] == 1


async def test_channels_split_the_figures(db, week):
    rows = await _service(db, service.per_channel)
    by = {row["channel"]: row for row in rows}
    assert (by["whatsapp"]["conversations"], by["whatsapp"]["handoffs"]) == (3, 2)
    assert (by["webchat"]["conversations"], by["webchat"]["handoffs"]) == (3, 2)
    assert by["whatsapp"]["first_response"]["mean_seconds"] == 660.0
    assert (by["webchat"]["sla_breaches"], by["webchat"]["resolved"]) == (1, 0)


async def test_filters_narrow_every_figure(db, week):
    whatsapp = await _service(db, service.summary, scope(_dialect(db), channel="whatsapp"))
    bruno = await _service(db, service.summary, scope(_dialect(db), attendant_id=week.bruno))
    async with db.session() as session:
        booked = await appointments.summary(session, scope(_dialect(db), channel="portal"))
    assert (whatsapp["conversations"], whatsapp["handoffs"], whatsapp["resolved"]) == (3, 2, 2)
    assert (bruno["conversations"], bruno["handoffs"]) == (3, 2)  # B, D, F; handoffs B, D
    assert (booked["booked"], booked["no_shows"], booked["visits"]) == (1, 1, 1)


async def test_days_are_sao_paulo_days(db, week):
    """B was handed off at 02:30 UTC on the 3rd: 23:30 of the 2nd in São Paulo."""
    days = await _service(db, service.series)
    monday = Period(date(2026, 11, 2), date(2026, 11, 2))
    hours = await _service(db, service.series, scope(_dialect(db), monday))
    assert days["handoffs"] == {"2026-11-02": 2, "2026-11-03": 1, "2026-11-04": 1}
    assert days["conversations"] == {
        "2026-11-02": 2,
        "2026-11-03": 1,
        "2026-11-04": 2,
        "2026-11-05": 1,
    }
    assert hours["handoffs"] == {"09": 1, "23": 1}


async def test_series_cover_every_bucket_against_the_previous_period(db, week):
    async with db.session() as session:
        found = await analytics.series(session, scope(_dialect(db)))
    assert found["granularity"] == "day"
    assert found["buckets"][0] == "2026-11-02" and len(found["buckets"]) == 7
    assert found["previous_buckets"][0] == "2026-10-26"
    assert found["series"]["handoffs"]["current"] == [2, 1, 1, 0, 0, 0, 0]
    assert found["series"]["handoffs"]["previous"] == [0] * 7
    assert found["series"]["booked"]["current"] == [2, 2, 0, 0, 0, 0, 0]
    assert found["series"]["first_response_mean"]["current"][:2] == [660.0, None]


async def test_appointment_figures_follow_their_definitions(db, week):
    async with db.session() as session:
        figures = await appointments.summary(session, scope(_dialect(db)))
    assert figures["booked"] == 4 and figures["reschedules"] == 1
    assert figures["by_origin"] == [
        {"origin": "bot", "channel": "whatsapp", "booked": 2, "reschedules": 1},
        {"origin": "portal", "channel": "portal", "booked": 1, "reschedules": 0},
        {"origin": "staff", "channel": "staff", "booked": 1, "reschedules": 0},
    ]
    # P3; P4's cancellation is part of its reschedule.
    assert figures["cancellations"] == 1
    # Visits in the week: P1 (confirmed, came) and P2 (missed); P3 was cancelled.
    assert (figures["visits"], figures["confirmed"], figures["confirmation_rate"]) == (2, 1, 0.5)
    assert (figures["no_shows"], figures["no_show_rate"]) == (1, 0.5)
    # 1, 3, 3, 17 and 18 days.
    assert figures["lead_time"] == {
        "count": 5,
        "mean_seconds": 725760.0,
        "p50_seconds": 259200.0,
        "p90_seconds": 1555200.0,
    }


async def test_reminder_figures_follow_their_definitions(db, week):
    async with db.session() as session:
        figures = await reminders.summary(session, scope(_dialect(db)))
    totals = {k: figures[k] for k in reminders.FIGURES}
    assert totals == {
        "sent": 2,
        "delivered": 2,
        "read": 1,
        "failed": 1,
        "confirmed": 1,
        "cancelled": 0,
    }
    assert [row["channel"] for row in figures["by_channel"]] == ["telegram", "whatsapp"]
    assert figures["by_channel"][0]["failed"] == 1


async def test_live_figures_are_the_reception_now(db, week):
    async with db.session() as session:
        now = await live.now_figures(session, NOW)
    assert now["queue_size"] == 1
    assert now["longest_wait_seconds"] == 7 * 86400 + 8 * 3600 + 30 * 60
    assert now["attendants"] == {"online": 1, "pausa": 1, "offline": 1}


async def test_drill_down_lists_what_a_figure_counted(db, week):
    async with db.session() as session:
        breaches = await drill.listing(session, scope(_dialect(db)), "sla_breaches")
        reasons = await drill.listing(session, scope(_dialect(db)), "reason", "emergencia")
        contained = await drill.listing(session, scope(_dialect(db)), "contained")
        no_shows = await drill.listing(session, scope(_dialect(db)), "no_shows")
        cancelled = await drill.listing(session, scope(_dialect(db)), "cancellations")
    c = week.conversations
    assert [r["conversation_id"] for r in breaches["rows"]] == [c["C"], c["B"]]
    assert breaches["total"] == 2 and breaches["rows"][1]["attendant"] == "Bruno"
    assert [r["conversation_id"] for r in reasons["rows"]] == [c["B"]]
    assert [r["conversation_id"] for r in contained["rows"]] == [c["E"]]
    assert [r["appointment_id"] for r in no_shows["rows"]] == [week.appointments["p2"]]
    assert [r["appointment_id"] for r in cancelled["rows"]] == [week.appointments["p3"]]


async def test_days_follow_sao_paulo_across_an_old_daylight_saving_change(db, week):
    """São Paulo moved from UTC-3 to UTC-2 at local midnight on 2018-11-04: 02:30 UTC was the
    evening of the 3rd; 03:30 UTC, already 01:30 of the 4th."""
    async with db.session() as session:
        template = await session.get_one(Conversation, week.conversations["E"])
        for moment in (at(11, 4, 2, 30), at(11, 4, 3, 30)):
            moment = moment.replace(year=2018)
            session.add(
                Conversation(
                    patient_id=template.patient_id,
                    channel=template.channel,
                    channel_identity_id=template.channel_identity_id,
                    opened_at=moment,
                    last_message_at=moment,
                )
            )
    days = Period(date(2018, 11, 1), date(2018, 11, 7))
    found = await _service(db, service.series, scope(_dialect(db), days))
    assert found["conversations"] == {"2018-11-03": 1, "2018-11-04": 1}
