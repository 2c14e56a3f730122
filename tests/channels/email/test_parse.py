"""Mails (as mail clients and servers send them) read without HTTP, and our replies composed."""

import base64
from urllib.parse import urlencode

import pytest

from channels.base import Inbound, StatusUpdate, WebhookRequest
from channels.email import EmailChannel, EmailConfig, compose, parse, visible_text
from channels.mailauth import SenderCheck
from models import AuthorKind, ChannelIdentity, DeliveryStatus, Message
from tests.channels.webhooks import SECRETS, load_mail, text_message

RELAY = SECRETS["EMAIL_TRUSTED_AUTHSERV_ID"]


def read(raw: bytes):
    """Read as the clinic whose receiving relay is the tests' trusted one."""
    return parse(raw, SenderCheck(RELAY))


def only(events):
    assert len(events) == 1, events
    return events[0]


def test_a_mail_is_a_patient_message_from_the_normalised_address_without_signature():
    event = only(read(load_mail("plain")))

    assert isinstance(event, Inbound)
    assert event.external_user_id == event.email == "maria.silva@gmail.com"
    assert event.display_name == "Maria Silva"
    assert event.provider_message_id == "CAFx5g2M9+Jt3kQ@mail.gmail.com"
    assert event.text == "Olá, bom dia!\nGostaria de saber o horário de funcionamento de vocês."
    assert event.identity_details == {
        "thread": {
            "message_id": "CAFx5g2M9+Jt3kQ@mail.gmail.com",
            "references": ["CAFx5g2M9+Jt3kQ@mail.gmail.com"],
            "subject": "Agendar consulta",
        }
    }
    assert not event.automatic


def test_a_reply_keeps_only_the_new_text_and_the_threads_references():
    event = only(read(load_mail("reply_quoted")))

    assert event.text == "2"
    assert event.identity_details["thread"]["references"] == [
        "CAFx5g2M9+Jt3kQ@mail.gmail.com",
        "177512.3.omni@clinica.test",
        "CAFx5g2PqR7@mail.gmail.com",
    ]


def test_an_html_only_mail_is_read_as_text_without_the_quoted_history():
    event = only(read(load_mail("html_only")))

    assert event.text == "Boa tarde,\n\nVocês fazem exame de sangue aos sábados?"
    assert event.identity_details["thread"]["subject"] == "Exame de sangue"


def test_an_auto_reply_is_kept_but_marked_automatic():
    event = only(read(load_mail("auto_reply")))

    assert event.automatic
    assert event.text.startswith("Estou de ferias")


def test_a_bounce_fails_the_message_it_returns():
    event = only(read(load_mail("bounce")))

    assert event == StatusUpdate(
        "177512.9.omni@clinica.test",
        DeliveryStatus.FAILED,
        error="bounced: smtp; 550-5.1.1 The email account that you tried to reach does not exist.",
    )


def test_a_read_receipt_names_our_mail_but_is_no_bounce():
    event = only(read(load_mail("read_receipt")))

    assert not isinstance(event, StatusUpdate)


def test_attached_files_are_kept_as_references_and_are_not_text():
    event = only(read(load_mail("attachment")))

    assert event.text == ""
    [attachment] = event.attachments
    assert {k: v for k, v in attachment.items() if k != "content"} == {
        "type": "document",
        "mime_type": "application/pdf",
        "filename": "pedido.pdf",
        "size": 52,
    }
    assert base64.b64decode(attachment["content"]).startswith(b"%PDF-")


def test_a_mail_without_message_id_gets_the_same_key_on_every_delivery():
    first, again = only(read(load_mail("no_message_id"))), only(read(load_mail("no_message_id")))

    assert first.provider_message_id.startswith("sha256:")
    assert first.provider_message_id == again.provider_message_id


