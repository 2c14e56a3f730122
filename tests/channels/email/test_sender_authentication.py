"""Inbound mail speaks for a patient only when its sender is authenticated: an aligned DKIM
signature verified here (against the key the domain publishes, served locally), or the
clinic's trusted relay's Authentication-Results. Anything else — the forged From — is kept,
filed apart from every patient and handed to a person, and never reaches the bot (which
could cancel the patient's appointment)."""

from __future__ import annotations

import base64
import functools
import subprocess

import dkim
import pytest
from sqlalchemy import select

from channels.email import EmailChannel
from channels.mailauth import SenderCheck
from messaging.identities import create_patient, has_verified_contact
from models import (
    Appointment,
    AppointmentStatus,
    ChannelIdentity,
    ClinicProfile,
    Conversation,
    Direction,
    Message,
    Owner,
    User,
    utcnow,
)
from models.db import Database
from scheduling import appointments
from scripts.demo_clinic import CLINIC_PROFILE, add_agenda
from tests.channels.webhooks import relay_pass, unsigned_mail
from tests.factories import booked
from tests.fakes import FakeAssistant

MARIA = "maria.lima@gmail.com"
SELECTOR = b"s2026"


@functools.cache
def rsa_key() -> tuple[bytes, bytes]:
    """A private key (PEM) and its public half as a DKIM DNS record says it (base64 DER)."""
    private = subprocess.run(
        ["openssl", "genrsa", "-traditional", "2048"], check=True, capture_output=True
    ).stdout
    public = subprocess.run(
        ["openssl", "rsa", "-pubout", "-outform", "DER"],
        input=private,
        check=True,
        capture_output=True,
    ).stdout
    return private, base64.b64encode(public)


class Dns:
    """The TXT records of the domains in the tests, as `dkim` looks them up."""

    def __init__(self) -> None:
        self.records: dict[bytes, bytes] = {}
        self.asked: list[bytes] = []

    def publish(self, domain: str) -> None:
        _, public = rsa_key()
        self.records[SELECTOR + b"._domainkey." + domain.encode() + b"."] = (
            b"v=DKIM1; k=rsa; p=" + public
        )

    def lookup(self, name: bytes, timeout: int = 5) -> bytes | None:
        self.asked.append(name)
        return self.records.get(name)


def dkim_signed(raw: bytes, domain: str) -> bytes:
    private, _ = rsa_key()
    headers = [b"from", b"to", b"subject", b"message-id", b"date"]
    return dkim.sign(raw, SELECTOR, domain.encode(), private, include_headers=headers) + raw


class CancellingAssistant(FakeAssistant):
    """The bot a mail reaches: asked to cancel, it cancels the patient's appointments, as
    the real cancellation dialogue does."""

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db

    async def turn(
        self, patient_id, message, text, *, answering=None, replay=False, names=frozenset()
    ):
        replies = await super().turn(patient_id, message, text, answering=answering, replay=replay)
        if "cancelar" in text:
            async with self.db.session() as session:
                upcoming = await appointments.upcoming_for_patient(
                    session, patient_id, now=utcnow()
                )
            for appointment in upcoming:
                await appointments.cancel(self.db, appointment.id, channel="email")
        return replies


@pytest.fixture
async def maria(db):
    """A patient whose e-mail is proved, with a booked appointment."""
    async with db.session() as session:
        session.add(ClinicProfile(name="Clínica Vida Plena", data=CLINIC_PROFILE))
        add_agenda(session, [2026, 2027])
        patient = await create_patient(session, name="Maria Lima", email=MARIA)
        patient.email_verified_at = utcnow()
    await booked(db, patient)
    return patient


@pytest.fixture
async def dns():
    found = Dns()
    found.publish("gmail.com")
    found.publish("golpe.test")  # the attacker's own domain, with a valid key of its own
    return found


@pytest.fixture
async def email(serve, db, dns):
    served = await serve(EmailChannel)
    channel = served.channel
    assert isinstance(channel, EmailChannel)
    channel.sender_check = SenderCheck(channel.config.trusted_authserv_id, lookup=dns.lookup)
    served.inbox.assistant = CancellingAssistant(db)
    return served


async def _first_inbound(db: Database) -> tuple[Message, ChannelIdentity, Conversation]:
    async with db.session() as session:
        message = (
            await session.execute(select(Message).order_by(Message.id).limit(1))
        ).scalar_one()
        conversation = await session.get_one(Conversation, message.conversation_id)
        identity = await session.get_one(ChannelIdentity, conversation.channel_identity_id)
    return message, identity, conversation


async def _appointment_status(db: Database, patient: User) -> AppointmentStatus:
    async with db.session() as session:
        query = select(Appointment.status).where(Appointment.patient_id == patient.id)
        return (await session.execute(query)).scalar_one()


def _cancel_request(message_id: str = "pedido-1@mail.test") -> bytes:
    return unsigned_mail(MARIA, "quero cancelar minha consulta", message_id)


