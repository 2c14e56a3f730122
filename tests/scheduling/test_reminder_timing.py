"""When reminders go out: configured offsets, bookings close to the appointment, and no
reminders between 21h and 8h clinic time."""

from datetime import timedelta

import pytest

from scheduling.reminders import Offset, is_quiet, parse_offsets, plan
from tests.scheduling.conftest import sp

DEFAULT = parse_offsets("24h,2h@24h")


def _local(planned):
    return [
        (minutes, due.astimezone(sp(2026, 1, 1).tzinfo).strftime("%d %H:%M"))
        for minutes, due in planned
    ]


def test_the_default_is_a_day_before_plus_two_hours_before_when_booked_days_ahead():
    planned = plan(sp(2026, 3, 12, 14), booked_at=sp(2026, 3, 9, 10), offsets=DEFAULT)

    assert _local(planned) == [(1440, "11 14:00"), (120, "12 12:00")]


def test_an_appointment_booked_under_a_day_ahead_gets_no_reminder_before_it_was_booked():
    planned = plan(sp(2026, 3, 10, 9), booked_at=sp(2026, 3, 9, 15), offsets=DEFAULT)

    assert planned == []


def test_a_day_and_a_bit_ahead_gets_both_reminders():
    planned = plan(sp(2026, 3, 10, 16), booked_at=sp(2026, 3, 9, 10), offsets=DEFAULT)

    assert _local(planned) == [(1440, "09 16:00"), (120, "10 14:00")]


def test_a_reminder_falling_in_the_night_moves_to_eight_in_the_morning():
    # 2 h before 9h30 would be 7h30.
    planned = plan(sp(2026, 3, 12, 9, 30), booked_at=sp(2026, 3, 9, 10), offsets=DEFAULT)

    assert _local(planned) == [(1440, "11 09:30"), (120, "12 08:00")]


def test_when_eight_oclock_is_too_late_the_reminder_goes_the_evening_before():
    # 2 h before 8h would be 6h; 8h is the appointment itself, so 20h the day before.
    planned = plan(sp(2026, 3, 12, 8), booked_at=sp(2026, 3, 9, 10), offsets=DEFAULT)

    assert _local(planned) == [(1440, "11 08:00"), (120, "11 20:00")]


def test_a_late_evening_reminder_moves_to_the_next_morning():
    planned = plan(
        sp(2026, 3, 12, 22, 30), booked_at=sp(2026, 3, 9, 10), offsets=parse_offsets("24h")
    )

    assert _local(planned) == [(1440, "12 08:00")]


def test_two_reminders_closer_than_an_hour_are_one_too_many():
    planned = plan(
        sp(2026, 3, 12, 14), booked_at=sp(2026, 3, 9, 10), offsets=parse_offsets("24h,1410m")
    )

    assert _local(planned) == [(1440, "11 14:00")]


@pytest.mark.parametrize(
    ("hour", "minute", "quiet"),
    [(20, 59, False), (21, 0, True), (3, 0, True), (7, 59, True), (8, 0, False), (12, 0, False)],
)
def test_quiet_hours_run_from_nine_at_night_to_eight_in_the_morning(hour, minute, quiet):
    assert is_quiet(sp(2026, 3, 9, hour, minute)) is quiet


def test_offsets_are_configurable_in_minutes_hours_and_days():
    assert parse_offsets("2d, 90m@3d ,1h") == (
        Offset(before=timedelta(days=2)),
        Offset(before=timedelta(minutes=90), min_lead=timedelta(days=3)),
        Offset(before=timedelta(hours=1)),
    )


@pytest.mark.parametrize("spec", ["24", "24 horas", "2h@", "-1h", "1w"])
def test_a_bad_offset_setting_is_refused_with_the_setting_named(spec):
    with pytest.raises(ValueError, match="REMINDER_OFFSETS"):
        parse_offsets(spec)
