"""Personal data typed to the bot stays on the platform: before a turn reaches the assistant,
CPFs, e-mails and phones in the text are swapped for placeholders (`<cpf_1>`, `<email_1>`,
`<telefone_1>`), so Rasa's tracker never stores them verbatim. The mapping needs no table:
the patient's message row keeps the original text, and redacting it again gives the same
placeholders in the same order. An action that needs the real value (the identity form,
validating a CPF) asks `reveal` with the message id the turn's metadata carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.contacts import normalize_cpf
from models import Message

# Longest first: a CPF's 11 digits would also read as a phone with its DDD.
_PATTERNS = (
    ("email", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("cpf", re.compile(r"(?<![\d<])\d{3}[.\s]?\d{3}[.\s]?\d{3}[-.\s]?\d{2}(?!\d)")),
    (
        "telefone",
        re.compile(r"(?<![\d<])(?:\+?55\s?)?\(?\d{2}\)?[\s.-]?9?\s?\d{4}[\s.-]?\d{4}(?!\d)"),
    ),
)
PLACEHOLDER = re.compile(r"<(cpf|email|telefone)_(\d+)>")


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


def redact(text: str) -> Redacted:
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
    values = redact(message.text).values
    return PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), text)
