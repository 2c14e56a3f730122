"""The analytics console over HTTP: managers only, the filters read from the query, CSV of
each table, and the drill-down behind a figure."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from models import Role, User
from processes.web import create_app
from tests.factories import second_factor_optional, staff
from tests.fakes import RecordingBot
from tests.handoff.analytics_fixture import build
from tests.webapp import logged_in
from web.keys import CTX

PASSWORD = "senha-segura"
WEEK = "from=2026-11-02&to=2026-11-08"


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(settings))
    await server.start_server()
    server.app[CTX].bot = RecordingBot()
    yield server
    await server.close()


@pytest.fixture
async def clients(server) -> AsyncIterator[tuple[aiohttp.ClientSession, aiohttp.ClientSession]]:
    ctx = server.app[CTX]
    await second_factor_optional(ctx.db)
    await build(ctx.db)
    attendant = await staff(ctx.db)
    manager = await staff(ctx.db, Role.MANAGER)
    sessions = (
        await logged_in(server, attendant.email, PASSWORD),
        await logged_in(server, manager.email, PASSWORD),
    )
    yield sessions
    for session in sessions:
        await session.close()


async def _get(http: aiohttp.ClientSession, path: str) -> tuple[int, object]:
    async with http.get(path) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def test_only_managers_see_the_console(clients):
    attendant, manager = clients
    for path in (
        "/api/analytics",
        "/api/analytics/series",
        "/api/analytics/console",
        "/api/analytics/export/motivos",
    ):
        assert (await _get(attendant, path))[0] == 403
    async with attendant.get("/staff/metrics", allow_redirects=False) as response:
        assert (response.status, response.headers["Location"]) == (302, "/staff")
    async with manager.get("/staff/metrics") as response:
        assert response.status == 200
        page = await response.text()
    assert "docs/metrics.md" not in page and "chart.umd.min.js" in page


async def test_the_report_reads_its_filters(clients):
    _, manager = clients
    status, report = await _get(manager, f"/api/analytics?{WEEK}&channel=whatsapp&sla_minutes=30")
    assert status == 200
    assert report["filters"] == {"channel": "whatsapp", "attendant_id": None, "label_id": None}
    assert (report["service"]["handoffs"], report["service"]["sla"]["breaches"]) == (2, 0)
    for bad in (
        "from=2026-11-09&to=2026-11-02",
        "channel=Whats App",
        "sla_minutes=0",
        "attendant=x",
    ):
        assert (await _get(manager, f"/api/analytics?{bad}"))[0] == 400, bad


async def test_series_compare_with_the_previous_period(clients):
    _, manager = clients
    status, found = await _get(manager, f"/api/analytics/series?{WEEK}")
    assert status == 200
    assert found["previous_period"]["from"] == "2026-10-26"
    assert found["series"]["handoffs"]["current"] == [2, 1, 1, 0, 0, 0, 0]


async def test_the_page_gets_figures_and_series_in_one_request(clients):
    _, manager = clients
    query = f"{WEEK}&channel=whatsapp&sla_minutes=30"
    status, both = await _get(manager, f"/api/analytics/console?{query}")
    assert status == 200
    report = (await _get(manager, f"/api/analytics?{query}"))[1]
    series = (await _get(manager, f"/api/analytics/series?{query}"))[1]
    # The reception now is read at each request: its longest wait grows between them.
    assert both["report"]["live"]["queue_size"] == report["live"]["queue_size"]
    assert {**both["report"], "live": None} == {**report, "live": None}
    assert both["series"] == series
    assert both["report"]["service"]["handoffs"] == 2
    assert (await _get(manager, "/api/analytics/console?channel=Whats App"))[0] == 400


async def test_every_table_exports_as_csv(clients):
    _, manager = clients
    status, text = await _get(manager, f"/api/analytics/export/motivos?{WEEK}")
    assert status == 200
    assert list(csv.reader(io.StringIO(text))) == [
        ["motivo", "quantidade"],
        ["pedido_do_paciente", "2"],
        ["duvida", "1"],
        ["emergencia", "1"],
    ]
    for table in ("atendentes", "canais", "agendamentos", "lembretes", "series"):
        status, text = await _get(manager, f"/api/analytics/export/{table}?{WEEK}")
        assert status == 200 and len(text.splitlines()) > 1, table
    status, text = await _get(manager, f"/api/analytics/export/lista?{WEEK}&figure=sla_breaches")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2 and rows[0]["channel"] == "webchat"


async def test_exported_text_never_runs_as_a_spreadsheet_formula(server, clients):
    _, manager = clients
    async with server.app[CTX].db.session() as session:
        ana = (await session.execute(select(User).where(User.name == "Ana"))).scalar_one()
        ana.name = '=HYPERLINK("http://example.com")'
    status, text = await _get(manager, f"/api/analytics/export/atendentes?{WEEK}")
    names = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert status == 200 and names == ['\'=HYPERLINK("http://example.com")', "Bruno"]


async def test_a_figure_drills_down_to_its_conversations(clients):
    _, manager = clients
    status, found = await _get(manager, f"/api/analytics/drill?{WEEK}&figure=reopened")
    assert status == 200
    assert (found["kind"], found["total"]) == ("conversations", 1)
    assert found["rows"][0]["reason"] == "pedido_do_paciente"
    assert (await _get(manager, f"/api/analytics/drill?{WEEK}&figure=everything"))[0] == 400
