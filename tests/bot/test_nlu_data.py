"""The training data and the held-out split stay apart, and cover every intent."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import yaml

from core.settings import ROOT
from tests.bot.nlu_eval import heldout_examples, training_examples

# Intents other parts of the product rely on (issue 3); the platform triggers the last one.
REQUIRED_INTENTS = {
    "saudacao",
    "despedida",
    "agradecimento",
    "afirmar",
    "negar",
    "agendar_consulta",
    "cancelar_consulta",
    "remarcar_consulta",
    "consultar_agendamentos",
    "confirmar_presenca",
    "falar_com_atendente",
    "emergencia",
    "fora_do_escopo",
    "faq",
    "EXTERNAL_atendimento_encerrado",
}


def _normal(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", plain).split())


def test_no_held_out_example_is_in_the_training_data():
    trained = {_normal(text) for text, _ in training_examples()}

    assert [text for text, _ in heldout_examples() if _normal(text) in trained] == []


def test_the_domain_keeps_the_intent_names_the_product_relies_on():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())

    assert set(domain["intents"]) >= REQUIRED_INTENTS


def test_every_trained_intent_is_in_the_held_out_split_with_enough_examples():
    trained = Counter(intent for _, intent in training_examples())
    held_out = Counter(intent for _, intent in heldout_examples())

    assert set(held_out) == set(trained)
    assert min(trained.values()) >= 10
    assert min(held_out.values()) >= 6
    assert sum(held_out.values()) >= 200