@pytest.mark.parametrize(
    ("body", "seen"),
    [
        (
            "Sim, pode ser.\n\nOn Mon, 9 Mar 2026 at 10:00, Clinica <c@x.test> wrote:\n> Oi",
            "Sim, pode ser.",
        ),
        ("Pode ser às 15h\n\n-- \nJoão\nDiretor", "Pode ser às 15h"),
        ("Ok!\n\n-----Mensagem original-----\nDe: Clínica", "Ok!"),
        ("Obrigado\n\nDe: Clínica <c@x.test>\nEnviado: segunda-feira\nPara: eu", "Obrigado"),
        ("De: manhã ou de tarde?\nTanto faz.", "De: manhã ou de tarde?\nTanto faz."),
        ("> citado\nresposta no meio\n> mais citado", "resposta no meio"),
        ("Quero remarcar\n\nEnviado do meu iPhone", "Quero remarcar"),
    ],
)
def test_what_the_bot_sees_is_what_the_patient_wrote(body, seen):
    assert visible_text(body) == seen


def _sendgrid_form(kind: str, raw: bytes) -> WebhookRequest:
    """SendGrid Inbound Parse's POST in raw mode: the mail in the `email` field."""
    if kind == "urlencoded":
        content_type = "application/x-www-form-urlencoded"
        body = urlencode({"to": "contato@clinica.test", "email": raw}).encode()
    else:
        content_type = "multipart/form-data; boundary=xYzZY"
        body = (
            b'--xYzZY\r\nContent-Disposition: form-data; name="to"\r\n\r\n'
            b"contato@clinica.test\r\n"
            b'--xYzZY\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
            + raw
            + b"\r\n--xYzZY--\r\n"
        )
    return WebhookRequest("/webhooks/email/webhook", "", {}, {"Content-Type": content_type}, body)


@pytest.mark.parametrize("kind", ["multipart", "urlencoded"])
def test_a_mail_posted_as_a_form_is_read_from_its_field_byte_for_byte(kind):
    raw = text_message("email", "ana.souza@example.com", "Olá, é às 15h?")  # 8-bit UTF-8
    channel = EmailChannel(EmailConfig("smtp://localhost", "c@clinica.test", "s", "", 30, RELAY))

    [event] = channel.decode(_sendgrid_form(kind, raw))

    assert event == only(read(raw))
    assert event.text == "Olá, é às 15h?"


def _outbound(text: str, author: AuthorKind, buttons=None) -> Message:
    return Message(text=text, author_kind=author, buttons=buttons or [])


def test_a_reply_is_threaded_and_marked_automatic_when_the_bot_wrote_it():
    identity = ChannelIdentity(
        external_id="maria.silva@gmail.com",
        details=only(read(load_mail("reply_quoted"))).identity_details,
    )

    mail = compose(
        _outbound("Certo!", AuthorKind.BOT, [{"title": "Sim", "payload": "/sim"}]),
        identity,
        "Clínica <contato@clinica.test>",
    )

    assert mail["Subject"] == "Re: Sua mensagem para a clinica"
    assert mail["In-Reply-To"] == "<CAFx5g2PqR7@mail.gmail.com>"
    assert mail["References"] == (
        "<CAFx5g2M9+Jt3kQ@mail.gmail.com> <177512.3.omni@clinica.test> <CAFx5g2PqR7@mail.gmail.com>"
    )
    assert mail["Message-ID"].endswith("@clinica.test>")
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail.get_content().startswith("Certo!\n\n1. Sim\n")


def test_a_persons_mail_is_not_marked_automatic_and_a_first_mail_has_its_own_subject():
    identity = ChannelIdentity(external_id="novo@paciente.test", details={})

    mail = compose(_outbound("Oi", AuthorKind.ATTENDANT), identity, "contato@clinica.test")

    assert mail["Auto-Submitted"] is None
    assert mail["In-Reply-To"] is None
    assert mail["Subject"] == "Sua mensagem para a clínica"


def test_a_reminders_calendar_event_is_attached():
    identity = ChannelIdentity(external_id="maria.silva@gmail.com", details={})
    message = _outbound("Lembrete da sua consulta", AuthorKind.BOT)
    ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    message.attachments = [{"kind": "ics", "filename": "consulta.ics", "content": ics}]

    mail = compose(message, identity, "contato@clinica.test")

    [attached] = list(mail.iter_attachments())
    assert attached.get_content_type() == "text/calendar"
    assert attached.get_filename() == "consulta.ics"
    assert attached.get_content().replace("\r\n", "\n") == ics.replace("\r\n", "\n")
