"""WhatsApp and SMS through Twilio's Programmable Messaging: one webhook for inbound
messages and status callbacks, one Messages endpoint for sending.

Env: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM and/or TWILIO_SMS_FROM,
TWILIO_API_URL, PUBLIC_BASE_URL (the address Twilio calls, which the signature covers);
optional TWILIO_CONTENT_SID (the approved WhatsApp template used outside the 24 h window)
and TWILIO_CODE_CONTENT_SID (the one for one-time codes, messaging/verification.py).

A WhatsApp sender is `whatsapp:+55…` and an SMS sender `+55…`: two identities on this channel,
one patient through the phone.

Sending goes through twilio's own client (`messages.create_async` on its aiohttp-based
`AsyncTwilioHttpClient`), pointed at TWILIO_API_URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from channels.base import (
    PROVIDER_TIMEOUT,
    BadPayload,
    Event,
    Ignored,
    Inbound,
    Media,
    MediaUnavailable,
    ProviderChannel,
    StatusUpdate,
    WebhookRequest,
    file_links,
    numbered_options,
    retryable_status,
    send_parts,
    split_text,
    unset,
)
from core.contacts import normalize_phone
from core.context import DeliveryFailed, Reach
from core.settings import Settings
from models import ChannelIdentity, DeliveryStatus, Message, TemplatePurpose

CHANNEL = "twilio"
WEBHOOK_PATH = f"/webhooks/{CHANNEL}/webhook"
DEFAULT_API_URL = "https://api.twilio.com"
WHATSAPP = "whatsapp:"
TEXT_LIMIT = 1600  # Twilio's maximum; it splits SMS into segments itself
STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    whatsapp_from: str
    sms_from: str
    api_url: str
    content_sid: str
    public_base_url: str
    code_content_sid: str = ""

    @property
    def missing(self) -> list[str]:
        return unset(
            {
                "TWILIO_ACCOUNT_SID": self.account_sid,
                "TWILIO_AUTH_TOKEN": self.auth_token,
                "TWILIO_WHATSAPP_FROM or TWILIO_SMS_FROM": self.whatsapp_from or self.sms_from,
            }
        )


class Form(dict[str, str]):
    """Form fields (first value of each name), with `getall` for the signature validator."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        self._all: dict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._all[name].append(value)
            self.setdefault(name, value)

    def getall(self, name: str) -> list[str]:
        return self._all[name]


def _media(form: dict[str, str]) -> list[dict[str, Any]]:
    attachments = []
    for n in range(int(form.get("NumMedia") or 0)):
        content_type = form.get(f"MediaContentType{n}", "")
        kind = content_type.partition("/")[0]
        attachments.append(
            {
                "type": kind if kind in ("image", "audio", "video") else "document",
                "url": form.get(f"MediaUrl{n}", ""),
                "mime_type": content_type,
            }
        )
    if form.get("Latitude") and form.get("Longitude"):
        location = {
            "type": "location",
            "latitude": form["Latitude"],
            "longitude": form["Longitude"],
        }
        location.update({k.lower(): form[k] for k in ("Address", "Label") if form.get(k)})
        attachments.append(location)
    return attachments


def parse(form: dict[str, str]) -> list[Event]:
    """One Twilio request: an inbound WhatsApp or SMS message, or a status callback."""
    if "MessageStatus" in form and form.get("SmsStatus") != "received":
        status = STATUSES.get(form["MessageStatus"])
        if status is None:  # queued, sending, accepted, scheduled: not a step we show
            return [Ignored(f"status {form['MessageStatus']}")]
        error = None
        if form.get("ErrorCode"):
            error = f"Twilio error {form['ErrorCode']}: {form.get('ErrorMessage', '')}".strip()
        return [StatusUpdate(form["MessageSid"], status, error=error)]
    sender = form["From"]
    return [
        Inbound(
            channel=CHANNEL,
            external_user_id=sender,
            provider_message_id=form["MessageSid"],
            text=form.get("Body", ""),
            payload=form.get("ButtonPayload") or None,
            attachments=_media(form),
            display_name=form.get("ProfileName") or None,
            phone=normalize_phone(sender.removeprefix(WHATSAPP)),
        )
    ]


