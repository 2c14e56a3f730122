"""Dates and times as Brazilian patients write them ("amanhã às 14h", "sexta de manhã").

`parse_when` finds the day and the time of day in free text and returns the window the
patient means, in clinic-local time. Plain dateparser misreads most of this phrasing ("14h" is
a 14-hour duration to it; it knows no "que vem", "depois de amanhã", "e meia", "da tarde"), so
a pt-BR layer normalises the text and recognises the relative phrasing itself, and hands only
calendar dates ("1º de abril", "12/03") to dateparser.

Conventions (the clinic's reading of ambiguous phrasing):
- an exact time is a window with start == end; a day is 00:00 to 23:59; manhã 06 to 12,
  tarde 12 to 18, noite 18 to 23; "semana que vem" is Monday to Sunday of next week;
- always the next occurrence after `now`: a weekday is the next day with that name after today
  ("hoje" names today), a bare time is today if still ahead else tomorrow, a past day of the
  month rolls to the next month and a past date to the next year;
- "que vem" and "próxima" add nothing to a weekday: on a Wednesday, "sexta", "sexta que vem"
  and "próxima sexta" are all the Friday two days later; "sexta da semana que vem" is the
  Friday of next week (the bot always shows the date it understood, so the patient can
  correct it);
- a day the patient named that is today ("hoje", "dia 5" on the 5th) keeps today even when
  the time given has passed ("hoje às 9h" at 16h): moving it to tomorrow silently would book a
  day the patient did not ask for, so the caller tells the patient the time has passed.
- a bare hour from 1 to 6 with no "da manhã" is afternoon ("às 3" is 15h): the clinic does not
  open before 7.
- a window of hours is that window: "das 9 às 11", "entre 9 e 11", "de 9 a 11h", "9-11h";
- everyday anchors: "hora do almoço" 12 to 14, "depois do almoço" 13 to 18, "antes do almoço"
  the morning, "início da tarde" 12 to 15, "fim da tarde" 15 to 18, "fim da manhã" 10 to 12,
  "depois do trabalho" 18 to 23, "horário comercial" 8 to 18;
- parts of a month: início 1 to 10, meados 11 to 20, fim 21 to the last day; weeks of a
  month: days 1 to 7, 8 to 14, 15 to 21, 22 to 28, and the last seven ("última semana");
  "do mês" is this month, a named month the next one with that name; from today on, and a
  span already past ("começo do mês" on the 25th) is unclear: None, so the bot asks instead
  of guessing the next month;
- dates with dots ("21.04", "21.04.2025") are dates; "às 9.30" is a time;
- "não essa sexta, a próxima" / "sexta não, a outra" is the Friday after the next one.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dateparser

from core.settings import CLINIC_TIMEZONE

TZ = ZoneInfo(CLINIC_TIMEZONE)


@dataclass(frozen=True)
class TimeWindow:
    """A span of clinic-local time (aware datetimes in America/Sao_Paulo); an exact time
    has start == end."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeWindow needs timezone-aware datetimes")
        if self.end < self.start:
            raise ValueError("TimeWindow ends before it starts")

    @property
    def is_exact(self) -> bool:
        return self.start == self.end


