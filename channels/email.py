"""E-mail: inbound by IMAP polling (in the web process, `EmailChannel.run_in_background`) and
by an inbound webhook that takes raw MIME (a mail server's pipe, or SendGrid Inbound Parse in
raw mode, the mail in a form field); outbound by SMTP.

Env: SMTP_URL (smtp://user:pass@host:587, STARTTLS when offered; smtps:// for implicit TLS),
EMAIL_FROM, and for inbound EMAIL_INBOUND_SECRET (webhook: `Authorization: Bearer <secret>`
or Basic auth with the secret as password) and/or IMAP_URL (imaps://user:pass@host/INBOX),
IMAP_POLL_SECONDS (30); EMAIL_TRUSTED_AUTHSERV_ID, the authserv-id of the clinic's receiving
relay whose Authentication-Results header is believed (channels/mailauth.py).

The person is their normalised address — when the mail is authenticated (an aligned DKIM
signature, or the trusted relay's DMARC pass). Unauthenticated mail is filed under an identity
of its own, `unverified:<address>`, whose patient is never one the clinic already knows by
that address (it is linked by nothing); it is kept, shown to staff and handed to a person
with the reason `email_nao_autenticado`, never to the bot, so it can act on no appointment.

Replies keep the patient's thread (In-Reply-To and References of their latest message, kept
on the identity); the bot sees only the new text
(quoted history and signatures stripped); automatic mail (Auto-Submitted, mailing lists) is
stored but never answered; bounces mark the message that bounced as failed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import hashlib
import imaplib
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import HeaderParser
from email.utils import getaddresses, make_msgid
from html.parser import HTMLParser
from typing import Any, ClassVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from channels.base import (
    UNAUTHENTICATED,
    BadPayload,
    Event,
    HandleEvents,
    Ignored,
    Inbound,
    Media,
    MediaUnavailable,
    ProviderChannel,
    StatusUpdate,
    WebhookRequest,
    numbered_options,
    same_secret,
    tolerant,
    unset,
)
from channels.mailauth import SenderCheck
from core.catalog import t
from core.contacts import normalize_email
from core.context import DeliveryFailed, Reach
from core.settings import Settings
from models import AuthorKind, ChannelIdentity, DeliveryStatus, Message

log = logging.getLogger(__name__)

CHANNEL = "email"
SMTP_TIMEOUT = 30
THREAD_REFERENCES = 10  # how many ancestors a reply's References header carries
_MESSAGE_IDS = re.compile(r"<([^<>\s]+)>")
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
# SendGrid Inbound Parse's raw mode: the whole mail in this form field.
MAIL_FIELD = "email"
# The identity of mail whose sender could not be authenticated: `unverified:<address>`.
UNVERIFIED_PREFIX = "unverified:"
# The handoff reason staff see for it.
NOT_AUTHENTICATED = "email_nao_autenticado"


@dataclass(frozen=True)
class EmailConfig:
    smtp_url: str
    email_from: str
    inbound_secret: str
    imap_url: str
    imap_poll_seconds: float
    trusted_authserv_id: str = ""

    @property
    def missing(self) -> list[str]:
        return unset({"SMTP_URL": self.smtp_url, "EMAIL_FROM": self.email_from})


# --- reading mail ------------------------------------------------------------------------------


class _VisibleHtml(HTMLParser):
    """The text of an HTML mail, without quoted replies (blockquote), styles or scripts."""

    SKIP = frozenset({"blockquote", "style", "script", "head"})
    BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skipping += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _VisibleHtml()
    parser.feed(html)
    return re.sub(r"\n\s*\n+", "\n\n", "".join(parser.parts)).strip()


_REPLY_HEADER = re.compile(
    r"^(on\s.+\swrote:|em\s.+\sescreveu:|-+\s*(original message|mensagem original)\s*-+)$", re.I
)
_HEADER_BLOCK = re.compile(r"^(de|from):\s", re.I)
_HEADER_BLOCK_NEXT = re.compile(r"^(enviad[ao]|sent|data|date|para|to):\s", re.I)
_SIGNATURE = re.compile(
    r"^(--\s?|__+|enviado d[eo] (meu )?.+|sent from my .+|get outlook for .+)$", re.I
)


def visible_text(body: str) -> str:
    """What the patient wrote in this mail: quoted lines, the quoted history below a reply
    header ("Em ... escreveu:", "On ... wrote:", Outlook's "De:/Enviado:") and the signature
    are cut."""
    lines = body.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for n, line in enumerate(lines):
        stripped = line.strip()
        next_line = lines[n + 1].strip() if n + 1 < len(lines) else ""
        # Mail clients wrap a long "On ... wrote:" over two lines.
        if _REPLY_HEADER.match(stripped) or _REPLY_HEADER.match(f"{stripped} {next_line}"):
            break
        if _HEADER_BLOCK.match(stripped) and _HEADER_BLOCK_NEXT.match(next_line):
            break
        if _SIGNATURE.match(line.rstrip()):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _ids(header: object) -> list[str]:
    return _MESSAGE_IDS.findall(str(header or ""))


def _body(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    return html_to_text(content) if part.get_content_subtype() == "html" else content


def _attachments(mail: EmailMessage) -> list[dict[str, Any]]:
    """The mail's files, their bytes inline (base64): a mail carries its files, so they are
    kept with the message until `messaging.files` has checked and stored them."""
    found = []
    for part in mail.iter_attachments():
        main = part.get_content_maintype()
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        found.append(
            {
                "type": main if main in ("image", "audio", "video") else "document",
                "mime_type": part.get_content_type(),
                "filename": part.get_filename(),
                "size": len(content),
                "content": base64.b64encode(content).decode(),
            }
        )
    return found


def is_automatic(mail: EmailMessage) -> bool:
    """Auto-replies (RFC 3834 Auto-Submitted), list and bulk mail: never answered, so two
    robots never talk to each other."""
    auto_submitted = str(mail.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(mail.get("Precedence", "")).strip().lower()
    return (
        auto_submitted != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or "List-Id" in mail
        or "X-Autoreply" in mail
        or "X-Autorespond" in mail
    )


def _bounce(mail: EmailMessage) -> list[Event]:
    """A delivery status notification: the message it returns failed."""
    original_id, diagnostic = None, ""
    for part in mail.walk():
        kind = part.get_content_type()
        # The email package types payloads loosely; its parser reads a delivery-status part as
        # a list of header blocks, a headers part as bytes, an attached mail as the part's one
        # message.
        if kind == "message/delivery-status":
            for block in cast("list[EmailMessage]", part.get_payload()):
                diagnostic = str(block.get("Diagnostic-Code") or block.get("Status") or diagnostic)
        elif kind == "text/rfc822-headers":
            returned = cast("bytes", part.get_payload(decode=True))
            headers = HeaderParser().parsestr(returned.decode(errors="replace"))
            original_id = next(iter(_ids(headers.get("Message-ID"))), original_id)
        elif kind == "message/rfc822":
            attached = cast("EmailMessage", part.get_payload(0))
            original_id = next(iter(_ids(attached.get("Message-ID"))), original_id)
    if original_id is None:
        return [Ignored("bounce without the original Message-ID")]
    return [StatusUpdate(original_id, DeliveryStatus.FAILED, error=f"bounced: {diagnostic}"[:500])]


def _mail(raw: bytes, authenticated: SenderCheck) -> list[Event]:
    mail = email.message_from_bytes(raw, policy=policy.default)
    if mail.get_content_type() == "multipart/report":
        # Only a delivery status notification is a bounce; a read receipt (disposition
        # notification) or any other report names our mail without saying it failed.
        report = str(mail.get_param("report-type") or "").lower()
        return _bounce(mail) if report == "delivery-status" else [Ignored(f"report {report}")]
    name, address = next(iter(getaddresses([str(mail.get("From", ""))])), ("", ""))
    sender = normalize_email(address)
    if sender is None:
        return [Ignored("mail without a valid From")]
    message_id = next(iter(_ids(mail.get("Message-ID"))), None)
    if message_id is None or len(message_id) > 255:
        # No usable Message-ID: the same mail hashes to the same key on every delivery.
        message_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    subject = str(mail.get("Subject", "")).strip()
    references = [*_ids(mail.get("References")), *_ids(mail.get("In-Reply-To")), message_id]
    attachments = _attachments(mail)
    date = mail["Date"].datetime if mail["Date"] is not None else None
    if date is not None and date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    thread = {
        "message_id": message_id,
        "references": list(dict.fromkeys(references))[-THREAD_REFERENCES:],
        "subject": subject,
    }
    details: dict[str, Any] = {"thread": thread}
    person: str | None = sender
    if not authenticated(raw, mail):
        # Anyone can write any From: the address speaks for nobody the clinic knows.
        details[UNAUTHENTICATED] = NOT_AUTHENTICATED
        person = None
    return [
        Inbound(
            channel=CHANNEL,
            external_user_id=sender if person else f"{UNVERIFIED_PREFIX}{sender}",
            provider_message_id=message_id,
            # A mail with only a subject says it there; with files, the files are the point.
            text=visible_text(_body(mail)) or ("" if attachments else subject),
            attachments=attachments,
            sent_at=date,
            display_name=name or None,
            email=person,
            identity_details=details,
            automatic=is_automatic(mail),
        )
    ]


def parse(raw: bytes, authenticated: SenderCheck) -> list[Event]:
    """One raw MIME mail as events: a patient's message (from its address when
    `authenticated` passes it, else from an unverified identity), or the bounce of one of
    ours."""
    return tolerant("mail", _mail, raw, authenticated)


def address_of(identity: ChannelIdentity) -> str:
    """Where mail to this identity goes: its address, also for an unverified identity (the
    address's owner receives it, never the one who forged it)."""
    return identity.external_id.removeprefix(UNVERIFIED_PREFIX)


# --- sending mail ------------------------------------------------------------------------------


def compose(message: Message, identity: ChannelIdentity, sender: str) -> EmailMessage:
    """Our message as a mail in the patient's thread, with a reminder's .ics attached. Bot
    and system mail is marked Auto-Submitted so the patient's auto-responder does not answer
    it."""
    thread = (identity.details or {}).get("thread") or {}
    subject = thread.get("subject") or t("channel.email_subject")
    if not re.match(r"^(re|res|ref):", subject, re.I):
        subject = f"Re: {subject}" if thread.get("subject") else subject
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = address_of(identity)
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain=Address(addr_spec=_address(sender)).domain)
    if thread.get("message_id"):
        mail["In-Reply-To"] = f"<{thread['message_id']}>"
        mail["References"] = " ".join(f"<{ref}>" for ref in thread.get("references", []))
    if message.author_kind in (AuthorKind.BOT, AuthorKind.SYSTEM):
        mail["Auto-Submitted"] = "auto-replied"
    mail.set_content(numbered_options(message.text, message.buttons or []))
    for generated in message.attachments or []:
        if generated.get("kind") == "ics":  # a reminder's calendar event
            mail.add_attachment(
                generated["content"].encode(),
                maintype="text",
                subtype="calendar",
                filename=generated.get("filename", "consulta.ics"),
                params={"method": "PUBLISH"},
            )
    return mail


