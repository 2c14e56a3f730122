"""WhatsApp through Meta's Cloud API: the business number's webhook and its messages endpoint.

Env: WHATSAPP_VERIFY_TOKEN, WHATSAPP_APP_SECRET, WHATSAPP_ACCESS_TOKEN,
WHATSAPP_PHONE_NUMBER_ID, META_GRAPH_URL; optional WHATSAPP_TEMPLATE_NAME and
WHATSAPP_TEMPLATE_LANGUAGE (the approved template used outside the 24 h window).

A person is known by their phone (`wa_id`) and, since 2026, by a business-scoped user id
(BSUID, e.g. `BR.1502576394655843`) that replaces the phone for users with a username; the
identity keeps both and is found by either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.base import (
    Event,
    Ignored,
    Inbound,
    StatusUpdate,
    file_links,
    from_epoch,
    numbered_options,
    send_parts,
    split_text,
    tolerant,
    unset,
)
from channels.meta import MetaAppConfig, MetaChannel
from core.catalog import t
from core.contacts import normalize_phone
from core.context import DeliveryFailed, Reach
from core.settings import Settings
from models import ChannelIdentity, DeliveryStatus, Message

log = logging.getLogger(__name__)

CHANNEL = "whatsapp"
ENV = ("WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN")
TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
REPLY_BUTTONS, REPLY_TITLE, REPLY_ID = 3, 20, 256
LIST_ROWS, ROW_TITLE, ROW_ID = 10, 24, 200
MEDIA = ("image", "audio", "video", "document", "sticker")
STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "played": DeliveryStatus.READ,  # a voice message was listened to
    "failed": DeliveryStatus.FAILED,
}


@dataclass(frozen=True)
class WhatsAppConfig:
    app: MetaAppConfig
    phone_number_id: str
    template_name: str
    template_language: str

    @property
    def missing(self) -> list[str]:
        return self.app.missing + unset({"WHATSAPP_PHONE_NUMBER_ID": self.phone_number_id})


# --- parsing -----------------------------------------------------------------------------------

Content = tuple[str, "str | None", list[dict[str, Any]]]  # text, payload, attachments


def _text(m: dict[str, Any]) -> Content:
    return m["text"]["body"], None, []


def _media(m: dict[str, Any]) -> Content:
    media = m[m["type"]]
    kept = {"type": m["type"], "id": media["id"]}
    for key in ("mime_type", "sha256", "filename", "voice", "animated"):
        if key in media:
            kept[key] = media[key]
    return str(media.get("caption") or ""), None, [kept]


def _interactive(m: dict[str, Any]) -> Content:
    interactive = m["interactive"]
    reply = interactive.get("button_reply") or interactive.get("list_reply")
    if reply is None:  # e.g. a Flow's nfm_reply: nothing the bot offered
        return "", None, [{"type": f"interactive:{interactive.get('type')}"}]
    return reply["title"], reply["id"], []


def _template_button(m: dict[str, Any]) -> Content:
    return m["button"]["text"], m["button"]["payload"], []


def _location(m: dict[str, Any]) -> Content:
    location = m["location"]
    kept = {
        "type": "location",
        "latitude": location["latitude"],
        "longitude": location["longitude"],
    }
    kept.update({k: location[k] for k in ("name", "address") if k in location})
    return "", None, [kept]


def _contacts(m: dict[str, Any]) -> Content:
    return "", None, [{"type": "contacts", "count": len(m["contacts"])}]


def _unsupported(_m: dict[str, Any]) -> Content:
    return "", None, [{"type": "unsupported"}]


READERS: dict[str, Callable[[dict[str, Any]], Content]] = {
    "text": _text,
    **{kind: _media for kind in MEDIA},
    "interactive": _interactive,
    "button": _template_button,
    "location": _location,
    "contacts": _contacts,
    "unsupported": _unsupported,
}


def _is_bsuid(value: str) -> bool:
    return not value.isdigit()


def _sender(
    m: dict[str, Any], contacts: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The contact entry of the message's sender and their ids: wa_id (phone) and BSUID."""
    sender, sender_bsuid = str(m["from"]), m.get("from_user_id")
    matching = [
        c
        for c in contacts
        if sender in (c.get("wa_id"), c.get("user_id"))
        or (sender_bsuid and sender_bsuid == c.get("user_id"))
    ]
    contact = matching[0] if matching else (contacts[0] if len(contacts) == 1 else {})
    from_phone = not _is_bsuid(sender)
    wa_id = contact.get("wa_id") or (sender if from_phone else None)
    bsuid = contact.get("user_id") or sender_bsuid or (None if from_phone else sender)
    return contact, {key: value for key, value in (("wa_id", wa_id), ("bsuid", bsuid)) if value}