DAY_START, DAY_END = time(0, 0), time(23, 59)
PARTS = {"manha": (time(6), time(12)), "tarde": (time(12), time(18)), "noite": (time(18), time(23))}
WEEKDAYS = {
    "segunda": 0,
    "seg": 0,
    "terca": 1,
    "quarta": 2,
    "qua": 2,
    "quinta": 3,
    "qui": 3,
    "sexta": 4,
    "sex": 4,
    "sabado": 5,
    "sab": 5,
    "domingo": 6,
    "dom": 6,
}
_ORDINAL_WEEKDAYS = {"2": "segunda", "3": "terca", "4": "quarta", "5": "quinta", "6": "sexta"}
MONTHS = (
    "janeiro|fevereiro|marco|abril|maio|junho|julho|agosto|setembro|outubro|novembro|dezembro"
    "|jan|fev|mar|abr|mai|jun|jul|ago|set|out|nov|dez"
)
_UNITS = {
    "um": 1,
    "uma": 1,
    "dois": 2,
    "duas": 2,
    "tres": 3,
    "quatro": 4,
    "cinco": 5,
    "seis": 6,
    "sete": 7,
    "oito": 8,
    "nove": 9,
}
_NUMBER_WORDS = {
    **_UNITS,
    "dez": 10,
    "onze": 11,
    "doze": 12,
    "treze": 13,
    "catorze": 14,
    "quatorze": 14,
    "quinze": 15,
    "dezesseis": 16,
    "dezessete": 17,
    "dezoito": 18,
    "dezenove": 19,
    "vinte": 20,
    "trinta": 30,
}
# WhatsApp spellings, applied to accent-free lower-case text.
_SPELLINGS = [
    (r"\bhj\b", "hoje"),
    (r"\b(?:amnh|amnha|amanh|amanah|manha de amanha)\b", "amanha"),
    (r"\b(?:dps|dpois|dpos)\b", "depois"),
    (r"\bq\b", "que"),
    (r"\b(?:prox|prx|proximo|proxim)\b", "proxima"),
    (r"\bfds\b", "fim de semana"),
    (r"\bmeio[\s-]*dia\b", "meio dia"),
    (r"\b(?:boa tarde|boa noite|bom dia|mais tarde|tarde demais)\b", " "),
    (r"\bsegunda (?:vez|opcao|via|feira da outra)\b", " "),
    (r"[-\s]*feira\b", ""),
    (r"\b(\d{1,2})o\b", r"\1"),  # 1º (º decomposes to "o")
    (r"\bprimeiro(?= de\b)|(?<=\bdia )primeiro\b", "1"),
]


# "21.04" and "21.04.2025" are dates; a time after "às" ("às 9.30") is not.
_DOTTED_DATE = re.compile(
    r"(?<!\d)(?<!as )(?<!das )(?<!ate )(\d{1,2})\.(0?[1-9]|1[0-2])(?:\.(\d{4}|\d{2}))?(?!\.?\d)"
)


def _normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = re.sub(r"\b((?:as|das|ate) \d{1,2})\.(\d{2})\b", r"\1:\2", plain)
    plain = _DOTTED_DATE.sub(lambda m: "/".join(g for g in m.groups() if g), plain)
    plain = re.sub(r"[^\w:/\s-]", " ", plain)
    plain = re.sub(r"\b([2-6])a(?=[\s-]*feira\b)", lambda m: _ORDINAL_WEEKDAYS[m.group(1)], plain)
    for pattern, replacement in _SPELLINGS:
        plain = re.sub(pattern, replacement, plain)
    units = "|".join(_UNITS)
    plain = re.sub(
        rf"\b(vinte|trinta) e ({units})\b",
        lambda m: str(_NUMBER_WORDS[m.group(1)] + _NUMBER_WORDS[m.group(2)]),
        plain,
    )
    words = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
    plain = re.sub(rf"\b({words})\b", lambda m: str(_NUMBER_WORDS[m.group(1)]), plain)
    return " ".join(plain.split())


@dataclass(frozen=True)
class _Days:
    first: date
    last: date


