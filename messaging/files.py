"""Files patients and staff exchange: checked, stored, linked to the history, served.

In: a channel parses each attachment's reference (a WhatsApp media id, a Twilio `MediaUrl`,
a Messenger CDN URL, a Telegram file_id); the message is recorded with `files_pending` set,
before the webhook is answered. After the answer (and again from the inbox's sweep, should
the process die first) `fetch_files` has the channel fetch each file from where the provider
said, checks it — at most `Settings.max_file_bytes`, and of a type its *content* shows on
the allow-list (images, PDF, audio, video, office documents), whatever its name claims —
stores it and rewrites the attachment to name the stored file (`"file": key`); a file that
fails the checks is named by its `"error"` instead. Staff screens hear of the change.

Out: staff upload a file (`keep_upload`, the same checks) and reply with it; the channel's
sender gets a signed, expiring link to it on PUBLIC_BASE_URL (`with_links`), which the
provider fetches (`open_signed`), or which the patient receives in the text where the channel
carries no files.

Every read of a stored file — by staff, the patient or a provider's link — is audit-logged
(`open_file`, `open_signed`); who may read one is `core.access.may_read_file`'s to say.

Storage: a `FileStore` (`store_for`): the filesystem under `FILES_DIR` (var/files by
default), or an S3-compatible bucket (`FILES_STORE=s3`, `S3Store`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import Media, MediaUnavailable, ProviderChannel
from core import access, audit
from core.audit import AuditAction
from core.catalog import t
from core.context import Context
from core.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from core.events import message_event
from core.settings import Settings
from models import Conversation, Message, Role, StoredFile, User, utcnow

if TYPE_CHECKING:
    from aiobotocore.session import AioSession
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.literals import ServerSideEncryptionType

log = logging.getLogger(__name__)

# A fetch that failed for a reason that may pass is tried this many times in all.
FETCH_ATTEMPTS = 5
# How long a link given to a provider (or to a patient on a channel without files) opens.
LINK_LIFETIME = timedelta(days=7)
# Uploaded by staff and never sent: removed after this long.
UNSENT_UPLOAD_LIFETIME = timedelta(days=1)
# Keys are URL-safe random tokens; anything else names no file.
KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# What an attachment keeps once its file is stored: never the provider's URL or id again.
_KEPT = ("type", "filename", "voice", "caption")
_REFERENCES = ("id", "url", "file_id", "content")


# --- what a file is, by its content ---------------------------------------------------------


@dataclass(frozen=True)
class FileType:
    mime_type: str
    kind: str  # image, audio, video, document


def _ftyp(content: bytes) -> FileType | None:
    """ISO base media files (MP4, M4A, 3GP, HEIC) name their brand after `ftyp`."""
    brand = content[8:12]
    if brand in (b"M4A ", b"M4B "):
        return FileType("audio/mp4", "audio")
    if brand in (b"heic", b"heix", b"mif1", b"msf1"):
        return FileType("image/heic", "image")
    if brand.startswith(b"3g"):
        return FileType("video/3gpp", "video")
    return FileType("video/mp4", "video")


_OOXML = (
    (b"word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (b"xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (b"ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
_ODF = (
    b"application/vnd.oasis.opendocument.text",
    b"application/vnd.oasis.opendocument.spreadsheet",
)


def _zip(content: bytes) -> FileType | None:
    """Office documents are ZIP archives; any other archive is refused."""
    if content[30:38] == b"mimetype":
        declared = content[38 : 38 + 60]
        for odf in _ODF:
            if declared.startswith(odf):
                return FileType(odf.decode(), "document")
        return None
    if b"[Content_Types].xml" not in content[:4096]:
        return None
    return next((FileType(mime, "document") for marker, mime in _OOXML if marker in content), None)


def sniff(content: bytes) -> FileType | None:
    """The type of a file by its first bytes, when it is one the clinic accepts; None
    otherwise (executables, archives, scripts, HTML, SVG, unknown)."""
    head = content[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return FileType("image/jpeg", "image")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileType("image/png", "image")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return FileType("image/gif", "image")
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return FileType("image/webp", "image")
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return FileType("audio/wav", "audio")
    if head.startswith(b"%PDF-"):
        return FileType("application/pdf", "document")
    if head.startswith(b"OggS"):
        return FileType("audio/ogg", "audio")
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return FileType("audio/mpeg", "audio")
    if head.startswith(b"#!AMR"):
        return FileType("audio/amr", "audio")
    if head[4:8] == b"ftyp":
        return _ftyp(content)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return FileType("video/webm", "video")
    if head.startswith(b"PK\x03\x04"):
        return _zip(content)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # .doc, .xls, .ppt
        return FileType("application/msword", "document")
    return None


# --- where files are kept --------------------------------------------------------------------


class FileStore(Protocol):
    """Where the bytes of stored files live, by key. `get` of a key holding nothing raises
    FileNotFoundError; `delete` of one is no error."""

    async def put(self, key: str, content: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


class FilesystemStore:
    """Files under a directory, owner-only like the rest of var/, two levels deep."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not KEY.match(key):
            raise ValueError("not a file key")
        return self.root / key[:2] / key

    async def put(self, key: str, content: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), content)

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        partial.replace(path)  # whole or absent, never half

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)