def _address(sender: str) -> str:
    return next(iter(getaddresses([sender])), ("", sender))[1]


def _smtp_send(url: str, mail: EmailMessage) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=SMTP_TIMEOUT)
    else:
        client = smtplib.SMTP(host, port or 587, timeout=SMTP_TIMEOUT)
    with client:
        client.ehlo()
        if parts.scheme != "smtps" and client.has_extn("starttls"):
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(mail)


def _smtp_failure(exc: Exception) -> DeliveryFailed:
    """4xx replies and lost connections are temporary; 5xx replies are final."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return DeliveryFailed(f"email: recipient refused ({codes})", retryable=min(codes) < 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        reason = f"email: SMTP {exc.smtp_code}"
        return DeliveryFailed(reason, retryable=exc.smtp_code < 500)
    return DeliveryFailed(f"email: {type(exc).__name__}", retryable=True)


# --- receiving mail ----------------------------------------------------------------------------


class Mailbox:
    """An IMAP inbox, used from a worker thread (imaplib blocks)."""

    def __init__(self, url: str) -> None:
        self.url = urlsplit(url)
        self.client: imaplib.IMAP4 | None = None

    def _open_client(self) -> imaplib.IMAP4:
        if self.client is None:
            raise RuntimeError("the mailbox is not open")
        return self.client

    def open(self) -> None:
        host, port = self.url.hostname or "localhost", self.url.port
        if self.url.scheme == "imaps":
            self.client = imaplib.IMAP4_SSL(host, port or 993)
        else:
            self.client = imaplib.IMAP4(host, port or 143)
        self.client.login(unquote(self.url.username or ""), unquote(self.url.password or ""))
        self.client.select(self.url.path.strip("/") or "INBOX")

    def unseen(self) -> list[bytes]:
        # No charset argument: SEARCH UNSEEN.
        _, data = self._open_client().uid("SEARCH", "UNSEEN")
        return data[0].split() if data and data[0] else []

    def fetch(self, uid: bytes) -> bytes | None:
        # PEEK: the mail stays unseen until it was recorded. A UID goes out as text: its ASCII
        # digits, the same bytes on the wire.
        _, data = self._open_client().uid("FETCH", uid.decode(), "(BODY.PEEK[])")
        return next((item[1] for item in data if isinstance(item, tuple)), None)

    def mark_seen(self, uid: bytes) -> None:
        self._open_client().uid("STORE", uid.decode(), "+FLAGS", "(\\Seen)")

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                self.client.logout()


def form_field(request: WebhookRequest, name: str) -> bytes:
    """A field of a form body, as the bytes sent (empty when absent): multipart with the
    standard library's MIME parser, urlencoded through latin-1, which maps every byte to one
    character and back, so a raw mail's bytes survive whatever its charset."""
    if request.content_type == URLENCODED:
        fields = parse_qsl(request.body.decode("latin-1"), encoding="latin-1")
        return next((value.encode("latin-1") for key, value in fields if key == name), b"")
    header = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode()
    form = email.message_from_bytes(header + request.body, policy=policy.HTTP)
    for part in form.iter_parts() if form.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == name:
            # A form field is a leaf part: its payload decodes to bytes.
            value = part.get_payload(decode=True)
            return value if isinstance(value, bytes) else b""
    return b""


