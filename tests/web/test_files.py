"""Files staff send and read over real HTTP on both databases: a reply with a file is checked
by content, stored, recorded and delivered with a signed link; who may open a stored file
(staff reading the conversation, the patient themselves) opens it, every read audit-logged;
nobody else does; the patient's export lists it and erasure removes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from accounts.auth import hash_password
from accounts.erasure import erase_patient
from core.catalog import t
from handoff.transitions import queueing
from messaging.files import store_for
from models import Presence, User, utcnow
from tests.factories import audit_entries, patient_message, staff
from tests.webapp import logged_in, patient_logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-segura"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    async with web_server(settings) as server:
        yield server


def _form(content: bytes, filename: str, text: str = "") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="application/pdf")
    if text:
        form.add_field("text", text)
    return form


async def _served_patient(server: TestServer) -> tuple[User, int, int]:
    """An attendant serving a patient who can log in to the portal; the conversation."""
    ctx = server.app[CTX]
    ana = await staff(ctx.db, capacity=1)
    recorded = await patient_message(ctx.db, "preciso do preparo do exame")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    async with ctx.db.session() as session:
        patient = await session.get_one(User, recorded.message.patient_id)
        patient.email = "rita@exemplo.com"
        patient.email_verified_at = utcnow()
        patient.password_hash = hash_password(PASSWORD)
    return ana, recorded.conversation.id, patient.id


async def test_a_reply_with_a_file_goes_out_with_a_signed_link_and_opens_only_for_its_readers(
    server,
):
    ctx = server.app[CTX]
    ana, conversation_id, patient_id = await _served_patient(server)
    bruno = await staff(ctx.db, presence=Presence.OFFLINE)
    ana_http = await logged_in(server, ana.email, PASSWORD)
    bruno_http = await logged_in(server, bruno.email, PASSWORD)
    rita_http = await logged_in(server, "rita@exemplo.com", PASSWORD)
    other_http = await patient_logged_in(server, "outra-senha-1")
    try:
        path = f"/api/conversations/{conversation_id}/files"
        async with ana_http.post(path, data=_form(PDF, "preparo.pdf", "Segue o preparo.")) as r:
            assert r.status == 201
            message = await r.json()
        [attachment] = message["attachments"]
        assert (attachment["filename"], attachment["mime_type"]) == (
            "preparo.pdf",
            "application/pdf",
        )
        key = attachment["file"]

        # The widget has no files: the patient gets the text and a link that opens the file.
        delivered, _ = ctx.senders["webchat"].delivered[-1]
        assert delivered.text.startswith("Segue o preparo.\n\n📎 preparo.pdf: ")
        link = delivered.text.rsplit(" ", 1)[-1]
        assert link.startswith(f"{ctx.settings.public_base_url}/files/{key}?")
        local = urlsplit(link)._replace(scheme="", netloc="").geturl()
        async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as anyone:
            async with anyone.get(local) as r:
                assert (r.status, await r.read()) == (200, PDF)
            async with anyone.get(local.replace("sig=", "sig=0")) as r:
                assert r.status == 404
            async with anyone.get(f"/api/files/{key}") as r:
                assert r.status == 401

        async with ana_http.get(f"/api/files/{key}") as r:
            assert (r.status, r.content_type, await r.read()) == (200, "application/pdf", PDF)
        async with rita_http.get(f"/api/portal/files/{key}") as r:
            assert (r.status, await r.read()) == (200, PDF)
        async with bruno_http.get(f"/api/files/{key}") as r:  # not serving Rita
            assert r.status == 403
        async with other_http.get(f"/api/portal/files/{key}") as r:
            assert r.status == 403
            assert (await r.json())["error"] == t("files.error.forbidden")
        async with rita_http.get(f"/api/files/{key}") as r:  # the staff route is staff's
            assert r.status == 403
    finally:
        for http in (ana_http, bruno_http, rita_http, other_http):
            await http.close()
    reads = await audit_entries(ctx.db, "read_file")
    assert [(r.actor_id, r.patient_id) for r in reads] == [
        (None, patient_id),  # the link
        (ana.id, patient_id),
        (patient_id, patient_id),
    ]


async def test_a_file_is_refused_by_its_content_whatever_its_name(server):
    ctx = server.app[CTX]
    ana, conversation_id, _ = await _served_patient(server)
    http = await logged_in(server, ana.email, PASSWORD)
    try:
        path = f"/api/conversations/{conversation_id}/files"
        async with http.post(path, data=_form(PROGRAM, "resultado.pdf", "Segue")) as r:
            assert r.status == 400
            assert (await r.json())["error"] == t("files.error.type")
    finally:
        await http.close()
    assert all("📎" not in text for text in ctx.senders["webchat"].texts)


async def test_the_export_lists_the_files_and_erasure_removes_them(server):
    ctx = server.app[CTX]
    ana, conversation_id, patient_id = await _served_patient(server)
    http = await logged_in(server, ana.email, PASSWORD)
    rita = await logged_in(server, "rita@exemplo.com", PASSWORD)
    try:
        path = f"/api/conversations/{conversation_id}/files"
        async with http.post(path, data=_form(PDF, "preparo.pdf")) as r:
            key = (await r.json())["attachments"][0]["file"]
        async with rita.get("/api/portal/export") as r:
            [listed] = (await r.json())["files"]
        assert (listed["filename"], listed["size"]) == ("preparo.pdf", len(PDF))

        await erase_patient(ctx, patient_id, actor=None, channel="retencao")

        with pytest.raises(FileNotFoundError):
            await store_for(ctx.settings).get(key)
        async with http.get(f"/api/files/{key}") as r:
            assert r.status == 404
    finally:
        await http.close()
        await rita.close()