def _remove(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " + text[match.end() :]


def _add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _calendar_date(fragment: str, today: date, has_year: bool) -> date | None:
    """A day-month(-year) fragment read by dateparser, moved to the next year when past."""
    parsed = dateparser.parse(
        fragment,
        languages=["pt"],
        settings={
            "DATE_ORDER": "DMY",
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": datetime.combine(today, time(12)),
            "REQUIRE_PARTS": ["day", "month"],
        },
    )
    if parsed is None:
        return None
    day: date = parsed.date()
    if not has_year and day < today:
        try:
            day = day.replace(year=day.year + 1)
        except ValueError:  # 29 February
            return None
    return day


def _day_of_month(number: int, today: date) -> date | None:
    """The next day numbered `number`: this month if not past, else the next month that has it."""
    if not 1 <= number <= 31:
        return None
    month_start = today.replace(day=1)
    for months_ahead in range(3):
        first = _add_months(month_start, months_ahead)
        if number <= calendar.monthrange(first.year, first.month)[1]:
            candidate = first.replace(day=number)
            if candidate >= today:
                return candidate
    return None


def _next_weekday(today: date, weekday: int) -> date:
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


_NUMERIC_DATE = re.compile(r"\b(?:dia\s+)?(\d{1,2})/(\d{1,2})(?:/(\d{2}|\d{4}))?\b")
_MONTH_DATE = re.compile(
    rf"\b(?:dia\s+)?(\d{{1,2}})\s+(?:de\s+)?({MONTHS})\b(?:\s+(?:de\s+)?(\d{{4}})\b)?"
)
# "de 10 a 15 de abril", "entre os dias 10 e 15 de abril": a span of days.
_DATE_SPAN = re.compile(
    rf"\b(?:de|do\s+dia|dos\s+dias|entre\s+(?:os\s+dias\s+)?(?:o\s+dia\s+)?)\s*(\d{{1,2}})\s+"
    rf"(?:a|ao|ate|e)\s+(?:o\s+|dia\s+)?(\d{{1,2}})\s+(?:de\s+)?({MONTHS})\b"
)
_DAY_OF_MONTH = re.compile(r"\bdia\s+(\d{1,2})\b")
_RELATIVE_DAYS = re.compile(
    r"\b(?:daqui\s+(?:a\s+)?|em\s+|dentro\s+de\s+)(\d{1,2})\s+(dias?|semanas?|mes|meses)\b"
)
_NEXT_WEEK = re.compile(
    r"\b(?:(?:na\s+)?semana\s+que\s+vem|proxima\s+semana|semana\s+seguinte|outra\s+semana)\b"
)
_THIS_WEEK = re.compile(r"\b(?:n?essa|n?esta)\s+semana\b")
_WEEKEND = re.compile(r"\b(?:fim|final)\s+de\s+semana\b")
_NEXT_MONTH = re.compile(r"\b(?:mes\s+que\s+vem|proxima\s+mes)\b")
_WEEKDAY = re.compile(rf"\b({'|'.join(WEEKDAYS)})\b")
_WEEKDAY_NAMES = "|".join(WEEKDAYS)
# "não essa sexta, a próxima", "sexta não, a outra": the one after the next.
_AFTER_NEXT = re.compile(
    rf"\b(?:nao|sem\s+ser)\s+(?:n?essa|n?esta|a|na)?\s*(?P<a>{_WEEKDAY_NAMES})\s+(?:e\s+)?"
    rf"(?:a|na)\s+(?:proxima|outra|seguinte)\b"
    rf"|\b(?:n?essa\s+|n?esta\s+)?(?P<b>{_WEEKDAY_NAMES})\s+nao\s+(?:e\s+)?"
    rf"(?:a|na)\s+(?:proxima|outra|seguinte)\b"
)
# Which month a part of a month or a week of a month is in.
_MONTH_REF = (
    rf"(?:(?:de|em)\s+(?P<month>{MONTHS})\b"
    r"|d[oe]\s+(?P<next>mes\s+que\s+vem|proxima\s+mes)\b"
    r"|(?:d?o|d?e[s]{1,2}e|d?este)\s+(?P<this>mes)\b)"
)
# Parts of a month: início 1 to 10, meados 11 to 20, fim 21 to the last day.
_MONTH_PART = re.compile(
    rf"\b(?P<part>comeco|inicio|meados|meio|metade|fim|final|finalzinho)\s+{_MONTH_REF}"
)
_PART_DAYS = {"comeco": (1, 10), "inicio": (1, 10), "meados": (11, 20), "meio": (11, 20)}
_PART_DAYS["metade"] = _PART_DAYS["meados"]
# Weeks of a month: the first seven days, the next seven..., the last seven.
_MONTH_WEEK = re.compile(
    rf"\b(?P<week>primeira|segunda|terceira|quarta|ultima)\s+semana\s+{_MONTH_REF}"
)
_WEEK_DAYS = {"primeira": (1, 7), "segunda": (8, 14), "terceira": (15, 21), "quarta": (22, 28)}


class _Unclear(ValueError):
    """The text names a time the clinic cannot place (a part of this month already past)."""


def _referred_month(match: re.Match[str], today: date) -> date:
    """The first day of the month a part of a month refers to: a named month is the next one
    with that name (this one included)."""
    this_month = today.replace(day=1)
    if match.group("next"):
        return _add_months(this_month, 1)
    if match.group("month"):
        number = _month_number(match.group("month"))
        return _add_months(this_month, (number - today.month) % 12)
    return this_month


def _month_number(name: str) -> int:
    names = MONTHS.split("|")
    return names.index(name) % 12 + 1


def _days_of_month(
    match: re.Match[str], today: date, first_day: int, last_day: int | None
) -> _Days:
    """Days `first_day` to `last_day` (None: the month's last) of the referred month, from
    today on; a span already past is unclear (the patient may mean another month)."""
    month = _referred_month(match, today)
    month_end = calendar.monthrange(month.year, month.month)[1]
    first = month.replace(day=first_day)
    last = month.replace(day=min(last_day or month_end, month_end))
    if last < today:
        raise _Unclear(match.group(0))
    return _Days(max(first, today), last)


def _month_span(text: str, today: date) -> tuple[_Days, re.Match[str]] | None:
    if match := _MONTH_PART.search(text):
        first_day, last_day = _PART_DAYS.get(match.group("part"), (21, None))
        return _days_of_month(match, today, first_day, last_day), match
    if match := _MONTH_WEEK.search(text):
        week = match.group("week")
        if week == "ultima":
            month = _referred_month(match, today)
            month_end = calendar.monthrange(month.year, month.month)[1]
            return _days_of_month(match, today, month_end - 6, None), match
        first_day, last_day = _WEEK_DAYS[week]
        return _days_of_month(match, today, first_day, last_day), match
    return None


def _find_days(text: str, today: date) -> tuple[_Days | None, str]:
    """The day (or span of days) the text names, and the text without it."""
    if match := _NUMERIC_DATE.search(text):
        fragment = "/".join(g for g in match.groups() if g)
        day = _calendar_date(fragment, today, has_year=match.group(3) is not None)
        if day is not None:
            return _Days(day, day), _remove(text, match)
    if match := _DATE_SPAN.search(text):
        first_day, last_day, month = int(match.group(1)), int(match.group(2)), match.group(3)
        last = _calendar_date(f"{last_day} de {month}", today, has_year=False)
        if last is not None and first_day < last.day:
            return _Days(max(last.replace(day=first_day), today), last), _remove(text, match)
    if match := _MONTH_DATE.search(text):
        fragment = " de ".join(g for g in match.groups() if g)
        day = _calendar_date(fragment, today, has_year=match.group(3) is not None)
        if day is not None:
            return _Days(day, day), _remove(text, match)
    if match := _DAY_OF_MONTH.search(text):
        day = _day_of_month(int(match.group(1)), today)
        if day is not None:
            return _Days(day, day), _remove(text, match)
    if span := _month_span(text, today):
        days, match = span
        return days, _remove(text, match)
    if match := _RELATIVE_DAYS.search(text):
        count, unit = int(match.group(1)), match.group(2)
        if unit.startswith("mes"):
            day = _add_months(today, count)
        else:
            day = today + timedelta(days=count * (7 if unit.startswith("semana") else 1))
        return _Days(day, day), _remove(text, match)
    for pattern, offset in ((r"\bdepois\s+de\s+amanha\b", 2), (r"\bamanha\b", 1), (r"\bhoje\b", 0)):
        if match := re.search(pattern, text):
            day = today + timedelta(days=offset)
            return _Days(day, day), _remove(text, match)
    if match := _AFTER_NEXT.search(text):
        day = _next_weekday(today, WEEKDAYS[match.group("a") or match.group("b")]) + timedelta(7)
        return _Days(day, day), _remove(text, match)
    next_week = _NEXT_WEEK.search(text)
    if match := _WEEKDAY.search(text):
        weekday = WEEKDAYS[match.group(1)]
        if next_week is not None:
            day = _monday(today) + timedelta(days=7 + weekday)
        else:
            day = _next_weekday(today, weekday)
        return _Days(day, day), _remove(text, match)
    if next_week is not None:
        monday = _monday(today) + timedelta(days=7)
        return _Days(monday, monday + timedelta(days=6)), _remove(text, next_week)
    if match := _THIS_WEEK.search(text):
        return _Days(today, _monday(today) + timedelta(days=6)), _remove(text, match)
    if match := _WEEKEND.search(text):
        saturday = today if today.weekday() >= 5 else _next_weekday(today, 5)
        sunday = _next_weekday(today, 6) if today.weekday() != 6 else today
        return _Days(saturday, sunday), _remove(text, match)
    if match := _NEXT_MONTH.search(text):
        first = _add_months(today.replace(day=1), 1)
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        return _Days(first, last), _remove(text, match)
    return None, text


_RELATIVE_TIME = re.compile(
    r"\b(?:daqui\s+(?:a\s+)?|em\s+|dentro\s+de\s+)(\d{1,3})\s+(horas?|minutos?|min)\b"
)
_LEAD = (
    r"(?P<lead>\b(?:depois\s+das|a\s+partir\s+das|apos\s+as|antes\s+das|ate\s+as|ate"
    r"|por\s+volta\s+das|la\s+pelas|pelas|umas|das|as|a)\s+)?"
)
_CLOCK = re.compile(
    _LEAD
    + r"""(?:
        (?P<noon>\bmeio\s+dia\b)
      | \b(?P<h>\d{1,2})
        (?: \s*:\s*(?P<m>\d{2})(?:\s*(?:h|hs|hrs?)\b)?
          | \s*(?P<unit>h|hs|hrs?|horas?)(?:(?P<m2>\d{2})\b|\b)
          | (?!\s*[/:]|\d|\s*(?:anos?|meses|dias?|semanas?)\b)
        )
    )
    (?:\s+e\s+(?:(?P<half>meia)\b|(?P<mm>\d{1,2})\b(?:\s*min(?:utos)?\b)?))?
    (?:\s+(?:da|de|a)\s+(?P<period>manha|tarde|noite)\b)?""",
    re.VERBOSE,
)
_RANGE_WORDS = re.compile(r"^\s*(?:e|as|a|ate|ate\s+as)\s*$")
_HOUR = (
    r"(?P<h{n}>\d{{1,2}})(?:\s*(?::|h)\s*(?P<m{n}>\d{{2}}))?"
    r"(?P<u{n}>\s*(?:hs|hrs?|horas?|h)\b)?"
)
# "das 9 às 11", "entre 9 e 11", "de 9 a 11h", "9-11h", "9h às 11h": a window of hours.
_HOUR_RANGE = re.compile(
    r"(?:\b(?P<lead>entre|das|de|da)\s+)?(?<![\d/])"
    + _HOUR.format(n=1)
    + r"\s*(?P<to>-|ate\s+as|ate|as|a|e)\s*"
    + _HOUR.format(n=2)
    + r"(?!\s*(?:/|e\s+meia|e\s+\d|min|anos?|dias?|mes|meses|semanas?|de\s+(?:"
    + MONTHS
    + r")\b))(?:\s+(?:da|de|a)\s+(?P<period>manha|tarde|noite)\b)?"
)
# Everyday anchors for a time of day.
_ANCHORS = [
    (re.compile(r"\b(?:hora|horario)\s+d[oe]\s+almoco\b|\bn[oa]\s+almoco\b"), (time(12), time(14))),
    (re.compile(r"\b(?:depois|apos|logo\s+apos)\s+d?o\s+almoco\b"), (time(13), time(18))),
    (re.compile(r"\bantes\s+d?o\s+almoco\b"), (time(6), time(12))),
    (re.compile(r"\b(?:comeco|inicio)\s+da\s+manha\b"), (time(6), time(9))),
    (re.compile(r"\b(?:fim|final|finalzinho)\s+da\s+manha\b"), (time(10), time(12))),
    (re.compile(r"\b(?:comeco|inicio)\s+da\s+tarde\b"), (time(12), time(15))),
    (re.compile(r"\b(?:fim|final|finalzinho)\s+da\s+tarde\b"), (time(15), time(18))),
    (
        re.compile(r"\b(?:depois|apos|saindo)\s+d[oe]\s+(?:trabalho|servico|expediente)\b"),
        (time(18), time(23)),
    ),
    (re.compile(r"\bhorario\s+comercial\b"), (time(8), time(18))),
]
_PART = re.compile(r"\b(manha|manhazinha|cedo|cedinho|tarde|noite)\b")


@dataclass(frozen=True)
class _Clock:
    at: time
    lead: str
    hour_at: int  # where the hour itself starts, after any lead ("das 14 às 16")
    end: int


def _clock(match: re.Match[str]) -> _Clock | None:
    lead = " ".join((match.group("lead") or "").split())
    if match.group("noon"):
        hour, minute = 12, 0
    else:
        explicit = match.group("m") or match.group("unit")
        if not (explicit or lead or match.group("half") or match.group("period")):
            return None  # a bare number ("2 consultas") is no time
        hour = int(match.group("h"))
        minute = int(match.group("m") or match.group("m2") or match.group("mm") or 0)
        period = match.group("period")
        afternoon = period in ("tarde", "noite") and hour < 12
        # "às 3" in a clinic means 15h; "03h" written with a zero is kept as written.
        unmarked_early = period is None and 1 <= hour <= 6 and not match.group("h").startswith("0")
        if afternoon or unmarked_early:
            hour += 12
    if match.group("half"):
        minute = 30
    if hour > 23 or minute > 59:
        return None
    hour_at = match.start("noon") if match.group("noon") else match.start("h")
    return _Clock(time(hour, minute), lead, hour_at, match.end())


def _find_clocks(text: str) -> list[_Clock]:
    return [c for m in _CLOCK.finditer(text) if (c := _clock(m)) is not None]


def _part(text: str) -> str | None:
    match = _PART.search(text)
    if match is None:
        return None
    word = match.group(1)
    return "manha" if word.startswith(("manha", "cedo", "cedinho")) else word


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=TZ)