def _message(m: dict[str, Any], contacts: list[dict[str, Any]]) -> list[Event]:
    kind = m.get("type")
    reader = READERS.get(kind) if kind is not None else None
    if reader is None:  # reaction, system, order, request_welcome...
        return [Ignored(f"message type {kind}")]
    contact, ids = _sender(m, contacts)
    text, payload, attachments = reader(m)
    return [
        Inbound(
            channel=CHANNEL,
            external_user_id=ids.get("wa_id") or ids["bsuid"],
            provider_message_id=m["id"],
            text=text,
            payload=payload,
            attachments=attachments,
            sent_at=from_epoch(m.get("timestamp")),
            display_name=(contact.get("profile") or {}).get("name"),
            phone=normalize_phone(f"+{ids['wa_id']}") if "wa_id" in ids else None,
            aliases=ids,
        )
    ]


def _status(s: dict[str, Any]) -> list[Event]:
    status = STATUSES.get(s["status"])
    if status is None:
        return [Ignored(f"status {s['status']}")]
    error = None
    if s.get("errors"):
        e = s["errors"][0]
        details = (e.get("error_data") or {}).get("details", "")
        error = f"WhatsApp error {e.get('code')}: {e.get('title', '')} {details}".strip()
    return [StatusUpdate(s["id"], status, at=from_epoch(s.get("timestamp")), error=error)]


def parse(payload: dict[str, Any]) -> list[Event]:
    """Every message and status of every change of every entry of a webhook body."""
    events: list[Event] = []
    for entry in payload["entry"]:
        for change in entry.get("changes", []):
            if change.get("field") != "messages":
                events.append(Ignored(f"field {change.get('field')}"))
                continue
            value = change.get("value") or {}
            contacts = value.get("contacts") or []
            for m in value.get("messages", []):
                events += tolerant("message", _message, m, contacts)
            for s in value.get("statuses", []):
                events += tolerant("status", _status, s)
            for error in value.get("errors", []):
                log.warning("whatsapp webhook error %s: %s", error.get("code"), error.get("title"))
    return events


# --- sending -------------------------------------------------------------------------------


def _recipient(identity: ChannelIdentity) -> dict[str, str]:
    """A phone goes in `to`; a person known only by BSUID is addressed by `recipient`."""
    details = identity.details or {}
    if wa_id := details.get("wa_id"):
        return {"to": wa_id}
    if bsuid := details.get("bsuid"):
        return {"recipient": bsuid}
    key = "recipient" if _is_bsuid(identity.external_id) else "to"
    return {key: identity.external_id}


def _interactive_body(text: str, buttons: list[dict[str, str]]) -> dict[str, Any] | None:
    """Reply buttons (≤ 3) or a list (≤ 10); None when the options do not fit either."""
    body = {"text": text or t("channel.reply_with_number")}
    if len(buttons) <= REPLY_BUTTONS and all(len(b["payload"]) <= REPLY_ID for b in buttons):
        replies = [
            {"type": "reply", "reply": {"id": b["payload"], "title": b["title"][:REPLY_TITLE]}}
            for b in buttons
        ]
        return {"type": "button", "body": body, "action": {"buttons": replies}}
    if len(buttons) <= LIST_ROWS and all(len(b["payload"]) <= ROW_ID for b in buttons):
        rows = [{"id": b["payload"], "title": b["title"][:ROW_TITLE]} for b in buttons]
        action = {"button": t("channel.options_button"), "sections": [{"rows": rows}]}
        return {"type": "list", "body": body, "action": action}
    return None


