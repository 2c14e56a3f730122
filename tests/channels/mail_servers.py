"""Local mail servers for the e-mail channel: a real SMTP server (aiosmtpd) that keeps what
it receives, and a small IMAP4rev1 server with one inbox, enough for imaplib's LOGIN, SELECT,
UID SEARCH UNSEEN, UID FETCH BODY.PEEK[] and UID STORE +FLAGS (\\Seen)."""

from __future__ import annotations

import asyncio
import email
import re
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.clinic import free_port


class SmtpServer:
    """Every mail the clinic sends, parsed, in `received`. Recipients `naoexiste@…` are
    refused for good (550) and `caixacheia@…` for now (452)."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: list
    ) -> str:
        if address.startswith("naoexiste@"):
            return "550 5.1.1 The email account that you tried to reach does not exist"
        if address.startswith("caixacheia@"):
            return "452 4.2.2 Mailbox full, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.received.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [mail for mail in self.received if address in str(mail["To"])]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 30) -> list:
        deadline = time.monotonic() + timeout
        while len(self.sent_to(address)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} mails to {address}")
            await asyncio.sleep(0.05)
        return self.sent_to(address)


@dataclass
class StoredMail:
    uid: int
    raw: bytes
    seen: bool = False


@dataclass
class ImapServer:
    user: str = "clinica"
    password: str = "senha-imap"
    mails: list[StoredMail] = field(default_factory=list)
    port: int = 0
    logins: int = 0

    @property
    def url(self) -> str:
        return f"imap://{self.user}:{self.password}@127.0.0.1:{self.port}/INBOX"

    def deliver(self, raw: bytes) -> StoredMail:
        mail = StoredMail(uid=len(self.mails) + 1, raw=raw)
        self.mails.append(mail)
        return mail

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            server = self._loop.run_until_complete(
                asyncio.start_server(self._session, "127.0.0.1", 0)
            )
            self.port = server.sockets[0].getsockname()[1]
            self._server = server
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-imap", daemon=True)
        self._thread.start()
        started.wait(10)

    def stop(self) -> None:
        def shutdown() -> None:
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(10)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(line: str | bytes) -> None:
            writer.write((line if isinstance(line, bytes) else line.encode()) + b"\r\n")

        send("* OK fake IMAP4rev1 ready")
        while line := (await reader.readline()).decode().strip():
            tag, _, command = line.partition(" ")
            verb = command.split(" ")[0].upper()
            if verb == "CAPABILITY":
                send("* CAPABILITY IMAP4rev1")
            elif verb == "LOGIN":
                if command != f'LOGIN {self.user} "{self.password}"':  # imaplib quotes it
                    send(f"{tag} NO login failed")
                    continue
                self.logins += 1
            elif verb == "SELECT":
                send(f"* {len(self.mails)} EXISTS")
                send(f"{tag} OK [READ-WRITE] SELECT completed")
                continue
            elif verb == "UID":
                self._uid(tag, command, send)
            elif verb == "LOGOUT":
                send("* BYE")
                send(f"{tag} OK LOGOUT completed")
                await writer.drain()
                break
            send(f"{tag} OK {verb} completed")
            await writer.drain()
        writer.close()

    def _uid(self, tag: str, command: str, send: Any) -> None:
        _, sub, *args = command.split(" ")
        sub = sub.upper()
        if sub == "SEARCH":
            unseen = " ".join(str(m.uid) for m in self.mails if not m.seen)
            send(f"* SEARCH {unseen}".rstrip())
            return
        uid = int(args[0])
        mail = next(m for m in self.mails if m.uid == uid)
        if sub == "FETCH":
            literal = f"* {uid} FETCH (UID {uid} BODY[] {{{len(mail.raw)}}}\r\n".encode()
            send(literal + mail.raw + b")")
        elif sub == "STORE" and re.search(r"\\Seen", command, re.I):
            mail.seen = True
            send(f"* {uid} FETCH (UID {uid} FLAGS (\\Seen))")
