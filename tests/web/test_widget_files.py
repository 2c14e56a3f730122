"""The site widget's file picker over real HTTP on both databases: a visitor's file is
checked by content, recorded once as their message and stored with it; without the visitor's
token, with a forged one, from another site's page, of a type the clinic does not take or
over the size limit, it is refused with the pt-BR reason and nothing is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from core.catalog import t
from core.settings import Settings
from messaging.files import store_for
from models import Direction, Message, StoredFile
from tests.webapp import patient_logged_in, web_server
from web.keys import CTX
from web.webhooks import WIDGET_TOKENS

CLINIC_SITE = "https://www.clinicavidaplena.example"
UPLOAD = "/webhooks/webchat/files"
LIMIT = 4096
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            "FILES_DIR": str(tmp_path / "files"),
            "WIDGET_ORIGINS": CLINIC_SITE,
            "MAX_FILE_BYTES": str(LIMIT),
        }
    )


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    async with web_server(settings) as server:
        yield server


def _form(content: bytes, filename: str, *, token: str | None, client_id: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    if token is not None:
        form.add_field("token", token)
    form.add_field("id", client_id)
    form.add_field("file", content, filename=filename, content_type="image/jpeg")
    return form


async def _upload(
    server: TestServer,
    content: bytes,
    filename: str,
    *,
    token: str | None,
    client_id: str = "arquivo-0001",
    origin: str = CLINIC_SITE,
) -> tuple[int, dict, aiohttp.typedefs.LooseHeaders]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.make_url(UPLOAD),
            data=_form(content, filename, token=token, client_id=client_id),
            headers={"Origin": origin},
        ) as response,
    ):
        answer = await response.json() if response.content_type == "application/json" else {}
        return response.status, answer, response.headers


def _stored_bytes(files_dir: Path) -> list[Path]:
    return [p for p in files_dir.rglob("*") if p.is_file()] if files_dir.exists() else []


async def _nothing_stored(server: TestServer) -> None:
    async with server.app[CTX].db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0
        assert await session.scalar(select(func.count()).select_from(StoredFile)) == 0
    files_dir = Path(server.app[CTX].settings.files_dir)
    assert await asyncio.to_thread(_stored_bytes, files_dir) == []


async def test_a_visitors_file_is_stored_and_recorded_once_as_their_message(server):
    token = server.app[WIDGET_TOKENS].issue("visitante-arquivo")

    status, answer, headers = await _upload(server, PDF, "pedido-exame.pdf", token=token)
    again, answer_again, _ = await _upload(server, PDF, "pedido-exame.pdf", token=token)

    assert status == 201 and again == 201
    assert headers["Access-Control-Allow-Origin"] == CLINIC_SITE  # the widget reads it
    assert answer["attachment"]["filename"] == "pedido-exame.pdf"
    assert answer["attachment"]["mime_type"] == "application/pdf"
    assert answer_again["message_id"] == answer["message_id"]
    async with server.app[CTX].db.session() as session:
        query = select(Message).where(Message.direction == Direction.INBOUND)
        [message] = (await session.execute(query)).scalars().all()
        [stored] = (await session.execute(select(StoredFile))).scalars().all()
    assert (message.id, message.channel) == (answer["message_id"], "webchat")
    assert message.attachments[0]["file"] == stored.key
    assert message.attachments[0]["filename"] == "pedido-exame.pdf"
    assert (stored.message_id, stored.patient_id) == (message.id, message.patient_id)
    assert await store_for(server.app[CTX].settings).get(stored.key) == PDF


async def test_a_file_without_a_genuine_token_is_refused_and_nothing_is_stored(server):
    genuine = server.app[WIDGET_TOKENS].issue("visitante-arquivo")
    forged = genuine[:-4] + ("0000" if not genuine.endswith("0000") else "1111")

    without, answer, _ = await _upload(server, PDF, "exame.pdf", token=None)
    wrong, wrong_answer, _ = await _upload(server, PDF, "exame.pdf", token=forged)

    assert (without, answer["error"]) == (401, t("widget.error.session"))
    assert (wrong, wrong_answer["error"]) == (403, t("widget.error.session"))
    await _nothing_stored(server)


async def test_a_file_sent_from_a_page_of_another_site_is_refused(server):
    token = server.app[WIDGET_TOKENS].issue("visitante-arquivo")

    status, _, headers = await _upload(
        server, PDF, "exame.pdf", token=token, origin="https://outro-site.example"
    )

    assert status == 403
    assert "Access-Control-Allow-Origin" not in headers
    await _nothing_stored(server)


async def test_a_program_named_as_a_photo_is_refused_by_its_content(server):
    token = server.app[WIDGET_TOKENS].issue("visitante-arquivo")

    status, answer, headers = await _upload(server, PROGRAM, "foto.jpg", token=token)

    assert (status, answer["error"]) == (400, t("files.error.type"))
    assert headers["Access-Control-Allow-Origin"] == CLINIC_SITE  # the widget shows why
    await _nothing_stored(server)


async def test_a_file_over_the_clinics_limit_is_refused_as_too_large(server):
    token = server.app[WIDGET_TOKENS].issue("visitante-arquivo")
    big = PDF + b"0" * LIMIT

    status, answer, _ = await _upload(server, big, "exame-grande.pdf", token=token)

    assert (status, answer["error"]) == (413, t("files.error.too_large"))
    await _nothing_stored(server)


async def test_a_patient_logged_into_the_portal_sends_a_file_as_themselves(server):
    http = await patient_logged_in(server, "senha-segura")
    try:
        async with http.post(
            UPLOAD, data=_form(PDF, "guia.pdf", token=None, client_id="portal-arquivo-1")
        ) as response:
            assert response.status == 201
            message_id = (await response.json())["message_id"]
        async with http.get("/api/portal/me") as me:
            patient_id = (await me.json())["id"]
    finally:
        await http.close()
    async with server.app[CTX].db.session() as session:
        message = await session.get_one(Message, message_id)
        stored = await session.scalar(select(StoredFile).where(StoredFile.message_id == message_id))
    assert (message.patient_id, message.channel) == (patient_id, "webchat")
    assert stored is not None and stored.filename == "guia.pdf"
