"""Messaging windows through the running clinic: a patient writes on Friday night, an
attendant answers on Monday. Typed text is refused with a clear reason, an approved template
goes out in the provider's real payload (WhatsApp Cloud at the fake Graph API, Twilio
Content at the fake Twilio API), and the patient's answer re-opens the conversation;
Messenger takes a person's reply on day 3 with the HUMAN_AGENT tag."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import ChannelIdentity, utcnow
from tests.channels.webhooks import SECRETS, deliver, text_message
from tests.clients import StaffClient
from tests.clinic import STAFF_PASSWORD
from tests.e2e.conftest import reset_reception

WINDOW_CLOSED = "Janela de 24 horas encerrada — envie um modelo aprovado."
WHATSAPP_TEMPLATE = {
    "kind": "whatsapp",
    "name": "retomar_atendimento",
    "language": "pt_BR",
    "purpose": "reply",
    "body": "Olá, {{1}}! Aqui é {{2}}, da recepção. Podemos continuar seu atendimento?",
    "variables": ["Nome do paciente", "Nome de quem atende"],
}
TWILIO_TEMPLATE = {
    "kind": "twilio",
    "name": "Retomar atendimento (Twilio)",
    "content_sid": "HX" + "b5b62575e6e4ff6129ad7c8efe1f983e",
    "purpose": "reply",
    "body": "Olá, {{1}}! Podemos continuar seu atendimento?",
    "variables": ["Nome do paciente"],
}


async def _staff(clinic, prefix: str) -> StaffClient:
    client = StaffClient(clinic.settings.web_url)
    await client.login(clinic.login_for(prefix).email, STAFF_PASSWORD)
    return client


async def _template(clinic, fields: dict) -> int:
    """The admin registers the template (or finds it from an earlier test)."""
    admin = await _staff(clinic, "admin@")
    try:
        status, body = await admin.request("POST", "/api/admin/templates", fields)
        if status == 409:
            _, listed = await admin.request("GET", "/api/admin/templates")
            return next(t["id"] for t in listed if t["name"] == fields["name"])
        assert status == 201, body
        return body["id"]
    finally:
        await admin.close()


async def _with_ana(clinic, channel: str, person: str) -> tuple[StaffClient, int]:
    """The patient asks for a person on `channel` and Ana (online) gets the conversation."""
    await reset_reception(clinic)
    ana = await _staff(clinic, "ana@")
    await ana.go_online()
    payload = text_message(channel, person, "quero falar com um atendente")
    status, _ = await deliver(
        clinic.settings.web_url, channel, payload, public_base_url=clinic.settings.public_base_url
    )
    assert status == 200
    for _ in range(120):
        _, listed = await ana.request("GET", "/api/conversations")
        mine = [c for c in listed if c["channel"] == channel and c["owner"] == "attendant"]
        if mine:
            return ana, mine[0]["id"]
        await asyncio.sleep(0.5)
    raise AssertionError("the conversation never reached the attendant")


async def _last_wrote(live_db, channel: str, person: str, hours_ago: float) -> None:
    """The patient's last message on the channel was `hours_ago` (Friday night)."""
    async with live_db.session() as session:
        identity = (
            await session.execute(
                select(ChannelIdentity).where(
                    ChannelIdentity.channel == channel, ChannelIdentity.external_id == person
                )
            )
        ).scalar_one()
        identity.last_inbound_at = utcnow() - timedelta(hours=hours_ago)


async def _status_of(staff: StaffClient, conversation_id: int, message_id: int) -> str:
    for _ in range(60):
        _, detail = await staff.request("GET", f"/api/conversations/{conversation_id}")
        [message] = [m for m in detail["messages"] if m["id"] == message_id]
        if message["delivery_status"] != "pending":
            return message["delivery_status"]
        await asyncio.sleep(0.25)
    return "pending"