def _range_end(match: re.Match[str], n: int, period: str | None) -> time | None:
    hour, minute = int(match.group(f"h{n}")), int(match.group(f"m{n}") or 0)
    afternoon = period in ("tarde", "noite") and hour < 12
    # As for one time: "das 2 às 4" in a clinic is in the afternoon.
    unmarked_early = period is None and 1 <= hour <= 6 and not match.group(f"h{n}").startswith("0")
    if afternoon or unmarked_early:
        hour += 12
    return time(hour, minute) if hour <= 23 and minute <= 59 else None


def _hour_range(text: str) -> tuple[time, time] | None:
    for match in _HOUR_RANGE.finditer(text):
        # Without "das"/"entre", two bare numbers need an hour mark ("9-11h", "9h às 11").
        lead, unit = match.group("lead"), match.group("u1") or match.group("u2")
        marked = lead or unit
        loose = match.group("to") in ("e", "a") and not lead
        if not marked or loose:
            continue
        period = match.group("period")
        first, second = _range_end(match, 1, period), _range_end(match, 2, period)
        if first is not None and second is not None and first < second:
            return first, second
    return None


def _hours_window(text: str) -> tuple[time, time] | None:
    """The time span the text names on a day: an exact time, a range, "depois das 15h", a
    part of the day; None when it names none."""
    if hours := _hour_range(text):
        return hours
    clocks = _find_clocks(text)
    if len(clocks) >= 2 and _RANGE_WORDS.match(text[clocks[0].end : clocks[1].hour_at]):
        first, second = clocks[0].at, clocks[1].at
        if second > first:
            return first, second
    if clocks:
        clock = clocks[0]
        if clock.lead in ("depois das", "a partir das", "apos as"):
            return clock.at, max(clock.at, PARTS["noite"][1])
        if clock.lead in ("antes das", "ate as", "ate"):
            return min(clock.at, PARTS["manha"][0]), clock.at
        return clock.at, clock.at
    for anchor, hours in _ANCHORS:
        if anchor.search(text):
            return hours
    part = _part(text)
    return PARTS[part] if part else None


