"""What every channel test needs: the one fixture loader (payloads recorded from the providers'
documentation, in `tests/channels/<channel>/fixtures/`), the channels' test configuration,
and requests signed exactly as each provider signs them."""

from __future__ import annotations

import email
import hashlib
import hmac
import itertools
import json
import time
from email import policy
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import aiohttp
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).parent
PUBLIC_BASE_URL = "https://clinica.example"

SECRETS = {
    "WHATSAPP_VERIFY_TOKEN": "wa-verify-token",
    "WHATSAPP_APP_SECRET": "wa-app-secret",
    "WHATSAPP_ACCESS_TOKEN": "wa-access-token",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "MESSENGER_VERIFY_TOKEN": "fb-verify-token",
    "MESSENGER_APP_SECRET": "fb-app-secret",
    "MESSENGER_PAGE_ACCESS_TOKEN": "fb-page-token",
    "INSTAGRAM_VERIFY_TOKEN": "ig-verify-token",
    "INSTAGRAM_APP_SECRET": "ig-app-secret",
    "INSTAGRAM_ACCESS_TOKEN": "ig-access-token",
    "TWILIO_ACCOUNT_SID": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "TWILIO_AUTH_TOKEN": "twilio-auth-token",
    "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886",
    "TWILIO_SMS_FROM": "+15005550006",
    "TELEGRAM_BOT_TOKEN": "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
    "TELEGRAM_SECRET_TOKEN": "tg-secret_token-1",
    "EMAIL_FROM": "Clínica Vida Plena <contato@clinica.test>",
    "EMAIL_INBOUND_SECRET": "mail-inbound-secret",
    "IMAP_POLL_SECONDS": "1",
    "EMAIL_TRUSTED_AUTHSERV_ID": "mx.clinica.test",
}
# The header that carries each channel's signature or secret.
SIGNATURE_HEADER = {
    "whatsapp": "X-Hub-Signature-256",
    "messenger": "X-Hub-Signature-256",
    "instagram": "X-Hub-Signature-256",
    "twilio": "X-Twilio-Signature",
    "telegram": "X-Telegram-Bot-Api-Secret-Token",
    "email": "Authorization",
}
APP_SECRETS = {
    "whatsapp": SECRETS["WHATSAPP_APP_SECRET"],
    "messenger": SECRETS["MESSENGER_APP_SECRET"],
    "instagram": SECRETS["INSTAGRAM_APP_SECRET"],
}


def channel_env(provider_url: str, smtp_url: str, imap_url: str) -> dict[str, str]:
    """Every channel enabled, its API base pointed at the local fake servers."""
    return {
        **SECRETS,
        "META_GRAPH_URL": f"{provider_url}/graph/v24.0",
        "TWILIO_API_URL": f"{provider_url}/twilio",
        "TELEGRAM_API_URL": f"{provider_url}/telegram",
        "SMTP_URL": smtp_url,
        "IMAP_URL": imap_url,
    }


def fixture_path(channel: str, event: str) -> Path:
    found = list((ROOT / channel / "fixtures").glob(f"{event}.*"))
    assert len(found) == 1, f"no single fixture {channel}/{event}: {found}"
    return found[0]


def load_json(channel: str, event: str) -> dict[str, Any]:
    return json.loads(fixture_path(channel, event).read_text(encoding="utf-8"))


def load_form(event: str) -> dict[str, str]:
    """A Twilio request: one `Name=value` per line, values URL-encoded as on the wire."""
    lines = fixture_path("twilio", event).read_text().splitlines()
    return {name: unquote(value) for name, _, value in (line.partition("=") for line in lines)}


def load_mail(event: str, *, relayed: bool = True) -> bytes:
    """A recorded mail as the clinic's receiving relay hands it over (`relayed`: with its
    DMARC pass for the From domain), or as the sender wrote it."""
    raw = fixture_path("email", event).read_bytes()
    return relay_pass(raw) if relayed else raw


def relay_pass(raw: bytes, authserv_id: str = SECRETS["EMAIL_TRUSTED_AUTHSERV_ID"]) -> bytes:
    """The mail with the Authentication-Results header a relay adds when it found the
    sender's DKIM signature and DMARC alignment good."""
    sender = email.message_from_bytes(raw, policy=policy.default)["From"].addresses[0]
    domain = sender.domain.lower()
    header = (
        f"Authentication-Results: {authserv_id};\r\n dkim=pass header.d={domain};"
        f"\r\n dmarc=pass (p=REJECT) header.from={domain}\r\n"
    )
    return header.encode() + raw


_fresh = itertools.count(int(time.time()) % 1_000_000 * 1000)


