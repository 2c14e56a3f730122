"""A message that asks several things is read as all of them, by the trained model
(var/rasa/bot.tar.gz) through the connector's reading (bot/channels/platform.py), on
messages written for this test: not in the training data nor in the held-out split."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from tests.bot.nlu_eval import in_rasa, training_examples
from tests.bot.test_rasa import MODEL

# (message, the intent the dialogue acts on, the FAQ keys answered, in order)
MESSAGES = [
    (
        "quanto custa a consulta com cardiologista? aceitam unimed?",
        "faq",
        ["valores", "convenios"],
    ),
    ("qual o endereço de vcs e até que horas ficam abertos?", "faq", ["endereco", "horario"]),
    (
        "qual o valor da consulta particular? e preciso levar algum documento?",
        "faq",
        ["valores", "documentos"],
    ),
    (
        "oi boa tarde queria saber se precisa de jejum pro exame de sangue e quando sai o "
        "resultado",
        "faq",
        ["preparo_exame", "resultado_exame"],
    ),
    (
        "vcs aceitam bradesco saude? quero marcar uma consulta com dermato",
        "agendar_consulta",
        ["convenios"],
    ),
    (
        "onde fica a clínica? preciso cancelar minha consulta de sexta",
        "cancelar_consulta",
        ["endereco"],
    ),
    (
        "quero remarcar minha consulta. outra coisa, o resultado do meu exame ja saiu?",
        "remarcar_consulta",
        ["resultado_exame"],
    ),
    (
        "quanto ta a consulta particular? prefiro falar com uma atendente",
        "falar_com_atendente",
        ["valores"],
    ),
    # One ask: read as before.
    ("qto custa a consulta com o cardiologista?", "faq", ["valores"]),
    ("quero marcar uma consulta com cardiologia e dermatologia", "agendar_consulta", []),
    # An emergency is one, whatever else the message asks.
    ("qual o endereço? minha mãe desmaiou agora", "emergencia", []),
]


@pytest.fixture(scope="module")
def readings() -> list[dict]:
    if not MODEL.exists():
        raise RuntimeError(f"{MODEL} is missing: run `make train` (make test does it)")
    with tempfile.TemporaryDirectory() as folder:
        texts = Path(folder) / "texts.json"
        texts.write_text(json.dumps([text for text, _, _ in MESSAGES]))
        return in_rasa("asks", str(MODEL), str(texts))


def test_the_messages_are_not_training_examples():
    trained = {text.lower() for text, _ in training_examples()}

    assert [text for text, _, _ in MESSAGES if text.lower() in trained] == []


@pytest.mark.parametrize(
    ("index", "message"), list(enumerate(text for text, _, _ in MESSAGES)), ids=str
)
def test_every_ask_of_a_message_is_read(readings, index, message):
    _, intent, faq_keys = MESSAGES[index]

    assert readings[index] == {"intent": intent, "faq_keys": faq_keys}