class EmailChannel(ProviderChannel):
    name = CHANNEL
    max_body: ClassVar[int] = 10 * 1024 * 1024  # raw MIME with attachments
    decodes_blocking = True  # DKIM keys are read from DNS
    config: EmailConfig

    async def fetch_media(self, attachment: dict[str, Any], limit: int) -> Media | None:
        """A mail's file came inside it: nothing to fetch."""
        if "content" not in attachment:
            return None
        content = base64.b64decode(attachment["content"])
        if len(content) > limit:
            raise MediaUnavailable("larger than the limit", too_large=True)
        return Media(content, attachment.get("filename"))

    def __init__(self, config: EmailConfig) -> None:
        super().__init__(config)
        self.sender_check = SenderCheck(config.trusted_authserv_id)

    def read(self, raw: bytes) -> list[Event]:
        """A raw mail as events, its sender authenticated as this clinic does."""
        return parse(raw, self.sender_check)

    @classmethod
    def load_config(cls, settings: Settings) -> EmailConfig:
        env = settings.channel_env
        return EmailConfig(
            smtp_url=env.get("SMTP_URL", ""),
            email_from=env.get("EMAIL_FROM", ""),
            inbound_secret=env.get("EMAIL_INBOUND_SECRET", ""),
            imap_url=env.get("IMAP_URL", ""),
            imap_poll_seconds=float(env.get("IMAP_POLL_SECONDS", "30")),
            trusted_authserv_id=env.get("EMAIL_TRUSTED_AUTHSERV_ID", "").strip(),
        )

    def verify(self, request: WebhookRequest) -> bool:
        """The inbound webhook's secret, as a Bearer token or a Basic-auth password
        (SendGrid Inbound Parse can only send the latter, in its URL)."""
        secret = self.config.inbound_secret
        if not secret:
            return False  # no secret, no webhook: inbound only by IMAP
        scheme, _, credentials = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                credentials = base64.b64decode(credentials).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return same_secret(credentials, secret)

    def decode(self, request: WebhookRequest) -> list[Event]:
        raw = request.body
        if request.content_type in (MULTIPART, URLENCODED):
            raw = form_field(request, MAIL_FIELD)
        if not raw.strip():
            raise BadPayload("expected a raw MIME mail")
        return self.read(raw)

    async def deliver(
        self, message: Message, identity: ChannelIdentity, reach: Reach = Reach.FREE
    ) -> str | None:
        mail = compose(message, identity, self.config.email_from)
        try:
            await asyncio.to_thread(_smtp_send, self.config.smtp_url, mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise _smtp_failure(exc) from exc
        return _ids(mail["Message-ID"])[0]

    async def run_in_background(self, handle: HandleEvents) -> None:
        """Poll the IMAP inbox every `imap_poll_seconds` while the process runs, when there
        is one."""
        if not self.config.imap_url:
            return
        while True:
            try:
                await self.poll(handle)
            except Exception as exc:  # the poller must outlive a bad mailbox or database
                log.warning("IMAP poll failed (%s); trying again later", type(exc).__name__)
            await asyncio.sleep(self.config.imap_poll_seconds)

    async def poll(self, handle: HandleEvents) -> int:
        """Record (`handle`) every unseen mail of the inbox, then mark it seen; returns how
        many there were."""
        mailbox = Mailbox(self.config.imap_url)
        try:
            await asyncio.to_thread(mailbox.open)
            uids = await asyncio.to_thread(mailbox.unseen)
            for uid in uids:
                raw = await asyncio.to_thread(mailbox.fetch, uid)
                if raw is None:
                    continue  # left unseen for the next poll
                await handle(await asyncio.to_thread(self.read, raw))
                await asyncio.to_thread(mailbox.mark_seen, uid)
        finally:
            await asyncio.to_thread(mailbox.close)
        return len(uids)
