"""The demo clinic `make run` starts with: its profile, agenda and staff accounts."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.auth import hash_password
from models import (
    AttendantProfile,
    CannedResponse,
    ClinicProfile,
    Doctor,
    Label,
    Role,
    ScheduleException,
    Specialty,
    User,
    WorkingHours,
)
from models.db import Database
from scheduling.agenda import CLINIC_TZ
from scheduling.holidays import local_holidays

CLINIC_PROFILE = {
    "endereco": "Av. Paulista, 1000, conjunto 42 — Bela Vista, São Paulo/SP, CEP 01310-100",
    "referencia": "Ao lado da estação Trianon-Masp do metrô (linha 2-verde).",
    "telefone": "(11) 3000-1000",
    "horario": {
        "semana": "segunda a sexta, das 8h às 18h",
        "sabado": "sábado, das 8h às 12h",
        "domingo_feriados": "fechado aos domingos e feriados",
    },
    "convenios": ["Amil", "Bradesco Saúde", "SulAmérica", "Unimed", "Porto Seguro Saúde"],
    "valores": {
        "consulta_particular": "R$ 280,00",
        "retorno": "gratuito em até 30 dias",
        "pagamento": "Pix, cartão de débito ou crédito (até 3x sem juros)",
    },
    "documentos": [
        "documento com foto (RG ou CNH)",
        "CPF",
        "carteirinha do convênio, se for usar",
        "pedido médico e exames anteriores, se tiver",
    ],
    "preparo_exames": {
        "exame de sangue": "jejum de 8 horas (água pode); evite álcool nas 72 horas anteriores",
        "ultrassom abdominal": "jejum de 6 horas e bexiga cheia: beba 4 copos de água 1 hora antes",
        "eletrocardiograma": "não precisa de preparo; evite cremes no peito no dia",
    },
    "resultados": "Os resultados ficam prontos em até 5 dias úteis e são enviados por e-mail "
    "e pelo WhatsApp; também podem ser retirados na recepção com documento com foto.",
}

SPECIALTIES = {
    "clinica-geral": "Clínica Geral",
    "cardiologia": "Cardiologia",
    "dermatologia": "Dermatologia",
    "pediatria": "Pediatria",
    "ginecologia": "Ginecologia",
}

MON_FRI = range(5)
# (name, CRM, specialty slug, slot minutes, [(weekdays, start, end), ...])
DOCTORS = [
    ("Dra. Ana Carvalho", "CRM-SP 123456", "clinica-geral", 30, [(MON_FRI, time(8), time(12))]),
    ("Dr. Paulo Mendes", "CRM-SP 234567", "clinica-geral", 30, [(MON_FRI, time(13), time(18))]),
    ("Dr. Ricardo Alves", "CRM-SP 345678", "cardiologia", 40, [((0, 2, 4), time(8), time(17))]),
    (
        "Dra. Juliana Rocha",
        "CRM-SP 456789",
        "dermatologia",
        30,
        [((1, 3), time(9), time(18)), ((5,), time(8), time(12))],
    ),
    ("Dra. Camila Nunes", "CRM-SP 567890", "pediatria", 30, [(MON_FRI, time(8), time(14))]),
    ("Dra. Fernanda Dias", "CRM-SP 678901", "ginecologia", 30, [((0, 1, 3), time(10), time(18))]),
]

STAFF = [
    ("Administração Vida Plena", "admin@vidaplena.demo", Role.ADMIN),
    ("Ana Souza", "ana@vidaplena.demo", Role.ATTENDANT),
    ("Bruno Lima", "bruno@vidaplena.demo", Role.ATTENDANT),
    ("Marta Reis", "marta@vidaplena.demo", Role.MANAGER),
]

# The demo's starting canned responses and labels; managers edit them at /staff/etiquetas.
# In a canned response, {paciente} and {atendente} become first names.
CANNED_RESPONSES = {
    "bomdia": "Bom dia, {paciente}! Aqui é {atendente}, da recepção. Como posso ajudar?",
    "verificando": "Só um instante, {paciente}, estou verificando para você.",
    "documentos": "Para a consulta, traga documento com foto, CPF e a carteirinha do convênio.",
    "confirmada": "Sua consulta está confirmada. Chegue com 15 minutos de antecedência, por favor.",
    "resultados": "Os resultados ficam prontos em até 5 dias úteis e chegam por e-mail e WhatsApp.",
    "encerrar": "Posso ajudar em mais alguma coisa? Se não, vou encerrar nosso atendimento.",
}
LABELS = {"Convênio": "#0969da", "Exames": "#1a7f37", "Retorno": "#8250df", "Financeiro": "#9a6700"}


@dataclass(frozen=True)
class Login:
    name: str
    email: str
    role: Role
    password: str


def add_agenda(session: AsyncSession, holiday_years: Iterable[int]) -> None:
    """Specialties, doctors with their weekly hours, and the city's and state's holidays of
    the given years (national ones the agenda computes for any year)."""
    specialties = {slug: Specialty(slug=slug, name=name) for slug, name in SPECIALTIES.items()}
    session.add_all(specialties.values())
    for name, crm, slug, minutes, blocks in DOCTORS:
        doctor = Doctor(name=name, crm=crm, specialties=[specialties[slug]], slot_minutes=minutes)
        doctor.working_hours = [
            WorkingHours(weekday=day, starts=start, ends=end)
            for days, start, end in blocks
            for day in days
        ]
        session.add(doctor)
    for year in holiday_years:
        for day, reason in local_holidays(year):
            starts = datetime.combine(day, time(0), CLINIC_TZ)
            ends = datetime.combine(day + timedelta(days=1), time(0), CLINIC_TZ)
            session.add(
                ScheduleException(doctor_id=None, starts_at=starts, ends_at=ends, reason=reason)
            )


async def seed_demo_clinic(
    db: Database, password: str | None = None, attendant_capacity: int = 5
) -> list[Login] | None:
    """Seed an empty database; None when it already holds users. Each account gets the
    given password, or its own random one."""
    async with db.session() as session:
        if (await session.execute(select(func.count(User.id)))).scalar_one():
            return None
        session.add(ClinicProfile(name="Clínica Vida Plena", data=CLINIC_PROFILE))
        this_year = date.today().year
        add_agenda(session, range(this_year, this_year + 2))
        session.add_all(CannedResponse(shortcut=k, text=v) for k, v in CANNED_RESPONSES.items())
        session.add_all(Label(name=name, colour=colour) for name, colour in LABELS.items())
        logins = []
        for name, email, role in STAFF:
            secret = password or secrets.token_urlsafe(9)
            user = User(name=name, email=email, role=role, password_hash=hash_password(secret))
            if role in (Role.ATTENDANT, Role.MANAGER):
                user.attendant_profile = AttendantProfile(capacity=attendant_capacity)
            session.add(user)
            logins.append(Login(name, email, role, secret))
    return logins
