"""Labels and canned responses managed in the app (handoff.labels, web/labels.py) over real
HTTP, on both databases: managers manage them, attendants use them, and the analytics
console filters by label."""

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from handoff.transitions import queueing
from models import Presence, Role
from tests.factories import patient_message, staff
from tests.webapp import logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    async with web_server(settings) as running:
        yield running


async def _handed_off(ctx) -> int:
    recorded = await patient_message(ctx.db, "preciso de ajuda")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    return recorded.conversation.id


async def _call(http, method, path, body=None):
    async with http.request(method, path, json=body) as response:
        return response.status, await response.json()


async def test_a_manager_creates_edits_and_deletes_labels_and_canned_responses(server):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    http = await logged_in(server, marta.email, PASSWORD)
    try:
        status, convenio = await _call(
            http, "POST", "/api/labels", {"name": " Convênio  Unimed ", "colour": "#1A7F37"}
        )
        assert (status, convenio["name"], convenio["colour"]) == (201, "Convênio Unimed", "#1a7f37")
        status, refused = await _call(
            http, "POST", "/api/labels", {"name": "Convênio Unimed", "colour": "#000000"}
        )
        assert (status, refused["error"]) == (409, "Já existe uma etiqueta com esse nome.")
        status, refused = await _call(http, "POST", "/api/labels", {"name": "X", "colour": "red"})
        assert (status, refused["error"]) == (400, "Escolha uma cor para a etiqueta.")
        status, renamed = await _call(
            http, "PATCH", f"/api/labels/{convenio['id']}", {"name": "Unimed", "colour": "#ffcc00"}
        )
        assert (status, renamed["name"]) == (200, "Unimed")

        status, preparo = await _call(
            http,
            "POST",
            "/api/canned-responses",
            {"shortcut": "/Preparo", "text": "Olá, {paciente}! Jejum de 8 horas antes do exame."},
        )
        assert (status, preparo["shortcut"]) == (201, "preparo")
        status, refused = await _call(
            http, "POST", "/api/canned-responses", {"shortcut": "preparo", "text": "outro"}
        )
        assert (status, refused["error"]) == (409, "Já existe uma resposta pronta com esse atalho.")
        status, refused = await _call(
            http, "POST", "/api/canned-responses", {"shortcut": "com espaço", "text": "x"}
        )
        assert status == 400
        status, edited = await _call(
            http,
            "PATCH",
            f"/api/canned-responses/{preparo['id']}",
            {"shortcut": "jejum", "text": "Jejum de 12 horas."},
        )
        assert (status, edited["shortcut"], edited["text"]) == (200, "jejum", "Jejum de 12 horas.")

        assert (await _call(http, "DELETE", f"/api/canned-responses/{preparo['id']}"))[0] == 200
        assert (await _call(http, "DELETE", f"/api/canned-responses/{preparo['id']}"))[0] == 404
        assert await _call(http, "GET", "/api/canned-responses") == (200, [])
        assert await _call(http, "GET", "/api/labels") == (
            200,
            [{"id": convenio["id"], "name": "Unimed", "colour": "#ffcc00"}],
        )
    finally:
        await http.close()


