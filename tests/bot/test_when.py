"""`parse_when` reads dates and times the way Brazilian patients write them."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from scheduling.when import TimeWindow, parse_when

SP = ZoneInfo("America/Sao_Paulo")
# Wednesday 5 March 2025, 10:00 in São Paulo.
NOW = datetime(2025, 3, 5, 10, 0, tzinfo=SP)


def at(day: str, clock: str = "00:00") -> datetime:
    """`day` as "DD/MM[/YYYY]" (year 2025 by default) and `clock` as "HH:MM", in São Paulo."""
    parts = [int(p) for p in day.split("/")]
    year = parts[2] if len(parts) == 3 else 2025
    hour, minute = (int(p) for p in clock.split(":"))
    return datetime(year, parts[1], parts[0], hour, minute, tzinfo=SP)


def exact(day: str, clock: str) -> tuple[datetime, datetime]:
    return at(day, clock), at(day, clock)


def whole_day(day: str) -> tuple[datetime, datetime]:
    return at(day), at(day, "23:59")


def between(day: str, start: str, end: str, last_day: str | None = None) -> tuple:
    return at(day, start), at(last_day or day, end)


TABLE = [
    # An exact time: start == end.
    ("amanhã às 14h", exact("06/03", "14:00")),
    ("amanha 14h", exact("06/03", "14:00")),
    ("amanha as 14hs", exact("06/03", "14:00")),
    ("amnh as 9", exact("06/03", "09:00")),
    ("dia 20 às 9 e meia", exact("20/03", "09:30")),
    ("2 da tarde", exact("05/03", "14:00")),
    ("às duas da tarde", exact("05/03", "14:00")),
    ("às 3", exact("05/03", "15:00")),
    ("as dez e meia", exact("05/03", "10:30")),
    ("9 da noite", exact("05/03", "21:00")),
    ("meio-dia", exact("05/03", "12:00")),
    ("meio dia e meia", exact("05/03", "12:30")),
    ("15h", exact("05/03", "15:00")),
    ("14h30", exact("05/03", "14:30")),
    ("14 horas", exact("05/03", "14:00")),
    ("às 16hrs", exact("05/03", "16:00")),
    ("8:30", exact("06/03", "08:30")),
    ("as 8", exact("06/03", "08:00")),
    ("hj 17h", exact("05/03", "17:00")),
    ("depois de amanha as 15:30", exact("07/03", "15:30")),
    ("12/03 às 9h", exact("12/03", "09:00")),
    ("15 de abril às 16h", exact("15/04", "16:00")),
    ("sexta 10:30", exact("07/03", "10:30")),
    ("seg 8h", exact("10/03", "08:00")),
    ("terça às 11", exact("11/03", "11:00")),
    ("6a feira as 16", exact("07/03", "16:00")),
    ("segunda-feira às 8 da manhã", exact("10/03", "08:00")),
    ("as 10 da manha de sexta", exact("07/03", "10:00")),
    ("pode ser quinta 15h?", exact("06/03", "15:00")),
    ("daqui a 2 horas", exact("05/03", "12:00")),
    ("daqui a 30 minutos", exact("05/03", "10:30")),
    # Found inside a whole sentence.
    ("quero marcar amanhã às 10h com a dra ana", exact("06/03", "10:00")),
    (
        "boa tarde, tem horário pra sexta de manhã com o cardiologista?",
        between("07/03", "06:00", "12:00"),
    ),
    ("Oi! Queria ver se tem vaga dia 20 às 14h pra dermato", exact("20/03", "14:00")),
    ("consigo remarcar pra terça que vem à tarde?", between("11/03", "12:00", "18:00")),
    ("tem vaga pra sexta?", whole_day("07/03")),
    # A day: that day's window.
    ("quinta-feira", whole_day("06/03")),
    ("5a feira", whole_day("06/03")),
    ("1º de abril", whole_day("01/04")),
    ("primeiro de maio", whole_day("01/05")),
    ("dia primeiro", whole_day("01/04")),
    ("daqui a duas semanas", whole_day("19/03")),
    ("daqui 15 dias", whole_day("20/03")),
    ("em 10 dias", whole_day("15/03")),
    ("depois de amanhã", whole_day("07/03")),
    ("próxima segunda", whole_day("10/03")),
    ("segunda que vem", whole_day("10/03")),
    # "que vem" on a weekday is the next day with that name (NOW is a Wednesday).
    ("sexta-feira que vem", whole_day("07/03")),
    ("próxima sexta", whole_day("07/03")),
    ("sexta da semana que vem", whole_day("14/03")),
    ("quinta da semana que vem", whole_day("13/03")),
    ("na quarta", whole_day("12/03")),
    ("no sábado", whole_day("08/03")),
    ("12/03", whole_day("12/03")),
    ("dia 11/03", whole_day("11/03")),
    ("1/4", whole_day("01/04")),
    ("11/03/2026", whole_day("11/03/2026")),
    ("25 de dezembro", whole_day("25/12")),
    ("dia vinte e cinco", whole_day("25/03")),
    ("qualquer horário amanhã", whole_day("06/03")),
    # The next occurrence: past days of the month and past dates roll forward.
    ("dia 3", whole_day("03/04")),
    ("2 de janeiro", whole_day("02/01/2026")),
    ("dia 31", whole_day("31/03")),
    # A part of the day: manhã 06–12, tarde 12–18, noite 18–23.
    ("sexta de manhã", between("07/03", "06:00", "12:00")),
    ("amanhã cedo", between("06/03", "06:00", "12:00")),
    ("amanha de manha", between("06/03", "06:00", "12:00")),
    ("hoje à tarde", between("05/03", "12:00", "18:00")),
    ("de tarde", between("05/03", "12:00", "18:00")),
    ("hoje a noite", between("05/03", "18:00", "23:00")),
    ("sabado de manha", between("08/03", "06:00", "12:00")),
    ("dia 7 de manha", between("07/03", "06:00", "12:00")),
    # Ranges and limits of time.
    ("entre 14h e 16h", between("05/03", "14:00", "16:00")),
    ("das 2 às 4 da tarde", between("05/03", "14:00", "16:00")),
    ("depois das 15h", between("05/03", "15:00", "23:00")),
    ("a partir das 14h", between("05/03", "14:00", "23:00")),
    ("antes das 10h", between("06/03", "06:00", "10:00")),
    # A window of hours on a day.
    ("das 9 às 11", between("05/03", "09:00", "11:00")),
    ("amanhã das 9 às 11", between("06/03", "09:00", "11:00")),
    ("sexta das 14h às 16h", between("07/03", "14:00", "16:00")),
    ("entre 9 e 11", between("05/03", "09:00", "11:00")),
    ("de 9 a 11", between("05/03", "09:00", "11:00")),
    ("das 9 até as 11h", between("05/03", "09:00", "11:00")),
    ("9-11h", between("05/03", "09:00", "11:00")),
    ("dia 10 das 14 às 15:30", between("10/03", "14:00", "15:30")),
    ("amanhã entre 8 e 10 da manhã", between("06/03", "08:00", "10:00")),
    # Everyday anchors for a time of day.
    ("na hora do almoço", between("05/03", "12:00", "14:00")),
    ("sexta na hora do almoço", between("07/03", "12:00", "14:00")),
    ("amanhã depois do almoço", between("06/03", "13:00", "18:00")),
    ("antes do almoço", between("05/03", "06:00", "12:00")),
    ("no fim da tarde", between("05/03", "15:00", "18:00")),
    ("segunda no comecinho da manhã", between("10/03", "06:00", "12:00")),
    ("quinta no início da tarde", between("06/03", "12:00", "15:00")),
    ("depois do trabalho", between("05/03", "18:00", "23:00")),
    # Dates with dots, and without a year.
    ("21.04", whole_day("21/04")),
    ("dia 21.04 às 10h", exact("21/04", "10:00")),
    ("21.04.2026", whole_day("21/04/2026")),
    ("02.01", whole_day("02/01/2026")),
    ("às 9.30", exact("06/03", "09:30")),
    # "Not this one, the next one": the weekday after the next.
    ("não essa sexta, a próxima", whole_day("14/03")),
    ("sexta não, a outra", whole_day("14/03")),
    ("nessa quinta não, na seguinte", whole_day("13/03")),
    ("sem ser essa segunda, a outra", whole_day("17/03")),
    # Parts of a month (início 1–10, meados 11–20, fim 21–last) and weeks of a month
    # (days 1–7, 8–14, 15–21, 22–28; the last seven), from today on.
    ("meados de maio", between("11/05", "00:00", "23:59", last_day="20/05")),
    ("começo de abril", between("01/04", "00:00", "23:59", last_day="10/04")),
    ("fim do mês", between("21/03", "00:00", "23:59", last_day="31/03")),
    ("início do mês", between("05/03", "00:00", "23:59", last_day="10/03")),
    ("final do mês que vem", between("21/04", "00:00", "23:59", last_day="30/04")),
    ("meados do próximo mês", between("11/04", "00:00", "23:59", last_day="20/04")),
    ("última semana do mês", between("25/03", "00:00", "23:59", last_day="31/03")),
    ("primeira semana de abril", between("01/04", "00:00", "23:59", last_day="07/04")),
    ("segunda semana de maio", between("08/05", "00:00", "23:59", last_day="14/05")),
    ("última semana de fevereiro", between("22/02/2026", "00:00", "23:59", last_day="28/02/2026")),
    ("primeira semana do mês", between("05/03", "00:00", "23:59", last_day="07/03")),
    ("de 10 a 15 de abril", between("10/04", "00:00", "23:59", last_day="15/04")),
    # Spans of days.
    ("semana que vem", between("10/03", "00:00", "23:59", last_day="16/03")),
    ("próxima semana", between("10/03", "00:00", "23:59", last_day="16/03")),
    ("essa semana", between("05/03", "00:00", "23:59", last_day="09/03")),
    ("fim de semana", between("08/03", "00:00", "23:59", last_day="09/03")),
    ("mês que vem", between("01/04", "00:00", "23:59", last_day="30/04")),
    # No date or time at all.
    ("oi tudo bem", None),
    ("quero marcar uma consulta", None),
    ("qualquer dia", None),
    ("o quanto antes", None),
    ("tenho 2 filhos", None),
    ("meu cpf é 529.982.247-25", None),
    ("quero a segunda opção", None),
    ("boa noite", None),
    ("as 25h", None),
    ("31/02", None),
    ("dia 40", None),
    ("tenho 2 filhos de 3 a 5 anos", None),
    ("na hora", None),
]


@pytest.mark.parametrize(("text", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_parse_when_reads_brazilian_phrasing(text, expected):
    window = parse_when(text, NOW)

    if expected is None:
        assert window is None
    else:
        assert window == TimeWindow(*expected)
        assert window.start.tzinfo is not None


def test_the_table_covers_at_least_sixty_phrases():
    assert len(TABLE) >= 60


def test_a_time_already_past_today_means_tomorrow():
    evening = datetime(2025, 3, 5, 19, 30, tzinfo=SP)

    assert parse_when("às 9h", evening) == TimeWindow(*exact("06/03", "09:00"))
    assert parse_when("de manhã", evening) == TimeWindow(*between("06/03", "06:00", "12:00"))
    assert parse_when("à noite", evening) == TimeWindow(*between("05/03", "18:00", "23:00"))


def test_a_time_already_past_on_a_day_named_explicitly_stays_on_that_day():
    # The booking dialogue says the time has passed rather than silently booking tomorrow.
    afternoon = datetime(2025, 3, 5, 16, 0, tzinfo=SP)

    assert parse_when("hoje às 9h", afternoon) == TimeWindow(*exact("05/03", "09:00"))
    assert parse_when("dia 5 de manhã", afternoon) == TimeWindow(
        *between("05/03", "06:00", "12:00")
    )


def test_a_part_of_the_month_already_past_is_unclear_so_the_bot_asks():
    # On the 25th, "começo do mês" may mean this month's (gone) or the next one's.
    late_in_march = datetime(2025, 3, 25, 10, 0, tzinfo=SP)

    assert parse_when("começo do mês", late_in_march) is None
    assert parse_when("primeira semana de março", late_in_march) is None
    assert parse_when("fim do mês", late_in_march) == TimeWindow(
        *between("25/03", "00:00", "23:59", last_day="31/03")
    )


def test_now_in_utc_is_read_in_sao_paulo_time():
    # 01:00 UTC on Thursday is still Wednesday 22:00 in São Paulo.
    late = datetime(2025, 3, 6, 1, 0, tzinfo=UTC)

    assert parse_when("amanhã", late) == TimeWindow(*whole_day("06/03"))


def test_results_are_in_clinic_time():
    window = parse_when("amanhã às 14h", NOW.astimezone(UTC))

    assert window.start.utcoffset() == SP.utcoffset(window.start)
    assert window.start.hour == 14


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError):
        parse_when("amanhã", datetime(2025, 3, 5, 10, 0))