def message_bodies(text: str, buttons: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The Cloud API message objects for one of our messages: text parts within 4096
    characters, the options as native buttons or a list on the last one."""
    interactive = _interactive_body("", buttons) if buttons else None
    if buttons and interactive is None:
        text, buttons = numbered_options(text, buttons), []
    parts = split_text(text, TEXT_LIMIT)
    if buttons and len(parts[-1]) > INTERACTIVE_BODY_LIMIT:
        parts = parts[:-1] + split_text(parts[-1], INTERACTIVE_BODY_LIMIT)
    bodies: list[dict[str, Any]] = [
        {"type": "text", "text": {"preview_url": False, "body": part}} for part in parts
    ]
    if buttons:
        bodies[-1] = {"type": "interactive", "interactive": _interactive_body(parts[-1], buttons)}
    return bodies


def _media_body(attachment: dict[str, Any]) -> dict[str, Any]:
    """A stored file as a Cloud API media message, which WhatsApp fetches from the link."""
    kind = attachment.get("kind")
    kind = kind if kind in ("image", "audio", "video") else "document"
    media: dict[str, Any] = {"link": attachment["link"]}
    if kind == "document" and attachment.get("filename"):
        media["filename"] = attachment["filename"]
    return {"type": kind, kind: media}


class WhatsAppChannel(MetaChannel):
    name = CHANNEL
    config: WhatsAppConfig

    def sends_files(self, identity: ChannelIdentity) -> bool:
        return True

    @classmethod
    def load_config(cls, settings: Settings) -> WhatsAppConfig:
        env = settings.channel_env
        return WhatsAppConfig(
            app=MetaAppConfig.from_settings(settings, ENV),
            phone_number_id=env.get("WHATSAPP_PHONE_NUMBER_ID", ""),
            template_name=env.get("WHATSAPP_TEMPLATE_NAME", "lembrete_consulta"),
            template_language=env.get("WHATSAPP_TEMPLATE_LANGUAGE", "pt_BR"),
        )

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> list[Event]:
        return parse(payload)

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> list[str]:
        async def send(body: dict[str, Any]) -> str:
            request = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                **_recipient(identity),
                **body,
            }
            reply = await self.graph_post(f"{self.config.phone_number_id}/messages", request)
            message_id: str = reply["messages"][0]["id"]
            return message_id

        if reach == Reach.FREE:
            files = [_media_body(a) for a in file_links(message)]
            texts = message_bodies(message.text, message.buttons or [])
            if files and not message.text.strip() and not message.buttons:
                texts = []
            return await send_parts(message, texts + files, send)
        # Outside the window the template is the whole message, whatever went before it.
        return [await send(self.template_body(message))]

    def template_body(self, message: Message) -> dict[str, Any]:
        """Outside the 24 h window only an approved template may be sent. The message says
        which (`message.template`: name, language, parameters, set by reminders); its buttons
        become the template's quick-reply payloads. A one-time code (`copy_code`) goes in an
        authentication template, whose copy-code button takes the code as well."""
        template = message.template
        if not template:
            raise DeliveryFailed(
                "whatsapp: the patient's last message is more than 24 h old and this message "
                "has no approved template; only a template can be sent outside the window"
            )
        components: list[dict[str, Any]] = []
        if parameters := template.get("parameters"):
            params = [{"type": "text", "text": str(p)} for p in parameters]
            components.append({"type": "body", "parameters": params})
        if code := template.get("copy_code"):
            components.append(
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": str(code)}],
                }
            )
        for index, button in enumerate(message.buttons or []):
            components.append(
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": str(index),
                    "parameters": [{"type": "payload", "payload": button["payload"]}],
                }
            )
        return {
            "type": "template",
            "template": {
                "name": template.get("name") or self.config.template_name,
                "language": {"code": template.get("language") or self.config.template_language},
                "components": components,
            },
        }