# What S3_SERVER_SIDE_ENCRYPTION may ask of the service: SSE-S3, SSE-KMS, or nothing.
SERVER_SIDE_ENCRYPTIONS: dict[str, ServerSideEncryptionType | None] = {
    "AES256": "AES256",
    "aws:kms": "aws:kms",
    "none": None,
}


@functools.cache
def _aws_session() -> AioSession:
    """One botocore session per process: it reads S3's service model once. botocore is
    imported only where the S3 store is used: it costs most of a second at start-up."""
    from aiobotocore.session import get_session

    return get_session()


class S3Store:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, ...) named `<S3_PREFIX>/<key>`.
    No ACL is ever sent, so objects stay as private as the bucket (private unless someone
    opened it); each is encrypted at rest by the service as `S3_SERVER_SIDE_ENCRYPTION`
    asks. A client per operation: the store is built per call, on whatever loop runs it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _name(self, key: str) -> str:
        if not KEY.match(key):
            raise ValueError("not a file key")
        return f"{self.settings.s3_prefix}/{key}" if self.settings.s3_prefix else key

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[S3Client]:
        from aiobotocore.config import AioConfig

        settings = self.settings
        other_service = bool(settings.s3_endpoint_url)
        options = AioConfig(
            connect_timeout=10,
            read_timeout=60,
            retries={"mode": "standard", "max_attempts": 3},
            # Services other than AWS serve buckets by path, and not all of them take the
            # checksums botocore adds to every request by default.
            s3={"addressing_style": "path" if other_service else "auto"},
            request_checksum_calculation="when_required" if other_service else "when_supported",
            response_checksum_validation="when_required" if other_service else "when_supported",
        )
        async with _aws_session().create_client(
            "s3",
            region_name=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url or None,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=settings.s3_secret_access_key or None,
            config=options,
        ) as client:
            yield client

    async def put(self, key: str, content: bytes) -> None:
        name, bucket = self._name(key), self.settings.s3_bucket
        encryption = SERVER_SIDE_ENCRYPTIONS[self.settings.s3_server_side_encryption]
        async with self._client() as s3:
            if encryption is None:
                await s3.put_object(Bucket=bucket, Key=name, Body=content)
            else:
                await s3.put_object(
                    Bucket=bucket, Key=name, Body=content, ServerSideEncryption=encryption
                )

    async def get(self, key: str) -> bytes:
        name = self._name(key)
        async with self._client() as s3:
            try:
                found = await s3.get_object(Bucket=self.settings.s3_bucket, Key=name)
            except s3.exceptions.NoSuchKey as exc:
                raise FileNotFoundError(key) from exc
            async with found["Body"] as body:
                return await body.read()

    async def delete(self, key: str) -> None:
        """Gone for good: on a versioned bucket a delete only hides the object behind a
        marker, so each version of it (and the marker) is deleted too."""
        name = self._name(key)
        bucket = self.settings.s3_bucket
        async with self._client() as s3:
            await s3.delete_object(Bucket=bucket, Key=name)
            try:
                listed = await s3.list_object_versions(Bucket=bucket, Prefix=name)
            except s3.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NotImplemented":
                    return  # a service without versions kept none
                raise
            versions = [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
            for version in versions:
                if version.get("Key") == name and "VersionId" in version:
                    await s3.delete_object(Bucket=bucket, Key=name, VersionId=version["VersionId"])


class StoreNotAvailable(RuntimeError):
    """FILES_STORE names a store this installation cannot use."""


def store_for(settings: Settings) -> FileStore:
    """The store `FILES_STORE` names; refuses one it cannot provide, at start-up."""
    if settings.files_store == "filesystem":
        return FilesystemStore(Path(settings.files_dir))
    if settings.files_store == "s3":
        if not settings.s3_bucket:
            raise StoreNotAvailable("FILES_STORE=s3 needs S3_BUCKET")
        if settings.s3_server_side_encryption not in SERVER_SIDE_ENCRYPTIONS:
            raise StoreNotAvailable(
                f"S3_SERVER_SIDE_ENCRYPTION must be one of {', '.join(SERVER_SIDE_ENCRYPTIONS)}"
            )
        return S3Store(settings)
    raise StoreNotAvailable(f"unknown FILES_STORE {settings.files_store!r}")


# --- files in --------------------------------------------------------------------------------


def has_files(attachments: Sequence[dict[str, Any]]) -> bool:
    """Whether a parsed message names files to fetch: set as `files_pending` when recorded."""
    return any(_fetchable(a) for a in attachments)


def _fetchable(attachment: dict[str, Any]) -> bool:
    return (
        isinstance(attachment, dict)
        and "file" not in attachment
        and "error" not in attachment
        and any(attachment.get(ref) for ref in _REFERENCES)
        and attachment.get("type") not in ("location", "contact", "contacts", "fallback")
    )


class Rejected(Exception):
    """A file that failed the checks: `code` says which (`files.error.<code>`)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def check(content: bytes, settings: Settings) -> FileType:
    if len(content) > settings.max_file_bytes:
        raise Rejected("too_large")
    if not content:
        raise Rejected("unavailable")
    found = sniff(content)
    if found is None:
        raise Rejected("type")
    return found


def accepted(content: bytes, settings: Settings) -> FileType:
    """`check` of a file a person hands over themselves, refused with the clear 4xx they
    read (413 when too large)."""
    try:
        return check(content, settings)
    except Rejected as refused:
        if refused.code == "too_large":
            raise PayloadTooLarge() from refused
        raise BadRequest("files.error.type" if content else "files.error.missing") from refused


async def _keep(
    session: AsyncSession,
    store: FileStore,
    content: bytes,
    found: FileType,
    *,
    patient_id: int,
    message_id: int | None,
    filename: str | None,
    uploaded_by_id: int | None = None,
) -> StoredFile:
    key = secrets.token_urlsafe(24)
    await store.put(key, content)
    stored = StoredFile(
        key=key,
        patient_id=patient_id,
        message_id=message_id,
        uploaded_by_id=uploaded_by_id,
        kind=found.kind,
        mime_type=found.mime_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        filename=_clean_name(filename),
    )
    session.add(stored)
    await session.flush()
    return stored


def _clean_name(filename: str | None) -> str | None:
    """A name to show and to offer on download: its last path segment, printable, short."""
    if not filename:
        return None
    name = re.sub(r"[\x00-\x1f\x7f\"\\/]", "_", filename.replace("\\", "/").rsplit("/", 1)[-1])
    return name.strip()[:200] or None


def attachment_of(stored: StoredFile, kept: dict[str, Any] | None = None) -> dict[str, Any]:
    """The attachment a message carries for a stored file (what screens show)."""
    return {
        **{k: v for k, v in (kept or {}).items() if k in _KEPT},
        "type": (kept or {}).get("type") or stored.kind,
        "kind": stored.kind,
        "file": stored.key,
        "mime_type": stored.mime_type,
        "size": stored.size,
        "filename": stored.filename,
    }


async def fetch_files(
    ctx: Context, channels: Mapping[str, ProviderChannel], message_id: int
) -> None:
    """Fetch, check and store the files of one recorded message, once: a second caller
    (the sweep beside the task the webhook started) finds the lock held and leaves."""
    async with ctx.db.locks.try_hold(FETCH_LOCK, message_id) as mine:
        if mine:
            await _fetch_files(ctx, channels, message_id)


FETCH_LOCK = "files: fetch"


async def _fetch_files(
    ctx: Context, channels: Mapping[str, ProviderChannel], message_id: int
) -> None:
    async with ctx.db.session() as session:
        message = await session.get(Message, message_id)
        if message is None or not message.files_pending:
            return
        channel_name, patient_id = message.channel, message.patient_id
        attachments = [dict(a) for a in message.attachments or []]
    channel = channels.get(channel_name)
    fetched: list[tuple[int, Media | str]] = []
    again = False
    for index, attachment in enumerate(attachments):
        if not _fetchable(attachment) or channel is None:
            continue
        try:
            media = await channel.fetch_media(attachment, ctx.settings.max_file_bytes)
        except MediaUnavailable as failure:
            tries = int(attachment.get("attempts", 0)) + 1
            if failure.retryable and tries < FETCH_ATTEMPTS:
                attachment["attempts"] = tries
                again = True
                continue
            log.warning("%s: an attachment's file could not be fetched: %s", channel_name, failure)
            fetched.append((index, "too_large" if failure.too_large else "unavailable"))
            continue
        if media is not None:
            fetched.append((index, media))
    await _settle(ctx, message_id, patient_id, attachments, fetched, again=again)


async def _settle(
    ctx: Context,
    message_id: int,
    patient_id: int,
    attachments: list[dict[str, Any]],
    fetched: Sequence[tuple[int, Media | str]],
    *,
    again: bool,
) -> None:
    """Store (or refuse) the files had for a message's attachments, rewrite them, and tell
    staff screens."""
    store = store_for(ctx.settings)
    async with ctx.db.session() as session:
        for index, got in fetched:
            attachments[index] = await _stored_or_refused(
                session, store, ctx.settings, attachments[index], got, patient_id, message_id
            )
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(attachments=attachments, files_pending=again)
        )
        message = await session.get_one(Message, message_id, populate_existing=True)
        conversation = await session.get_one(Conversation, message.conversation_id)
    if fetched:
        await ctx.bus.publish(message_event(message, conversation))


def sent_attachment(found: FileType, filename: str | None) -> dict[str, Any]:
    """The attachment a message a patient sent with a file already in hand (the site
    widget's upload) is recorded with, until `keep_sent` stores the file."""
    return {"type": found.kind, "filename": _clean_name(filename)}


async def keep_sent(
    ctx: Context, channel: str, provider_message_id: str, media: Media
) -> int | None:
    """The file a patient sent with a message, checked before it was recorded with
    `sent_attachment`: stored as the message's own, its attachment rewritten, staff screens
    told. Once: for a message whose file is stored (a resend), nothing more. The message's
    id (None: no such message)."""
    query = select(Message).where(
        Message.channel == channel, Message.provider_message_id == provider_message_id
    )
    async with ctx.db.session() as session:
        message = await session.scalar(query)
        if message is None:
            return None
        message_id, patient_id = message.id, message.patient_id
        attachments = [dict(a) for a in message.attachments or []]
    async with ctx.db.locks.try_hold(FETCH_LOCK, message_id) as mine:
        if mine and attachments and not {"file", "error"} & attachments[0].keys():
            await _settle(ctx, message_id, patient_id, attachments, [(0, media)], again=False)
    return message_id


async def _stored_or_refused(
    session: AsyncSession,
    store: FileStore,
    settings: Settings,
    attachment: dict[str, Any],
    got: Media | str,
    patient_id: int,
    message_id: int,
) -> dict[str, Any]:
    kept = {k: v for k, v in attachment.items() if k in _KEPT}
    if isinstance(got, str):
        return {**kept, "error": got}
    try:
        found = check(got.content, settings)
    except Rejected as refused:
        log.warning("refused an attachment: %s", refused.code)
        return {**kept, "error": refused.code}
    filename = got.filename or attachment.get("filename") or attachment.get("title")
    stored = await _keep(
        session,
        store,
        got.content,
        found,
        patient_id=patient_id,
        message_id=message_id,
        filename=filename,
    )
    return attachment_of(stored, kept)


async def pending_messages(ctx: Context, recorded_before: datetime | None) -> list[int]:
    """Messages whose files are still to fetch (recorded before `recorded_before`)."""
    query = select(Message.id).where(Message.files_pending.is_(True)).order_by(Message.id)
    if recorded_before is not None:
        query = query.where(Message.recorded_at <= recorded_before)
    async with ctx.db.session() as session:
        return list((await session.execute(query.limit(100))).scalars())


# --- files out -------------------------------------------------------------------------------


async def keep_upload(
    ctx: Context, actor: User, conversation_id: int, content: bytes, filename: str | None
) -> StoredFile:
    """A file staff attach to a reply in a conversation they act in: checked as any file,
    stored for the conversation's patient, not yet part of a message."""
    async with ctx.db.session() as session:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is None:
            raise NotFound()
        if not access.may_act_in_conversation(actor, conversation):
            raise Forbidden("error.not_owner")
        found = accepted(content, ctx.settings)
        return await _keep(
            session,
            store_for(ctx.settings),
            content,
            found,
            patient_id=conversation.patient_id,
            message_id=None,
            filename=filename,
            uploaded_by_id=actor.id,
        )


async def discard(ctx: Context, stored: StoredFile) -> None:
    """An upload whose reply was refused: its row and bytes go."""
    async with ctx.db.session() as session:
        await session.execute(
            delete(StoredFile).where(StoredFile.id == stored.id, StoredFile.message_id.is_(None))
        )
    await store_for(ctx.settings).delete(stored.key)


async def claim_uploads(session: AsyncSession, message: Message) -> None:
    """The stored files a message being recorded carries become its own (staff uploads)."""
    keys = [a["file"] for a in message.attachments or [] if isinstance(a, dict) and "file" in a]
    if keys:
        await session.execute(
            update(StoredFile)
            .where(StoredFile.key.in_(keys), StoredFile.message_id.is_(None))
            .values(message_id=message.id)
        )


def _signature(settings: Settings, key: str, expires: int) -> str:
    secret = f"files:{settings.session_secret}".encode()
    return hmac.new(secret, f"{key}.{expires}".encode(), hashlib.sha256).hexdigest()


def signed_link(settings: Settings, key: str, *, lifetime: timedelta = LINK_LIFETIME) -> str:
    """A link to a stored file that anyone holding it may open until it expires."""
    expires = int(time.time() + lifetime.total_seconds())
    query = urlencode({"expires": expires, "sig": _signature(settings, key, expires)})
    return f"{settings.public_base_url}/files/{key}?{query}"


def with_links(settings: Settings, message: Message, *, native: bool) -> Message:
    """A transient copy of an outbound message whose files carry fresh signed `link`s for
    the channel's sender (`native`: it sends them as files); where the channel carries no
    files, the text ends with a link to each. The recorded message keeps no link."""
    if not any(isinstance(a, dict) and "file" in a for a in message.attachments or []):
        return message
    copy = Message(
        **{column.key: getattr(message, column.key) for column in Message.__table__.columns}
    )
    copy.attachments = [
        {**a, "link": signed_link(settings, a["file"])} if "file" in a else a
        for a in message.attachments
    ]
    if not native:
        lines = [
            t("files.link_line", name=a.get("filename") or t("files.unnamed"), link=a["link"])
            for a in copy.attachments
            if "link" in a
        ]
        copy.text = "\n\n".join(part for part in (message.text, *lines) if part)
        copy.attachments = [a for a in copy.attachments if "link" not in a]
    return copy


# --- reading stored files --------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    file: StoredFile
    content: bytes


async def _find(session: AsyncSession, key: str) -> StoredFile:
    if not KEY.match(key):
        raise NotFound()
    found = await session.scalar(select(StoredFile).where(StoredFile.key == key))
    if found is None:
        raise NotFound()
    return found


async def open_file(ctx: Context, user: User, key: str, *, ip: str | None) -> Opened:
    """A stored file for a user `core.access` lets read it; the read is audit-logged."""
    async with ctx.db.session() as session:
        stored = await _find(session, key)
        message = await session.get(Message, stored.message_id) if stored.message_id else None
        if message is not None and message.internal and user.role == Role.PATIENT:
            raise NotFound()
        conversation = await session.get(Conversation, message.conversation_id) if message else None
        if not await access.may_read_file(session, user, stored.patient_id, conversation):
            raise Forbidden("files.error.forbidden")
        await audit.record(
            session,
            user,
            AuditAction.READ_FILE,
            patient_id=stored.patient_id,
            conversation_id=conversation.id if conversation else None,
            ip=ip,
            file_id=stored.id,
        )
    return Opened(stored, await store_for(ctx.settings).get(stored.key))


async def open_signed(
    ctx: Context, key: str, expires: str, signature: str, *, ip: str | None
) -> Opened:
    """A stored file through a signed link, while it lasts; audit-logged without an actor."""
    try:
        until = int(expires)
    except ValueError as exc:
        raise NotFound() from exc
    if until < time.time() or not hmac.compare_digest(
        signature.encode(), _signature(ctx.settings, key, until).encode()
    ):
        raise NotFound()
    async with ctx.db.session() as session:
        stored = await _find(session, key)
        await audit.record(
            session,
            None,
            AuditAction.READ_FILE,
            patient_id=stored.patient_id,
            ip=ip,
            file_id=stored.id,
            link=True,
        )
    return Opened(stored, await store_for(ctx.settings).get(stored.key))


# --- export, erasure, retention --------------------------------------------------------------


async def files_of(session: AsyncSession, patient_id: int) -> list[StoredFile]:
    query = select(StoredFile).where(StoredFile.patient_id == patient_id).order_by(StoredFile.id)
    return list((await session.execute(query)).scalars())


async def forget_files(session: AsyncSession, patient_ids: Sequence[int]) -> list[str]:
    """Erasure: the rows of these patients' stored files go (in the caller's transaction);
    their keys, for `drop` once it committed."""
    query = select(StoredFile.key).where(StoredFile.patient_id.in_(patient_ids))
    keys = list((await session.execute(query)).scalars())
    await session.execute(delete(StoredFile).where(StoredFile.patient_id.in_(patient_ids)))
    return keys


async def drop(settings: Settings, keys: Sequence[str]) -> None:
    """Remove stored files' bytes (after their rows are gone)."""
    store = store_for(settings)
    for key in keys:
        await store.delete(key)


async def prune_unsent_uploads(ctx: Context) -> int:
    """Staff uploads never sent, after a day: nothing in any history names them."""
    cutoff = utcnow() - UNSENT_UPLOAD_LIFETIME
    async with ctx.db.session() as session:
        query = select(StoredFile).where(
            StoredFile.message_id.is_(None), StoredFile.created_at < cutoff
        )
        found = list((await session.execute(query)).scalars())
        store = store_for(ctx.settings)
        for stored in found:
            await store.delete(stored.key)
            await session.delete(stored)
    return len(found)