# twilio's HTTP client logs every request's URL (with the account) and headers at INFO:
# only its warnings reach the clinic's logs.
_CLIENT_LOG = logging.getLogger("twilio.async_http_client")
_CLIENT_LOG.setLevel(logging.WARNING)


class TwilioChannel(ProviderChannel):
    name = CHANNEL
    max_body: ClassVar[int] = 64 * 1024
    config: TwilioConfig

    @classmethod
    def load_config(cls, settings: Settings) -> TwilioConfig:
        env = settings.channel_env
        return TwilioConfig(
            account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            whatsapp_from=env.get("TWILIO_WHATSAPP_FROM", ""),
            sms_from=env.get("TWILIO_SMS_FROM", ""),
            api_url=env.get("TWILIO_API_URL", DEFAULT_API_URL).rstrip("/"),
            content_sid=env.get("TWILIO_CONTENT_SID", ""),
            public_base_url=settings.public_base_url,
            code_content_sid=env.get("TWILIO_CODE_CONTENT_SID", ""),
        )

    # --- webhook ---------------------------------------------------------------------------

    @staticmethod
    def _form(request: WebhookRequest) -> Form:
        try:
            return Form(parse_qsl(request.body.decode(), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise BadPayload("body is not a valid form") from exc

    def verify(self, request: WebhookRequest) -> bool:
        """X-Twilio-Signature over the public URL Twilio called plus the sorted form fields."""
        signature = request.headers.get("X-Twilio-Signature")
        if not signature:
            return False
        url = f"{self.config.public_base_url}{request.path}"
        if request.query_string:
            url = f"{url}?{request.query_string}"
        try:
            form = self._form(request)
        except BadPayload:
            return False
        # twilio ships no type information: validate() answers a bool.
        valid: bool = RequestValidator(self.config.auth_token).validate(url, form, signature)
        return valid

    def decode(self, request: WebhookRequest) -> list[Event]:
        form = self._form(request)
        if not form.get("MessageSid") or not (form.get("From") or form.get("MessageStatus")):
            raise BadPayload("MessageSid and From (or MessageStatus) are required")
        return parse(form)

    def ack(self) -> web.Response:
        # Twilio reads the answer as TwiML: an empty Response sends nothing back.
        return web.Response(text=TWIML_EMPTY, content_type="text/xml")

    async def fetch_media(self, attachment: dict[str, Any], limit: int) -> Media | None:
        """A `MediaUrl` on Twilio's own API, read with the account's credentials (Twilio
        answers with a redirect to the file)."""
        url = attachment.get("url")
        if not url or attachment.get("type") == "location":
            return None
        if not str(url).startswith(f"{self.config.api_url}/"):
            raise MediaUnavailable("media URL is not on Twilio's API")
        auth = aiohttp.BasicAuth(self.config.account_sid, self.config.auth_token)
        return Media(await self.download(str(url), limit=limit, auth=auth))

    # --- sending ---------------------------------------------------------------------------

    def sends_files(self, identity: ChannelIdentity) -> bool:
        """WhatsApp through Twilio takes a MediaUrl; an SMS (no MMS in Brazil) gets links."""
        return identity.external_id.startswith(WHATSAPP)

    def send_lane(self, identity: ChannelIdentity) -> str:
        """A WhatsApp sender and an SMS long code have their own, different throughput."""
        return "twilio_whatsapp" if identity.external_id.startswith(WHATSAPP) else "twilio_sms"

    def _from(self, whatsapp: bool) -> str:
        number = self.config.whatsapp_from if whatsapp else self.config.sms_from
        if not number:
            variable = "TWILIO_WHATSAPP_FROM" if whatsapp else "TWILIO_SMS_FROM"
            raise DeliveryFailed(f"twilio: {variable} is not set")
        return f"{WHATSAPP}{number.removeprefix(WHATSAPP)}" if whatsapp else number

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> list[str]:
        to = identity.external_id
        whatsapp = to.startswith(WHATSAPP)
        common = {
            "to": to,
            "from_": self._from(whatsapp),
            "status_callback": f"{self.config.public_base_url}{WEBHOOK_PATH}",
        }
        # One HTTP session per delivery, closed with it whatever happens: the channel has no
        # shutdown hook to close a longer-lived one.
        async with AsyncTwilioHttpClient(logger=_CLIENT_LOG) as http:
            send = self._sender(http, common)
            if reach == Reach.TEMPLATE:
                return [await send(self.template_fields(message))]
            text = numbered_options(message.text, message.buttons or [])
            parts: list[dict[str, Any]] = [{"body": part} for part in split_text(text, TEXT_LIMIT)]
            files = [{"media_url": [a["link"]]} for a in file_links(message)]
            if files and not text.strip():
                parts = []
            return await send_parts(message, parts + files, send)

    def _sender(
        self, http: AsyncTwilioHttpClient, common: dict[str, str]
    ) -> Callable[[dict[str, Any]], Awaitable[str]]:
        """Sends one message (`common` plus its own fields) and returns its sid."""
        client = Client(self.config.account_sid, self.config.auth_token, http_client=http)
        client.api.base_url = self.config.api_url
        messages = client.messages

        async def send(fields: dict[str, Any]) -> str:
            try:
                async with asyncio.timeout(PROVIDER_TIMEOUT.total):  # the client sets none
                    sent = await messages.create_async(**common, **fields)
            except TwilioRestException as exc:
                raise _refused(exc) from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise DeliveryFailed(
                    f"provider unreachable: {type(exc).__name__}", retryable=True
                ) from exc
            sid: str = sent.sid  # twilio ships no type information
            return sid

        return send

    def template_fields(self, message: Message) -> dict[str, str]:
        """WhatsApp outside the 24 h window: only an approved Content template (ContentSid);
        the message's template parameters become its numbered variables. A one-time code
        (`copy_code`) goes only in its own template, never in the reminders', and so does a
        change notice: TWILIO_CONTENT_SID is the reminders' (when the registry has none)."""
        template = message.template
        if not template:
            raise DeliveryFailed(
                "twilio: the patient's last WhatsApp message is more than 24 h old and this "
                "message has no approved template (ContentSid)"
            )
        name = str(template.get("name") or "")
        if template.get("copy_code"):
            content_sid, variable = self.config.code_content_sid, "TWILIO_CODE_CONTENT_SID"
        else:
            # TWILIO_CONTENT_SID is the reminders'. Another approved message (a change notice)
            # goes only in its own, never in the reminders' with its values.
            purpose = template.get("purpose")
            reminder = purpose in (None, TemplatePurpose.REMINDER)
            fallback = self.config.content_sid if reminder else ""
            content_sid = template.get("content_sid") or (
                name if name.startswith("HX") else fallback
            )
            variable = "TWILIO_CONTENT_SID" if reminder else f"a ContentSid for {purpose}"
        if not content_sid:
            raise DeliveryFailed(f"twilio: no ContentSid for the template ({variable})")
        variables = {str(n): str(v) for n, v in enumerate(template.get("parameters") or [], 1)}
        return {"content_sid": content_sid, "content_variables": json.dumps(variables)}


def _refused(exc: TwilioRestException) -> DeliveryFailed:
    """Twilio's refusal in its own terms; the client prefixes Twilio's message with what it
    was doing ("Unable to create record: ")."""
    reason = exc.msg.split(": ", 1)[-1]
    return DeliveryFailed(
        f"twilio: HTTP {exc.status}, Twilio error {exc.code}: {reason}".strip(),
        retryable=retryable_status(exc.status),
    )
