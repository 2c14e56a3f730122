"""Files patients send, on every channel that carries them: the platform fetches each from
where the provider said (a local fake media server per provider), with the channel's
credentials, after the webhook was answered; checks it by content; stores it; and the
message names the stored file."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from sqlalchemy import select

from channels.email import EmailChannel
from channels.messenger import MessengerChannel
from channels.telegram import TelegramChannel
from channels.twilio import TwilioChannel
from channels.whatsapp import WhatsAppChannel
from messaging.files import store_for
from models import Direction, Message, StoredFile
from tests.channels.webhooks import SECRETS, load_form, load_json, load_mail

# A real 1x1 PNG (what a phone camera sends is larger, not different in kind).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)
# A Windows program, as a file named like a PDF would carry it.
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64
MEDIA_ID = "1003383421387256"
TOKEN = SECRETS["TELEGRAM_BOT_TOKEN"]


def whatsapp_image(provider: Any, content: bytes, sender: str = "5511987650101") -> dict:
    """WhatsApp Cloud: the webhook names a media id; Graph says where its file is."""
    url = provider.serve_file(f"/media/{MEDIA_ID}", content, "image/jpeg")
    provider.respond(f"/graph/v24.0/{MEDIA_ID}", 200, {"url": url, "id": MEDIA_ID})
    payload = copy.deepcopy(load_json("whatsapp", "image"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = sender
    return payload


def twilio_image(provider: Any, content: bytes) -> dict:
    form = load_form("whatsapp_image")
    path = "/twilio/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    return {**form, "MediaUrl0": provider.serve_file(path, content, "image/jpeg")}


def messenger_image(provider: Any, content: bytes) -> dict:
    payload = copy.deepcopy(load_json("messenger", "image"))
    url = provider.serve_file("/graph/v24.0/cdn/example.jpg", content, "image/jpeg")
    payload["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"] = url
    return payload


def telegram_photo(provider: Any, content: bytes) -> dict:
    result = {"file_id": "x", "file_unique_id": "y", "file_path": "photos/file_1.jpg"}
    provider.respond("/getFile", 200, {"ok": True, "result": result})
    provider.serve_file(f"/telegram/file/bot{TOKEN}/photos/file_1.jpg", content, "image/jpeg")
    return load_json("telegram", "photo")


PHOTOS = {
    WhatsAppChannel: whatsapp_image,
    TwilioChannel: twilio_image,
    MessengerChannel: messenger_image,
    TelegramChannel: telegram_photo,
}


async def inbound_with_files(served: Any) -> Message:
    [message] = [m for m in await served.messages() if m.direction == Direction.INBOUND]
    return message


async def stored_files(served: Any) -> list[StoredFile]:
    async with served.ctx.db.session() as session:
        return list((await session.execute(select(StoredFile))).scalars())


@pytest.mark.parametrize("channel", list(PHOTOS), ids=lambda c: c.name)
async def test_a_photo_is_fetched_from_the_provider_checked_and_stored(serve, provider, channel):
    served = await serve(channel)

    status, _ = await served.deliver(PHOTOS[channel](provider, PNG))
    await served.settle()

    assert status == 200
    message = await inbound_with_files(served)
    [attachment] = message.attachments
    assert attachment["mime_type"] == "image/png"  # by its content, not what was declared
    assert attachment["kind"] == "image"
    assert not {"url", "id", "file_id"} & attachment.keys()  # the provider's reference is gone
    assert not message.files_pending
    [stored] = await stored_files(served)
    assert (stored.key, stored.message_id) == (attachment["file"], message.id)
    assert await store_for(served.ctx.settings).get(stored.key) == PNG
    # Staff screens hear of the stored file.
    pushed = [e["message"] for e in served.ctx.bus.of_type("message")]
    about = [m["attachments"] for m in pushed if m["id"] == message.id]
    assert about[-1][0]["file"] == stored.key


async def test_whatsapp_media_is_read_with_the_apps_token(serve, provider):
    served = await serve(WhatsAppChannel)

    await served.deliver(whatsapp_image(provider, PNG))
    await served.settle()

    reads = provider.sent(lambda r: r.method == "GET")
    assert [r.path for r in reads] == [f"/graph/v24.0/{MEDIA_ID}", f"/media/{MEDIA_ID}"]
    bearer = f"Bearer {SECRETS['WHATSAPP_ACCESS_TOKEN']}"
    assert all(r.headers["Authorization"] == bearer for r in reads)


async def test_twilio_media_is_read_with_the_accounts_credentials(serve, provider):
    served = await serve(TwilioChannel)

    await served.deliver(twilio_image(provider, PNG))
    await served.settle()

    [read] = provider.sent(lambda r: r.method == "GET")
    expected = f"{SECRETS['TWILIO_ACCOUNT_SID']}:{SECRETS['TWILIO_AUTH_TOKEN']}"
    assert read.headers["Authorization"] == "Basic " + base64.b64encode(expected.encode()).decode()


async def test_a_media_url_off_twilios_api_is_never_fetched(serve, provider):
    served = await serve(TwilioChannel)
    form = twilio_image(provider, PNG)
    form["MediaUrl0"] = f"{provider.url}/elsewhere/ME1"  # not under TWILIO_API_URL

    await served.deliver(form)
    await served.settle()

    assert provider.sent(lambda r: r.method == "GET") == []
    [attachment] = (await inbound_with_files(served)).attachments
    assert attachment["error"] == "unavailable"
    assert await stored_files(served) == []


async def test_a_program_sent_as_an_image_is_refused_by_its_content(serve, provider):
    served = await serve(WhatsAppChannel)

    await served.deliver(whatsapp_image(provider, PROGRAM))
    await served.settle()

    [attachment] = (await inbound_with_files(served)).attachments
    assert attachment["error"] == "type"
    assert "file" not in attachment
    assert await stored_files(served) == []


async def test_a_file_over_the_limit_is_refused_without_being_stored(serve, provider):
    served = await serve(WhatsAppChannel)
    limit = served.ctx.settings.max_file_bytes

    await served.deliver(whatsapp_image(provider, PNG + b"\x00" * limit))
    await served.settle()

    [attachment] = (await inbound_with_files(served)).attachments
    assert attachment["error"] == "too_large"
    assert await stored_files(served) == []


async def test_a_fetch_that_failed_is_retried_by_the_sweep(serve, provider):
    served = await serve(WhatsAppChannel)
    payload = whatsapp_image(provider, PNG)
    provider.reset()  # the media server is down when the message arrives
    provider.respond(f"/graph/v24.0/{MEDIA_ID}", 503, {"error": {"code": 2}})

    await served.deliver(payload)
    await served.settle()
    assert (await inbound_with_files(served)).files_pending

    whatsapp_image(provider, PNG)  # back up
    await served.inbox._sweep(None)

    message = await inbound_with_files(served)
    assert not message.files_pending
    assert message.attachments[0]["mime_type"] == "image/png"
    assert len(await stored_files(served)) == 1


async def test_a_mails_attached_pdf_is_stored_and_its_bytes_leave_the_message(serve):
    served = await serve(EmailChannel)

    status, _ = await served.deliver(load_mail("attachment"))
    await served.settle()

    assert status == 200
    [attachment] = (await inbound_with_files(served)).attachments
    assert (attachment["mime_type"], attachment["filename"]) == ("application/pdf", "pedido.pdf")
    assert "content" not in attachment
    [stored] = await stored_files(served)
    assert (await store_for(served.ctx.settings).get(stored.key)).startswith(b"%PDF-")