async def test_a_monday_reply_to_a_friday_night_whatsapp_message_goes_as_a_template(
    clinic, provider, live_db
):
    person = "5511987652201"
    template_id = await _template(clinic, WHATSAPP_TEMPLATE)
    ana, conversation = await _with_ana(clinic, "whatsapp", person)
    try:
        await _last_wrote(live_db, "whatsapp", person, hours_ago=58)

        status, refused = await ana.request(
            "POST", f"/api/conversations/{conversation}/messages", {"text": "Bom dia!"}
        )
        assert (status, refused["error"]) == (409, WINDOW_CLOSED)
        _, window = await ana.request("GET", f"/api/conversations/{conversation}/window")
        assert (window["open"], window["closes_at"]) == (False, None)
        assert template_id in [t["id"] for t in window["templates"]]

        status, sent = await ana.request(
            "POST",
            f"/api/conversations/{conversation}/template-messages",
            {"template_id": template_id, "values": ["Maria", "Ana"]},
        )
        assert status == 201, sent
        expected = "Olá, Maria! Aqui é Ana, da recepção. Podemos continuar seu atendimento?"
        assert sent["text"] == expected
        assert await _status_of(ana, conversation, sent["id"]) == "sent"
        [request] = provider.sent(
            lambda r: r.recipient == person and r.json.get("type") == "template"
        )
        assert request.path == f"/graph/v24.0/{SECRETS['WHATSAPP_PHONE_NUMBER_ID']}/messages"
        assert request.json == {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": person,
            "type": "template",
            "template": {
                "name": "retomar_atendimento",
                "language": {"code": "pt_BR"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Maria"},
                            {"type": "text", "text": "Ana"},
                        ],
                    }
                ],
            },
        }

        # The patient answers: the window is open again and typed text goes as text.
        answer = text_message("whatsapp", person, "pode sim")
        await deliver(
            clinic.settings.web_url,
            "whatsapp",
            answer,
            public_base_url=clinic.settings.public_base_url,
        )
        for _ in range(60):
            _, window = await ana.request("GET", f"/api/conversations/{conversation}/window")
            if window["open"]:
                break
            await asyncio.sleep(0.25)
        assert window["open"] and window["closes_at"]
        status, typed = await ana.request(
            "POST", f"/api/conversations/{conversation}/messages", {"text": "Que bom!"}
        )
        assert status == 201, typed
        assert await _status_of(ana, conversation, typed["id"]) == "sent"
        assert provider.sent_to(person)[-1].json["text"]["body"] == "Que bom!"
    finally:
        await ana.close()
        await reset_reception(clinic)


async def test_a_monday_reply_on_twilio_whatsapp_goes_as_a_content_template(
    clinic, provider, live_db
):
    person = "whatsapp:+5511987652202"
    template_id = await _template(clinic, TWILIO_TEMPLATE)
    ana, conversation = await _with_ana(clinic, "twilio", person)
    try:
        await _last_wrote(live_db, "twilio", person, hours_ago=58)
        status, refused = await ana.request(
            "POST", f"/api/conversations/{conversation}/messages", {"text": "Bom dia!"}
        )
        assert (status, refused["error"]) == (409, WINDOW_CLOSED)

        status, sent = await ana.request(
            "POST",
            f"/api/conversations/{conversation}/template-messages",
            {"template_id": template_id, "values": ["Maria"]},
        )
        assert status == 201, sent
        assert sent["text"] == "Olá, Maria! Podemos continuar seu atendimento?"
        assert await _status_of(ana, conversation, sent["id"]) == "sent"
        [request] = provider.sent(lambda r: r.recipient == person and "ContentSid" in r.form)
        assert request.path.endswith(f"/Accounts/{SECRETS['TWILIO_ACCOUNT_SID']}/Messages.json")
        assert request.form["ContentSid"] == TWILIO_TEMPLATE["content_sid"]
        assert request.form["ContentVariables"] == '{"1": "Maria"}'
        assert "Body" not in request.form
    finally:
        await ana.close()
        await reset_reception(clinic)


async def test_a_person_answers_messenger_on_day_3_with_the_human_agent_tag(
    clinic, provider, live_db
):
    person = "9000000000002203"
    ana, conversation = await _with_ana(clinic, "messenger", person)
    try:
        await _last_wrote(live_db, "messenger", person, hours_ago=72)
        _, window = await ana.request("GET", f"/api/conversations/{conversation}/window")
        assert (window["open"], window["reach"]) == (True, "human_agent")
        assert window["templates"] == []

        status, sent = await ana.request(
            "POST", f"/api/conversations/{conversation}/messages", {"text": "Oi, sou a Ana."}
        )
        assert status == 201, sent
        assert await _status_of(ana, conversation, sent["id"]) == "sent"
        request = provider.sent_to(person)[-1]
        assert request.json["messaging_type"] == "MESSAGE_TAG"
        assert request.json["tag"] == "HUMAN_AGENT"
        assert request.json["message"] == {"text": "Oi, sou a Ana."}

        # After 7 days not even a person may write: said plainly, nothing sent.
        await _last_wrote(live_db, "messenger", person, hours_ago=24 * 8)
        sent_before = len(provider.sent_to(person))
        status, refused = await ana.request(
            "POST", f"/api/conversations/{conversation}/messages", {"text": "Oi?"}
        )
        assert status == 409
        assert refused["error"].startswith("Janela de 7 dias encerrada")
        assert len(provider.sent_to(person)) == sent_before
    finally:
        await ana.close()
        await reset_reception(clinic)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({**WHATSAPP_TEMPLATE, "name": "Retomar Atendimento"}, "Nome do modelo inválido"),
        ({**WHATSAPP_TEMPLATE, "variables": ["Nome"]}, "{{1}} até {{1}}"),
        ({**TWILIO_TEMPLATE, "content_sid": "abc"}, "Content SID inválido"),
    ],
)
async def test_the_admin_is_told_what_is_wrong_with_a_template(clinic, fields, error):
    admin = await _staff(clinic, "admin@")
    try:
        status, body = await admin.request("POST", "/api/admin/templates", fields)
        assert status == 400 and error in body["error"]
    finally:
        await admin.close()
