"""Personal data typed to the bot stays on the platform: before a turn reaches the assistant,
CPFs, e-mails and phones in the text are swapped for placeholders (`<cpf_1>`, `<email_1>`,
`<telefone_1>`), and so is the whole answer to the bot's question for the name (`<nome_1>`:
the bot's question carries `expects: nome`, recorded on the outbound message), so Rasa's
tracker never stores them verbatim. Names typed anywhere else become `<nome_N>` too: the name
after a self-introduction ("sou a Maria da Silva", "meu nome é João", "aqui é a Ana", "me
chamo ..."), and the words of the patient's recorded name wherever they appear (whole words,
ignoring case and accents). Words the assistant needs to read stay: common words, the
clinic's doctors and specialties, weekdays and months. The mapping needs no table: the
patient's message row keeps the original text, and redacting it again (with what it was
answering and the patient's name) gives the same placeholders in the same order. An action
that needs the real value (the identity form, validating a CPF or saving the name) asks
`reveal` with the message id the turn's metadata carries.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CompoundSelect

from core.contacts import normalize_cpf
from models import AuthorKind, Conversation, Direction, Doctor, Message, Specialty, User

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
# Joining the words of one name ("Maria da Silva"); never a name by themselves.
PARTICLES = {"da", "de", "do", "das", "dos"}
# Words that follow "sou", "aqui é" and the like without being a name ("sou cliente", "aqui é
# da clínica", "sou alérgica"), and words the assistant needs even when a patient's name
# shares them ("Maria das Dores"). Without accents.
COMMON_WORDS = NOT_IN_NAMES | {
    "a", "o", "as", "os", "um", "uma", "e", "eu", "ele", "ela", "me", "meu", "minha", "seu",
    "sua", "voce", "ja", "so", "mesmo", "mesma", "aqui", "ai", "la", "em", "no", "na", "com",
    "pra", "pro", "por", "favor", "bom", "boa", "dia", "tarde", "noite", "tudo", "bem",
    "cliente", "paciente", "mae", "pai", "filho", "filha", "esposa", "esposo", "marido",
    "mulher", "avo", "irma", "irmao", "responsavel", "acompanhante", "novo", "nova", "antigo",
    "antiga", "dr", "dra", "doutor", "doutora", "enfermeira", "enfermeiro", "medica",
    "representante", "estudante", "aluno", "aluna", "professor", "professora", "alergico",
    "alergica", "diabetico", "diabetica", "hipertenso", "hipertensa", "gestante", "gravida",
    "idoso", "idosa", "particular", "conveniado", "conveniada", "associado", "associada",
    "dor", "dores", "febre", "nome", "cpf", "telefone", "email",
    "celular", "whatsapp", "hoje", "amanha", "ontem", "semana", "mes", "ano", "manha",
}  # fmt: skip
# Clinic vocabulary the assistant reads (besides the clinic's own doctors and specialties,
# read from its database by `name_words`): never taken for a name.
CALENDAR_WORDS = {
    "segunda", "terca", "quarta", "quinta", "sexta", "sabado", "domingo", "feira",
    "janeiro", "fevereiro", "marco", "abril", "maio", "junho", "julho", "agosto", "setembro",
    "outubro", "novembro", "dezembro",
}  # fmt: skip
SPECIALTY_WORDS = {
    "cardiologia", "cardiologista", "cardio", "dermatologia", "dermatologista", "dermato",
    "pediatria", "pediatra", "ginecologia", "ginecologista", "gineco", "ortopedia",
    "ortopedista", "oftalmologia", "oftalmologista", "oftalmo", "neurologia", "neurologista",
    "psiquiatria", "psiquiatra", "psicologia", "psicologo", "psicologa", "urologia",
    "urologista", "endocrinologia", "endocrinologista", "clinico", "geral", "nutricionista",
}  # fmt: skip
NEVER_A_NAME = COMMON_WORDS | CALENDAR_WORDS | SPECIALTY_WORDS | PARTICLES
# A self-introduction, on the folded text (lower case, no accents); the name follows.
INTRODUCTION = re.compile(
    r"\b(?:meu nome(?: completo)? (?:e|eh)|me chamo|(?:eu )?sou(?: [oa])?"
    r"|aqui (?:e|eh)(?: [oa])?|quem fala (?:e|eh)(?: [oa])?|nome:)(?=\s)"
)
# One word (letters, maybe joined by an apostrophe or hyphen) and where it starts.
WORD = re.compile(r"\s+([^\W\d_]+(?:['’-][^\W\d_]+)*)")
# Between two words of one name: spaces, maybe a particle.
NAME_GAP = re.compile(r"\s+(?:(?:da|de|do|das|dos)\s+)?")
LONGEST_NAME = 8  # words


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


def _folded(text: str) -> str:
    """Lower case without accents, character for character (positions stay those of
    `text`)."""
    return "".join(unicodedata.normalize("NFD", c.lower()[0])[0] for c in text)


def could_be_a_name(text: str) -> bool:
    """Words of letters only (one or more), no question, none of the words names lack."""
    words = text.strip().strip(" .,!").split()
    return (
        bool(words)
        and "?" not in text
        and all(NAME_WORD.match(w) for w in words)
        and not {_folded(w) for w in words} & NOT_IN_NAMES
    )


# The folded words of a patient's recorded name that redaction hides wherever they appear.
NameWords = frozenset[str]
Span = tuple[int, int]


def _words(text: str) -> set[str]:
    return {m.group(1) for m in WORD.finditer(" " + _folded(text))}


async def name_words(session: AsyncSession, patient_id: int) -> NameWords:
    """The patient's name words worth hiding: not particles, not common words, not the
    clinic's doctors' and specialties' (a patient named Ana still asks for "a dra Ana")."""
    # One round trip on every turn: the patient's name beside the clinic's names.
    names: CompoundSelect[bool, str | None] = union_all(
        select(literal(True), User.name).where(User.id == patient_id),
        select(literal(False), Doctor.name),
        select(literal(False), Specialty.name),
    )
    rows = (await session.execute(names)).all()
    recorded = _words(" ".join(name or "" for is_patient, name in rows if is_patient))
    clinic = _words(" ".join(name or "" for is_patient, name in rows if not is_patient))
    return frozenset(w for w in recorded if len(w) > 1 and w not in NEVER_A_NAME | clinic)


