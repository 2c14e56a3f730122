"""Personal data typed to the bot stays on the platform: before a turn reaches the assistant,
CPFs, e-mails and phones in the text are swapped for placeholders (`<cpf_1>`, `<email_1>`,
`<telefone_1>`), and so is the whole answer to the bot's question for the name (`<nome_1>`:
the bot's question carries `expects: nome`, recorded on the outbound message), so Rasa's
tracker never stores them verbatim. The mapping needs no table: the patient's message row
keeps the original text, and redacting it again gives the same placeholders in the same
order. An action that needs the real value (the identity form, validating a CPF or saving
the name) asks `reveal` with the message id the turn's metadata carries.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.contacts import normalize_cpf
from models import Message, User

# What a bot question may expect (`Message.expects`): its answer is redacted whole.
NAME = "nome"
NAME_PLACEHOLDER = f"<{NAME}_1>"
# In the bot's own messages: the platform writes the patient's first name in its place as it
# records them (`address`), so the tracker's copy of what the bot said names nobody.
FIRST_NAME = "<primeiro_nome>"

# Longest first: a CPF's 11 digits would also read as a phone with its DDD.
_PATTERNS = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("cpf", re.compile(r"(?<![\d<])\d{3}[.\s]?\d{3}[.\s]?\d{3}[-.\s]?\d{2}(?!\d)")),
    (
        "telefone",
        re.compile(r"(?<![\d<])(?:\+?55\s?)?\(?\d{2}\)?[\s.-]?9?\s?\d{4}[\s.-]?\d{4}(?!\d)"),
    ),
)
PLACEHOLDER = re.compile(r"<(cpf|email|telefone|nome)_(\d+)>")
# One word of a name: letters, maybe joined by an apostrophe or hyphen (D'Arc, Ana-Maria).
NAME_WORD = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$")
# Words of questions, requests and giving up, which names do not contain: an answer to the
# name question with one of them is something else ("deixa pra lá", "quero um atendente"),
# left for the assistant to read. Compared without accents.
NOT_IN_NAMES = {
    "qual", "quais", "quanto", "quantos", "onde", "como", "quando", "que", "porque", "tem",
    "voces", "vcs", "aceitam", "atendem", "posso", "preciso", "quero", "gostaria", "consulta",
    "convenio", "exame", "horario", "endereco", "valor", "preco", "clinica", "medico", "plano",
    "atendente", "pessoa", "humano", "sim", "nao", "oi", "ola", "obrigado", "obrigada",
    "alguem", "falar", "recepcao", "recepcionista", "secretaria", "robo", "ajuda", "socorro",
    "urgente", "emergencia", "deixa", "esquece", "desisto", "desisti", "desistir", "para",
    "pare", "parar", "sair", "cancela", "cancelar", "chega", "depois", "mudei", "tchau",
    "agendar", "marcar", "remarcar", "ok",
}  # fmt: skip


def _reads_as_cpf(typed: str) -> bool:
    """Written as a CPF (dots and dash), or eleven bare digits whose check digits hold."""
    return not typed.isdigit() or normalize_cpf(typed) is not None


@dataclass(frozen=True)
class Redacted:
    text: str
    values: dict[str, str]  # placeholder -> what the patient typed

    @property
    def changed(self) -> bool:
        return bool(self.values)


def _folded(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def could_be_a_name(text: str) -> bool:
    """Words of letters only (one or more), no question, none of the words names lack."""
    words = text.strip().strip(" .,!").split()
    return (
        bool(words)
        and "?" not in text
        and all(NAME_WORD.match(w) for w in words)
        and not {_folded(w) for w in words} & NOT_IN_NAMES
    )


def redact(text: str, *, answering: str | None = None) -> Redacted:
    """`text` with its personal data as placeholders; `answering` the name question, a text
    that could be a name is swapped whole (what else is typed there is left as it is)."""
    if answering == NAME and could_be_a_name(text):
        return Redacted(NAME_PLACEHOLDER, {NAME_PLACEHOLDER: text.strip()})
    values: dict[str, str] = {}
    for kind, pattern in _PATTERNS:
        count = 0

        def swap(match: re.Match[str], kind: str = kind) -> str:
            nonlocal count
            if kind == "cpf" and not _reads_as_cpf(match.group(0)):
                return match.group(0)  # bare digits failing the check: a phone, maybe
            count += 1
            placeholder = f"<{kind}_{count}>"
            values[placeholder] = match.group(0)
            return placeholder

        text = pattern.sub(swap, text)
    return Redacted(text, values)


def has_placeholder(text: str) -> bool:
    return PLACEHOLDER.search(text) is not None


async def reveal(session: AsyncSession, patient_id: int, message_id: int | None, text: str) -> str:
    """`text` (what the assistant read, or part of it) with the placeholders put back from
    the patient's own message; placeholders of another patient's message stay as they are."""
    if message_id is None or not has_placeholder(text):
        return text
    message = await session.get(Message, message_id)
    if message is None or message.patient_id != patient_id:
        return text
    # A text of letters only has no CPF, phone or e-mail: redacting it as an answer to the
    # name question gives the same placeholders as before, plus `<nome_1>` when it was one.
    values = redact(message.text, answering=NAME).values
    return PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), text)


async def address(session: AsyncSession, patient_id: int, text: str) -> str:
    """A bot message's text with the patient's first name in place of `FIRST_NAME`."""
    if FIRST_NAME not in text:
        return text
    name = (await session.get_one(User, patient_id)).name or ""
    return text.replace(FIRST_NAME, name.split()[0] if name.split() else "")
