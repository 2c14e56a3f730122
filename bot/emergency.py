"""Emergency phrases, shared by the assistant's NLU safety net (bot/safety_net.py, loaded by
Rasa) and the custom actions (run by the platform's action server). Standard library only:
Rasa's runtime imports this module, and it must import nothing of the platform."""

from __future__ import annotations

import re
import unicodedata


def plain(text: str) -> str:
    """Lower case without accents or punctuation, for keyword matching."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    without_accents = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", without_accents).split())


# A safety net under the NLU: phrases that must reach a person even when the intent model
# hesitates. A false alarm costs a call from the team; a miss could cost a life.
_EMERGENCY = re.compile(
    r"\b(dor (\w+ ){0,2}no peito|peito (apertad|doendo|doi)\w*|infart\w*|ataque cardiac\w*"
    r"|avc|derrame|boca torta|rosto torto|desmai\w*|inconscient\w*|desacordad\w*|convuls\w*"
    r"|(nao|sem) ((estou|esta|to|ta) )?(consigo|consegue|conseguir|conseguindo) respirar"
    r"|dificuldade (pra|para|de) respirar"
    r"|falta de ar|sem ar|sufoca\w*|engasg\w*|sem pulso"
    r"|parou de respirar|nao (esta )?respira\w*|labios roxos|ficou roxo|esta roxo"
    r"|sangr\w* (muito|demais|sem parar)|nao para de sangrar|hemorragi\w*|vomitando sangue"
    r"|overdose|envenen\w*|veneno|intoxica\w*|tomei (muitos|varios|um monte|a cartela)"
    r"|suicid\w*|me matar|tirar (a )?minha vida|acabar com a minha vida|nao aguento mais viver"
    r"|bolsa estourou|atropelad\w*|anafila\w*|garganta (esta )?fechando)\b"
)


def looks_like_emergency(text: str) -> bool:
    return bool(_EMERGENCY.search(plain(text)))