def _introduced_name(text: str, folded: str, at: int) -> Span | None:
    """The name right after a self-introduction ending at `at`: words that may be part of
    a name, joined by spaces and particles, all capitalised if the first is; punctuation or
    another word ends it. A doctor's name counts here ("aqui é a Ana": a patient may share
    it; "aqui é a dra Ana" stops at "dra")."""
    span: Span | None = None
    capitalised = False
    for _ in range(LONGEST_NAME):
        word = WORD.match(folded, at)
        if word is None:
            break
        at, start = word.end(), word.start(1)
        if word.group(1) in PARTICLES and span is not None:
            continue
        if word.group(1) in NEVER_A_NAME or (capitalised and not text[start].isupper()):
            break
        capitalised = capitalised or (span is None and text[start].isupper())
        span = (span[0] if span else start, word.end(1))
    return span


def _name_spans(text: str, names: NameWords) -> list[Span]:
    """Where `text` names someone: after a self-introduction, or a word of the patient's
    name; neighbours joined by spaces or a particle make one name."""
    folded = _folded(text)
    spans = [
        span
        for intro in INTRODUCTION.finditer(folded)
        if (span := _introduced_name(text, folded, intro.end())) is not None
    ]
    if names:
        words = "|".join(re.escape(w) for w in sorted(names, key=len, reverse=True))
        spans += [m.span() for m in re.finditer(rf"(?<![\w<])(?:{words})(?![\w>])", folded)]
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and (start <= merged[-1][1] or NAME_GAP.fullmatch(folded, merged[-1][1], start)):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _redact_names(text: str, values: dict[str, str], names: NameWords) -> str:
    pieces, done = [], 0
    for count, (start, end) in enumerate(_name_spans(text, names), start=1):
        placeholder = f"<{NAME}_{count}>"
        values[placeholder] = text[start:end]
        pieces += [text[done:start], placeholder]
        done = end
    return "".join(pieces) + text[done:]


def redact(text: str, *, answering: str | None = None, names: NameWords = frozenset()) -> Redacted:
    """`text` with its personal data as placeholders; `answering` the name question, a text
    that could be a name is swapped whole (what else is typed there is left as it is);
    `names` the words of the patient's recorded name (`name_words`)."""
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
    return Redacted(_redact_names(text, values, names), values)


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
    answering = await _answering(session, message)
    names = await name_words(session, patient_id)
    values = redact(message.text, answering=answering, names=names).values
    return PLACEHOLDER.sub(lambda m: values.get(m.group(0), m.group(0)), text)


async def _answering(session: AsyncSession, message: Message) -> str | None:
    """What the clinic's latest message before `message` on its channel identity asked
    for, as the platform read it when redacting (`messaging.inbound`)."""
    identity = select(Conversation.channel_identity_id).where(
        Conversation.id == message.conversation_id
    )
    query = (
        select(Message.expects)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.channel_identity_id == identity.scalar_subquery(),
            Message.id < message.id,
            Message.direction == Direction.OUTBOUND,
            Message.author_kind.in_((AuthorKind.BOT, AuthorKind.SYSTEM)),
            Message.internal.is_(False),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar()


async def address(session: AsyncSession, patient_id: int, text: str) -> str:
    """A bot message's text with the patient's first name in place of `FIRST_NAME`."""
    if FIRST_NAME not in text:
        return text
    name = (await session.get_one(User, patient_id)).name or ""
    return text.replace(FIRST_NAME, name.split()[0] if name.split() else "")
