"""Days the clinic is closed by rule, computed for any year: Brazil's national holidays and
the pontos facultativos clinics close on (Carnaval, Corpus Christi), whose dates follow Easter.

The agenda applies these on its own (`scheduling.agenda`), so they never run out. Holidays of
the clinic's state and city differ from place to place: they are stored as clinic-wide
schedule exceptions, which the admin adds in the app (`scheduling.setup.add_holiday`; the demo
clinic seeds São Paulo's, `SAO_PAULO`).
"""

from __future__ import annotations

from datetime import date, timedelta

NATIONAL = [
    ((1, 1), "Confraternização Universal"),
    ((4, 21), "Tiradentes"),
    ((5, 1), "Dia do Trabalho"),
    ((9, 7), "Independência do Brasil"),
    ((10, 12), "Nossa Senhora Aparecida"),
    ((11, 2), "Finados"),
    ((11, 15), "Proclamação da República"),
    ((11, 20), "Dia Nacional de Zumbi e da Consciência Negra"),
    ((12, 25), "Natal"),
]
# Days relative to Easter Sunday.
MOVABLE = [
    (-48, "Carnaval"),
    (-47, "Carnaval"),
    (-2, "Sexta-feira Santa"),
    (60, "Corpus Christi"),
]
# The demo clinic's city (São Paulo capital) and state.
SAO_PAULO = [
    ((1, 25), "Aniversário de São Paulo"),
    ((7, 9), "Revolução Constitucionalista"),
]


def easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm, a.k.a. Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def national_holidays(year: int) -> list[tuple[date, str]]:
    """The days every clinic closes in `year`, earliest first."""
    sunday = easter(year)
    days = [(date(year, month, day), name) for (month, day), name in NATIONAL]
    days += [(sunday + timedelta(days=offset), name) for offset, name in MOVABLE]
    return sorted(days)


def local_holidays(year: int) -> list[tuple[date, str]]:
    """The demo clinic's state and city holidays in `year`."""
    return [(date(year, month, day), name) for (month, day), name in SAO_PAULO]