async def test_a_forged_from_is_filed_apart_goes_to_a_person_and_cancels_nothing(
    email, db, maria, smtp_server
):
    assert (await email.deliver(_cancel_request()))[0] == 200
    await email.settle()

    message, identity, conversation = await _first_inbound(db)
    assert message.text == "quero cancelar minha consulta"  # kept, for a person to read
    assert message.patient_id != maria.id
    assert identity.external_id == f"unverified:{MARIA}"
    assert (conversation.owner, conversation.handoff_reason) == (
        Owner.QUEUED,
        "email_nao_autenticado",
    )
    assert email.inbox.assistant.received == []
    assert await _appointment_status(db, maria) == AppointmentStatus.SCHEDULED
    # The address's owner (not the forger) hears only that a person will answer.
    [notice] = [mail.get_content() for mail in smtp_server.sent_to(MARIA)]
    assert "fila" in notice and "eco:" not in notice

    # A second forged mail joins the first, still apart from Maria.
    await email.deliver(_cancel_request("pedido-2@mail.test"))
    await email.settle()
    async with db.session() as session:
        query = select(Message.patient_id).where(Message.direction == Direction.INBOUND)
        owners = (await session.execute(query)).scalars().all()
    assert owners == [message.patient_id, message.patient_id]
    async with db.session() as session:  # what booking asks: nothing proved the forger
        assert not await has_verified_contact(session, message.patient_id)


async def test_a_mail_signed_by_the_senders_domain_acts_for_the_patient(email, db, maria, dns):
    assert (await email.deliver(dkim_signed(_cancel_request(), "gmail.com")))[0] == 200
    await email.settle()

    message, identity, _ = await _first_inbound(db)
    assert (message.patient_id, identity.external_id) == (maria.id, MARIA)
    assert email.inbox.assistant.texts == ["quero cancelar minha consulta"]
    assert await _appointment_status(db, maria) == AppointmentStatus.CANCELLED
    assert dns.asked == [b"s2026._domainkey.gmail.com."]  # the key came from "DNS"


async def test_authenticated_mail_from_a_new_address_is_a_verified_contact(email, db, dns):
    raw = dkim_signed(unsigned_mail("novo@gmail.com", "oi", "novo-1@mail.test"), "gmail.com")
    assert (await email.deliver(raw))[0] == 200
    await email.settle()

    message, identity, _ = await _first_inbound(db)
    assert identity.external_id == "novo@gmail.com"
    async with db.session() as session:
        assert await has_verified_contact(session, message.patient_id)


def _signed_by_the_attacker() -> bytes:
    return dkim_signed(_cancel_request(), "golpe.test")


def _body_changed_after_signing() -> bytes:
    signed = dkim_signed(unsigned_mail(MARIA, "tudo certo, obrigada", "x@mail.test"), "gmail.com")
    return signed.replace(b"tudo certo, obrigada", b"quero cancelar minha consulta")


def _from_changed_after_signing() -> bytes:
    signed = dkim_signed(
        unsigned_mail("golpista@gmail.com", "quero cancelar", "y@mail.test"), "gmail.com"
    )
    return signed.replace(b"golpista@gmail.com", MARIA.encode())


def _second_from_header() -> bytes:
    signed = dkim_signed(
        unsigned_mail("golpista@golpe.test", "cancelar", "z@mail.test"), "golpe.test"
    )
    return f"From: <{MARIA}>\r\n".encode() + signed


@pytest.mark.parametrize(
    "forge",
    [
        _signed_by_the_attacker,
        _body_changed_after_signing,
        _from_changed_after_signing,
        _second_from_header,
    ],
)
async def test_a_signature_that_does_not_vouch_for_the_from_proves_nothing(email, db, maria, forge):
    assert (await email.deliver(forge()))[0] == 200
    await email.settle()

    message, identity, conversation = await _first_inbound(db)
    assert message.patient_id != maria.id
    assert identity.external_id.startswith("unverified:")
    assert conversation.handoff_reason == "email_nao_autenticado"
    assert email.inbox.assistant.received == []
    assert await _appointment_status(db, maria) == AppointmentStatus.SCHEDULED


async def test_only_the_trusted_relays_authentication_results_count(email, db, maria):
    # The sender writes the trusted-looking header itself, with another authserv-id.
    forged = relay_pass(_cancel_request("a@mail.test"), authserv_id="mx.golpe.test")
    assert (await email.deliver(forged))[0] == 200
    await email.settle()
    message, _, _ = await _first_inbound(db)
    assert message.patient_id != maria.id
    assert email.inbox.assistant.received == []

    relayed = relay_pass(_cancel_request("b@mail.test"))  # by mx.clinica.test, the trusted one
    assert (await email.deliver(relayed))[0] == 200
    await email.settle()
    async with db.session() as session:
        query = select(Message.patient_id).where(Message.provider_message_id == "b@mail.test")
        assert (await session.execute(query)).scalar_one() == maria.id
    assert await _appointment_status(db, maria) == AppointmentStatus.CANCELLED


async def test_only_the_trusted_relays_topmost_header_counts(email, db, maria):
    # The relay found DMARC failing; a "pass" under its name further down was written by the
    # sender.
    relay_says_fail = (
        b"Authentication-Results: mx.clinica.test; dmarc=fail header.from=gmail.com\r\n"
    )
    assert (await email.deliver(relay_says_fail + relay_pass(_cancel_request())))[0] == 200
    await email.settle()

    message, _, _ = await _first_inbound(db)
    assert message.patient_id != maria.id
    assert email.inbox.assistant.received == []
