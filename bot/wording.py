"""How patients type, turned into the words the assistant was trained on: WhatsApp shorthand
("vc", "q", "pq", "tb", "hj", "qto", "obg", "vlw", "blz"), stretched letters ("siiim"),
common typos ("consuta"), and the clauses of a message that asks several things at once.

Used by the NLU normaliser inside the Rasa model (bot/normaliser.py), so that training and
serving read the same text, and by the connector (bot/channels/platform.py), which splits a
message into clauses. Standard library only: Rasa's runtime imports this module, and it must
import nothing of the platform.
"""

from __future__ import annotations

import re

# Placeholders the platform puts where personal data was (messaging/redaction.py): kept as
# they are, so that the actions can put the data back.
PLACEHOLDER = re.compile(r"<[a-z]+_\d+>")

# One written form each, as the training data spells it; keys are lower-case words.
_SHORTHAND = {
    "vc": "você",
    "vcs": "vocês",
    "q": "que",
    "qe": "que",
    "ke": "que",
    "pq": "porque",
    "pk": "porque",
    "porq": "porque",
    "tb": "também",
    "tbm": "também",
    "tmb": "também",
    "hj": "hoje",
    "hje": "hoje",
    "qto": "quanto",
    "qnto": "quanto",
    "qt": "quanto",
    "qnt": "quanto",
    "qta": "quanta",
    "qtos": "quantos",
    "qtas": "quantas",
    "qdo": "quando",
    "qd": "quando",
    "qnd": "quando",
    "qndo": "quando",
    "ql": "qual",
    "qlq": "qualquer",
    "qq": "qualquer",
    "qqr": "qualquer",
    "oq": "o que",
    "obg": "obrigado",
    "obgd": "obrigado",
    "obgda": "obrigada",
    "brig": "obrigado",
    "vlw": "valeu",
    "vlws": "valeu",
    "blz": "beleza",
    "td": "tudo",
    "tdo": "tudo",
    "gnt": "gente",
    "dxa": "deixa",
    "d": "de",
    "c": "com",
    "end": "endereço",
    "tds": "todos",
    "msm": "mesmo",
    "mt": "muito",
    "mto": "muito",
    "mta": "muita",
    "mts": "muitos",
    "n": "não",
    "ñ": "não",
    "naum": "não",
    "nd": "nada",
    "pfv": "por favor",
    "pfvr": "por favor",
    "pf": "por favor",
    "plz": "por favor",
    "cmg": "comigo",
    "dps": "depois",
    "agr": "agora",
    "amnh": "amanhã",
    "kd": "cadê",
    "cd": "cadê",
    "aq": "aqui",
    "vdd": "verdade",
    "ngm": "ninguém",
    "alg": "alguém",
    "algm": "alguém",
    "hr": "hora",
    "hrs": "horas",
    "msg": "mensagem",
    "info": "informação",
    "pgto": "pagamento",
    "tel": "telefone",
    "cel": "celular",
    "whats": "whatsapp",
    "zap": "whatsapp",
    "zapzap": "whatsapp",
    "tá": "está",
    "ta": "está",
    "to": "estou",
    "tô": "estou",
    "tou": "estou",
    "eh": "é",
    "tbem": "também",
    # Typos seen in patients' messages.
    "consuta": "consulta",
    "cosulta": "consulta",
    "conulta": "consulta",
    "consuulta": "consulta",
    "cunsulta": "consulta",
    "colsulta": "consulta",
    "cnsulta": "consulta",
    "consultaa": "consulta",
    "qro": "quero",
    "kero": "quero",
    "qria": "queria",
    "keria": "queria",
    "qeria": "queria",
    "mrcar": "marcar",
    "maracr": "marcar",
    "amrcar": "marcar",
    "rmarcar": "remarcar",
    "canselar": "cancelar",
    "cancelaar": "cancelar",
    "cacelar": "cancelar",
    "cancelr": "cancelar",
    "agnedar": "agendar",
    "agendr": "agendar",
    "covenio": "convênio",
    "comvenio": "convênio",
    "unimede": "unimed",
    "enderesso": "endereço",
    "endereso": "endereço",
    "orario": "horário",
    "ezame": "exame",
    "rezultado": "resultado",
    "resultdo": "resultado",
    "atendete": "atendente",
    "atendenti": "atendente",
    "preso": "preço",
    "particula": "particular",
    "ducumento": "documento",
}

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Three or more of the same letter ("siiim", "obrigadaaa", "nããão"): Portuguese never has them.
_STRETCHED = re.compile(r"([^\W\d_])\1{2,}", re.UNICODE)


def _word(match: re.Match[str]) -> str:
    word = _STRETCHED.sub(r"\1", match.group(0))
    return _SHORTHAND.get(word.lower(), word)


def _normalise_plain(text: str) -> str:
    return _WORD.sub(_word, text)


def normalise(text: str) -> str:
    """`text` with shorthand spelled out, stretched letters shortened and common typos fixed;
    placeholders and payloads (`/intent{...}`, our buttons') are kept as they are."""
    if text.lstrip().startswith("/"):
        return text
    pieces, start = [], 0
    for match in PLACEHOLDER.finditer(text):
        pieces += [_normalise_plain(text[start : match.start()]), match.group(0)]
        start = match.end()
    pieces.append(_normalise_plain(text[start:]))
    return "".join(pieces)


# Where a message moves on to another ask: the end of a sentence, or a joining phrase that
# opens a new one ("e também", "outra coisa", "e vocês aceitam").
_SENTENCE_END = re.compile(r"(?<=[?!;\n])|(?<=[^\d\s.]\.)(?=\s)")
_NEW_ASK = re.compile(
    r"\s*(?:,\s*)?\b(?:e\s+)?(?:também|além\s+disso|outra\s+coisa|outra\s+dúvida|aproveitando"
    r"|ah\s+e|e\s+ainda)\b[\s,:]*"
    r"|\s*,?\s+e\s+(?=(?:vocês|você|quanto|qual|quais|onde|como|quando|que\s+horas|até|ate"
    r"|a\s+que\s+horas|tem|aceitam|atendem|precisa|preciso|quero|queria|gostaria|posso|pode"
    r"|dá|da|me)\b)",
    re.IGNORECASE,
)
MIN_CLAUSE_WORDS = 2


def clauses(text: str) -> list[str]:
    """The parts of a message that may each ask something, in order (at least two words
    each; the message itself when it has no such parts). Read on normalised text."""
    parts = [
        piece.strip(" ,.;!?\n")
        for sentence in _SENTENCE_END.split(normalise(text))
        for piece in _NEW_ASK.split(sentence)
    ]
    kept = [part for part in parts if len(_WORD.findall(part)) >= MIN_CLAUSE_WORDS]
    return kept or [text.strip()]