def text_message(channel: str, sender: str, text: str = "oi", message_id: str = "") -> Any:
    """The channel's recorded text message, from `sender`, saying `text`, with a fresh id
    (or `message_id`): what the provider sends when a patient writes."""
    n = next(_fresh)
    if channel == "whatsapp":
        payload = load_json(channel, "text")
        value = payload["entry"][0]["changes"][0]["value"]
        value["contacts"][0]["wa_id"] = sender
        value["messages"][0].update({"from": sender, "id": message_id or f"wamid.T{n}"})
        value["messages"][0]["text"]["body"] = text
        return payload
    if channel in ("messenger", "instagram"):
        payload = load_json(channel, "text")
        item = payload["entry"][0]["messaging"][0]
        item["sender"]["id"] = sender
        item["message"] = {"mid": message_id or f"m_T{n}", "text": text}
        return payload
    if channel == "twilio":
        form = load_form("whatsapp_text" if sender.startswith("whatsapp:") else "sms_text")
        return {**form, "From": sender, "Body": text, "MessageSid": message_id or f"SMT{n}"}
    if channel == "telegram":
        payload = load_json(channel, "text")
        payload["update_id"] = int(message_id or n)
        message = payload["message"]
        message["chat"]["id"] = message["from"]["id"] = int(sender)
        message.update(message_id=payload["update_id"], text=text)
        return payload
    assert channel == "email"
    return relay_pass(unsigned_mail(sender, text, message_id or f"T{n}@mail.test"))


def unsigned_mail(sender: str, text: str, message_id: str) -> bytes:
    """The recorded plain mail from `sender` saying `text`, as written: nothing vouches for
    its From."""
    raw = load_mail("plain", relayed=False)
    headers, _, _body = raw.decode().partition("\r\n\r\n")
    headers = headers.replace("Maria Silva <Maria.Silva@Gmail.com>", f"Paciente <{sender}>")
    headers = headers.replace("CAFx5g2M9+Jt3kQ@mail.gmail.com", message_id)
    headers = headers.replace("quoted-printable", "8bit")
    return f"{headers}\r\n\r\n{text}\r\n".encode()


def receipt(channel: str, event: str, provider_message_id: str, person: str) -> Any:
    """The channel's recorded delivery receipt `event` about our message
    `provider_message_id` to `person` (Messenger's read receipt: everything sent until now)."""
    if channel == "twilio":
        form = load_form(event)
        return {**form, "MessageSid": provider_message_id, "SmsSid": provider_message_id}
    payload = load_json(channel, event)
    if channel == "whatsapp":
        status = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
        status.update(id=provider_message_id, recipient_id=person)
        return payload
    assert channel in ("messenger", "instagram")
    item = payload["entry"][0]["messaging"][0]
    item["sender"]["id"] = person
    kind = "delivery" if "delivery" in item else "read"
    if "mids" in item[kind]:
        item[kind]["mids"] = [provider_message_id]
    elif "mid" in item[kind]:
        item[kind]["mid"] = provider_message_id
    if "watermark" in item[kind]:
        item[kind]["watermark"] = int(time.time() * 1000) + 1000
    return payload


def webhook_path(channel: str) -> str:
    return f"/webhooks/{channel}/webhook"


def signature_headers(
    channel: str,
    body: bytes,
    *,
    form: dict[str, str] | None = None,
    public_base_url: str = PUBLIC_BASE_URL,
) -> dict[str, str]:
    """The headers a provider sends with this exact body, signed with the test secrets."""
    if channel in APP_SECRETS:
        digest = hmac.new(APP_SECRETS[channel].encode(), body, hashlib.sha256).hexdigest()
        return {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
    if channel == "twilio":
        url = f"{public_base_url}{webhook_path(channel)}"
        validator = RequestValidator(SECRETS["TWILIO_AUTH_TOKEN"])
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": validator.compute_signature(url, form or {}),
            "I-Twilio-Idempotency-Token": hashlib.sha1(body).hexdigest(),
        }
    if channel == "telegram":
        return {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": SECRETS["TELEGRAM_SECRET_TOKEN"],
        }
    assert channel == "email"
    return {
        "Content-Type": "message/rfc822",
        "Authorization": f"Bearer {SECRETS['EMAIL_INBOUND_SECRET']}",
    }


def signed(
    channel: str, payload: Any, *, public_base_url: str = PUBLIC_BASE_URL
) -> tuple[bytes, dict[str, str]]:
    """The body and headers a provider sends for this payload (a JSON object, a Twilio form,
    or a raw mail)."""
    if channel == "email":
        body = payload
    elif channel == "twilio":
        body = urlencode(payload).encode()
    else:
        body = json.dumps(payload).encode()
    form = payload if channel == "twilio" else None
    return body, signature_headers(channel, body, form=form, public_base_url=public_base_url)


async def post(
    base_url: str, channel: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base_url}{webhook_path(channel)}", data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.text()


async def deliver(
    base_url: str, channel: str, payload: Any, *, public_base_url: str = PUBLIC_BASE_URL
) -> tuple[int, str]:
    """POST a payload to a channel's webhook as its provider would."""
    body, headers = signed(channel, payload, public_base_url=public_base_url)
    return await post(base_url, channel, body, headers)


def replies_to(person: str, channel: str, provider: Any, smtp_server: Any) -> list[str]:
    """The texts the clinic sent this person on this channel (fake provider or SMTP server)."""
    if channel == "email":
        return [mail.get_content().strip() for mail in smtp_server.sent_to(person)]
    return [request.text for request in provider.sent_to(person)]
