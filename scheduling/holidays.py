"""Days the demo clinic (São Paulo capital) is closed: national holidays, the usual pontos
facultativos clinics close on (Carnaval, Corpus Christi), and the state and city holidays."""

from __future__ import annotations

from datetime import date, timedelta

FIXED = [
    ((1, 1), "Confraternização Universal"),
    ((1, 25), "Aniversário de São Paulo"),
    ((4, 21), "Tiradentes"),
    ((5, 1), "Dia do Trabalho"),
    ((7, 9), "Revolução Constitucionalista"),
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


def clinic_holidays(year: int) -> list[tuple[date, str]]:
    sunday = easter(year)
    days = [(date(year, month, day), name) for (month, day), name in FIXED]
    days += [(sunday + timedelta(days=offset), name) for offset, name in MOVABLE]
    return sorted(days)
