"""How patients type is spelled out before the model reads it, and a message that asks
several things is cut into its asks (bot/wording.py)."""

import pytest

from bot.wording import clauses, normalise


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("qto custa a consulta?", "quanto custa a consulta?"),
        ("vc atende hj?", "você atende hoje?"),
        ("pq vcs n atendem sabado", "porque vocês não atendem sabado"),
        ("tb queria saber q horas abre", "também queria saber que horas abre"),
        ("obg, vlw, blz", "obrigado, valeu, beleza"),
        ("siiiim obrigadaaa", "sim obrigada"),
        ("qro mrcar uma consuta", "quero marcar uma consulta"),
        ("VC", "você"),
    ],
)
def test_shorthand_stretched_letters_and_typos_are_spelled_out(typed, read):
    assert normalise(typed) == read


def test_placeholders_of_personal_data_are_kept_as_they_are():
    assert normalise("meu cpf eh <cpf_1> e o tel <telefone_1>, vc anota") == (
        "meu cpf é <cpf_1> e o telefone <telefone_1>, você anota"
    )
    assert normalise("<nome_1>") == "<nome_1>"


def test_the_payload_of_a_button_is_not_touched():
    payload = '/informar{"horario": "2025-03-06T14:00:00-03:00", "q": "vc"}'

    assert normalise(payload) == payload


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        (
            "quanto custa a consulta com cardiologista? aceitam unimed?",
            ["quanto custa a consulta com cardiologista", "aceitam unimed"],
        ),
        (
            "qual o endereço e até que horas vcs abrem",
            ["qual o endereço", "até que horas vocês abrem"],
        ),
        (
            "oi bom dia queria saber o valor da consulta e vcs atendem amil",
            ["oi bom dia queria saber o valor da consulta", "vocês atendem amil"],
        ),
        (
            "preciso cancelar minha consulta. outra coisa, o resultado já saiu?",
            ["preciso cancelar minha consulta", "o resultado já saiu"],
        ),
    ],
)
def test_a_message_with_several_asks_is_cut_into_them(message, parts):
    assert clauses(message) == parts


@pytest.mark.parametrize(
    "message",
    [
        "quero marcar com cardiologia e dermatologia",
        "meu nome é <nome_1>",
        "Dr. Ricardo atende sábado?",
        "ok",
    ],
)
def test_a_message_with_one_ask_stays_whole(message):
    assert len(clauses(message)) == 1