def parse_when(text: str, now: datetime) -> TimeWindow | None:
    """The time window a patient's free text names, the next such window after `now` (a
    time on a day named explicitly stays on that day, even if past: see the module's
    conventions); None when the text holds no date or time."""
    if now.tzinfo is None:
        raise ValueError("parse_when needs an aware `now`")
    now = now.astimezone(TZ)
    today = now.date()
    normalized = _normalize(text)
    if match := _RELATIVE_TIME.search(normalized):
        count, unit = int(match.group(1)), match.group(2)
        delta = timedelta(hours=count) if unit.startswith("hora") else timedelta(minutes=count)
        moment = (now + delta).replace(second=0, microsecond=0)
        return TimeWindow(moment, moment)
    try:
        days, rest = _find_days(normalized, today)
    except _Unclear:
        return None  # the bot asks again rather than guess

    hours = _hours_window(rest)
    if days is None:
        if hours is None:
            return None
        start, end = _at(today, hours[0]), _at(today, hours[1])
        if end <= now:
            start, end = start + timedelta(days=1), end + timedelta(days=1)
        return TimeWindow(start, end)
    if days.first != days.last or hours is None:
        # A span of days keeps its whole days: "de manhã na semana que vem" is no one window.
        return TimeWindow(_at(days.first, DAY_START), _at(days.last, DAY_END))
    return TimeWindow(_at(days.first, hours[0]), _at(days.first, hours[1]))
