"""What a report covers (clinic-local days, filters) and the SQL pieces every figure shares.

Reports are by São Paulo days: a period's bounds are clinic-local midnights, and series are
bucketed by the clinic-local day (or hour, for a one-day period) in the database itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Interval,
    Select,
    String,
    Subquery,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import CLINIC_TIMEZONE
from handoff.queue import CLINIC_TZ

MAX_PERIOD_DAYS = 366
# Reports cover the clinic's working life: outside these, a date is a typo (and the previous
# period of year 1 does not exist).
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 1, 1)
# First human reply later than this after the handoff is a breach, unless the manager says
# otherwise for the report.
DEFAULT_SLA_MINUTES = 15
MAX_SLA_MINUTES = 24 * 60
# Per sort or hash of a report's statements (PostgreSQL's default is 4 MB).
REPORT_WORK_MEM = "16MB"
# A report that takes longer than this is cut off (the page says something went wrong)
# rather than holding a database connection and a core.
REPORT_TIMEOUT = "30s"


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
        if first_day < EARLIEST_DAY or last_day > LATEST_DAY:
            raise ValueError("period out of range")
        return cls(first_day, last_day)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def hourly(self) -> bool:
        """A one-day report is charted per hour."""
        return self.days == 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), tzinfo=CLINIC_TZ)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time(), tzinfo=CLINIC_TZ)

    def previous(self) -> Period:
        """The same number of days just before: what the charts compare with."""
        return Period(self.first_day - timedelta(days=self.days), self.first_day - timedelta(1))

    def buckets(self) -> list[str]:
        """Every bucket label of the period, in order, including empty ones."""
        if self.hourly:
            return [f"{hour:02d}" for hour in range(24)]
        return [(self.first_day + timedelta(days=n)).isoformat() for n in range(self.days)]

    def describe(self) -> dict[str, str]:
        return {
            "from": self.first_day.isoformat(),
            "to": self.last_day.isoformat(),
            "timezone": CLINIC_TIMEZONE,
        }


@dataclass(frozen=True)
class Filters:
    """Narrow every figure to one channel and/or one attendant, and the conversation figures
    to the conversations with one label (appointments and reminders carry no labels)."""

    channel: str | None = None
    attendant_id: int | None = None
    label_id: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "attendant_id": self.attendant_id,
            "label_id": self.label_id,
        }


@dataclass(frozen=True)
class Scope:
    period: Period
    filters: Filters
    dialect: str  # "postgresql" or "sqlite"
    now: datetime
    sla_seconds: int = DEFAULT_SLA_MINUTES * 60

    def of(self, period: Period) -> Scope:
        return Scope(period, self.filters, self.dialect, self.now, self.sla_seconds)


def seconds_between(scope: Scope, later: Any, earlier: Any) -> ColumnElement[float]:
    if scope.dialect == "postgresql":
        return cast(func.extract("epoch", later - earlier), Float)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def plus_seconds(scope: Scope, moment: ColumnElement[Any], seconds: int) -> ColumnElement[Any]:
    if scope.dialect == "postgresql":
        return moment + literal_column(f"interval '{int(seconds)} seconds'", Interval)
    return func.strftime("%Y-%m-%d %H:%M:%f", moment, f"+{int(seconds)} seconds")


def bucket(scope: Scope, moment: Any) -> ColumnElement[str]:
    """The clinic-local day (`YYYY-MM-DD`) or, for a one-day period, hour (`HH`) of a UTC
    column, computed by the database."""
    if scope.dialect == "postgresql":
        local = func.timezone(CLINIC_TIMEZONE, moment)
        return func.to_char(local, "HH24" if scope.period.hourly else "YYYY-MM-DD")
    # SQLite has no time zone database: the offsets in force over the period (São Paulo has
    # had none since 2019, but older periods cross daylight-saving changes) become a CASE.
    pattern = "%H" if scope.period.hourly else "%Y-%m-%d"
    shifts = _utc_offsets(scope.period)
    whens = [
        (moment < _sqlite_utc(until), func.strftime(pattern, moment, f"{offset:+d} seconds"))
        for until, offset in shifts[:-1]
    ]
    last = func.strftime(pattern, moment, f"{shifts[-1][1]:+d} seconds")
    return case(*whens, else_=last) if whens else last


def _utc_offsets(period: Period) -> list[tuple[datetime, int]]:
    """(until, offset in seconds) for each stretch of one UTC offset in the period."""
    stretches: list[tuple[datetime, int]] = []
    moment = period.start - timedelta(days=1)
    offset = _offset(moment)
    while moment < period.end + timedelta(days=1):
        following = moment + timedelta(hours=1)
        if _offset(following) != offset:
            stretches.append((following, offset))
            offset = _offset(following)
        moment = following
    stretches.append((period.end + timedelta(days=1), offset))
    return stretches


def _offset(moment: datetime) -> int:
    delta = moment.astimezone(CLINIC_TZ).utcoffset()
    assert delta is not None
    return int(delta.total_seconds())


def _sqlite_utc(moment: datetime) -> ColumnElement[str]:
    return literal(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), String)


def distribution(dialect: str, values: Subquery) -> Select[Any]:
    """count, mean, nearest-rank median and p90 of `values` (a subquery with columns `grp`
    and `v`, NULL `v` skipped) per `grp`. PostgreSQL's `percentile_disc` is the nearest rank
    (the value at position ceil(p·n)) in one sort; SQLite has no such aggregate and ranks with
    window functions."""
    present = select(values.c.grp, values.c.v).where(values.c.v.is_not(None)).subquery()
    if dialect == "postgresql":
        v = present.c.v
        return select(
            present.c.grp,
            func.count().label("count"),
            func.avg(v).label("mean"),
            func.percentile_disc(0.5).within_group(v).label("p50"),
            func.percentile_disc(0.9).within_group(v).label("p90"),
        ).group_by(present.c.grp)
    ranked = select(
        present.c.grp,
        present.c.v,
        func.row_number().over(partition_by=present.c.grp, order_by=present.c.v).label("rn"),
        func.count().over(partition_by=present.c.grp).label("n"),
    ).subquery()
    return select(
        ranked.c.grp,
        func.count().label("count"),
        func.avg(ranked.c.v).label("mean"),
        func.max(case((ranked.c.rn == (ranked.c.n * 50 + 99) // 100, ranked.c.v))).label("p50"),
        func.max(case((ranked.c.rn == (ranked.c.n * 90 + 99) // 100, ranked.c.v))).label("p90"),
    ).group_by(ranked.c.grp)


async def tuned(session: AsyncSession, scope: Scope) -> None:
    """PostgreSQL settings for this transaction's report: no JIT (it spends longer compiling
    a report's aggregates than running them, about a third of a second on a year of a busy
    clinic), memory enough to sort a year's durations for their percentiles without spilling
    to disk, and a time limit."""
    if scope.dialect == "postgresql":
        await session.execute(
            text(
                "SELECT set_config('jit', 'off', true), set_config('work_mem', :memory, true),"
                " set_config('statement_timeout', :timeout, true)"
            ),
            {"memory": REPORT_WORK_MEM, "timeout": REPORT_TIMEOUT},
        )


def durations(row: Any | None) -> dict[str, Any]:
    """A `distribution` row as the API shows it (seconds, one decimal)."""
    if row is None:
        return {"count": 0, "mean_seconds": None, "p50_seconds": None, "p90_seconds": None}
    return {
        "count": row.count,
        "mean_seconds": _round(row.mean),
        "p50_seconds": _round(row.p50),
        "p90_seconds": _round(row.p90),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