async def test_an_attendant_uses_labels_and_canned_responses_but_cannot_manage_them(server):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    ana = await staff(ctx.db)
    manager, attendant = (
        await logged_in(server, marta.email, PASSWORD),
        await logged_in(server, ana.email, PASSWORD),
    )
    try:
        _, label = await _call(
            manager, "POST", "/api/labels", {"name": "Exames", "colour": "#0b7a75"}
        )
        _, canned = await _call(
            manager, "POST", "/api/canned-responses", {"shortcut": "oi", "text": "Olá!"}
        )
        refused = "Só gestores e administradores gerenciam etiquetas e respostas prontas."
        for method, path, body in [
            ("POST", "/api/labels", {"name": "Minha", "colour": "#000000"}),
            ("PATCH", f"/api/labels/{label['id']}", {"name": "Outra", "colour": "#000000"}),
            ("DELETE", f"/api/labels/{label['id']}", None),
            ("POST", "/api/canned-responses", {"shortcut": "tchau", "text": "Tchau!"}),
            ("PATCH", f"/api/canned-responses/{canned['id']}", {"shortcut": "a", "text": "b"}),
            ("DELETE", f"/api/canned-responses/{canned['id']}", None),
        ]:
            assert await _call(attendant, method, path, body) == (
                403,
                {"error": refused, "code": "labels.error.managers_only"},
            )
        async with attendant.get("/staff/etiquetas", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (302, "/staff")
        assert (await _call(attendant, "GET", "/api/labels"))[1] == [label]
        assert (await _call(attendant, "GET", "/api/canned-responses"))[1] == [canned]
    finally:
        await manager.close()
        await attendant.close()


async def test_staff_label_the_conversations_they_act_in_and_the_lists_show_it(server):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    ana = await staff(ctx.db, capacity=1)
    mine = await _handed_off(ctx)
    queued = await _handed_off(ctx)  # Ana is full: it waits in the queue
    manager, attendant = (
        await logged_in(server, marta.email, PASSWORD),
        await logged_in(server, ana.email, PASSWORD),
    )
    try:
        _, exames = await _call(
            manager, "POST", "/api/labels", {"name": "Exames", "colour": "#0b7a75"}
        )
        _, urgente = await _call(
            manager, "POST", "/api/labels", {"name": "Atrasado", "colour": "#b00020"}
        )
        on = f"/api/conversations/{mine}/labels"

        assert await _call(attendant, "PUT", f"{on}/{exames['id']}") == (
            200,
            {"conversation_id": mine, "labels": [exames["id"]]},
        )
        # Twice changes nothing; labels come by name.
        await _call(attendant, "PUT", f"{on}/{exames['id']}")
        assert (await _call(attendant, "PUT", f"{on}/{urgente['id']}"))[1]["labels"] == [
            urgente["id"],
            exames["id"],
        ]
        # Not theirs: a queued conversation, an unknown label.
        status, _ = await _call(
            attendant, "PUT", f"/api/conversations/{queued}/labels/{exames['id']}"
        )
        assert status == 403
        assert (await _call(attendant, "PUT", f"{on}/99999"))[0] == 404
        # A manager labels any conversation.
        assert (await _call(manager, "PUT", f"/api/conversations/{queued}/labels/{exames['id']}"))[
            0
        ] == 200

        listed = {
            c["id"]: c["labels"] for c in (await _call(attendant, "GET", "/api/conversations"))[1]
        }
        assert listed == {mine: [urgente["id"], exames["id"]], queued: [exames["id"]]}
        detail = (await _call(attendant, "GET", f"/api/conversations/{mine}"))[1]
        assert detail["conversation"]["labels"] == [urgente["id"], exames["id"]]

        assert (await _call(attendant, "DELETE", f"{on}/{urgente['id']}"))[1]["labels"] == [
            exames["id"]
        ]
        # A deleted label leaves every conversation.
        await _call(manager, "DELETE", f"/api/labels/{exames['id']}")
        listed = {
            c["id"]: c["labels"] for c in (await _call(manager, "GET", "/api/conversations"))[1]
        }
        assert listed[mine] == listed[queued] == []
    finally:
        await manager.close()
        await attendant.close()


async def test_the_analytics_console_counts_only_the_conversations_with_the_label(server):
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    await staff(ctx.db, capacity=3)
    labelled = await _handed_off(ctx)
    await _handed_off(ctx)
    bot_only = (await patient_message(ctx.db, "qual o endereço?")).conversation.id
    manager = await logged_in(server, marta.email, PASSWORD)
    try:
        _, label = await _call(
            manager, "POST", "/api/labels", {"name": "Exames", "colour": "#0b7a75"}
        )
        for conversation_id in (labelled, bot_only):
            await _call(
                manager, "PUT", f"/api/conversations/{conversation_id}/labels/{label['id']}"
            )
        everything = (await _call(manager, "GET", "/api/analytics"))[1]
        narrowed = (await _call(manager, "GET", f"/api/analytics?label={label['id']}"))[1]
        refused = await _call(manager, "GET", "/api/analytics?label=abc")
    finally:
        await manager.close()

    assert (everything["service"]["conversations"], everything["service"]["handoffs"]) == (3, 2)
    assert narrowed["filters"]["label_id"] == label["id"]
    assert (narrowed["service"]["conversations"], narrowed["service"]["handoffs"]) == (2, 1)
    assert narrowed["service"]["contained"] == 1
    assert refused == (400, {"error": "Etiqueta inválida.", "code": "labels.error.invalid"})
