"""What the audit log records, from which address (behind the trusted proxy too), and the
admin's API over it: filters, pages, the chain's verification, and nobody else."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from core.settings import Settings
from handoff.transitions import queueing
from messaging.files import keep_upload
from models import ClinicProfile, Presence, Role, SecondFactorPolicy, SecurityPolicy
from scripts.demo_clinic import CLINIC_PROFILE
from tests.channels.test_files_in import PNG
from tests.factories import audit_entries, patient_message, staff
from tests.webapp import logged_in, patient_logged_in, web_server
from web.admin import AUDIT_PAGE_SIZE
from web.keys import CTX

PASSWORD = "senha-segura"
CLIENT = "203.0.113.9"
# The client's address as our reverse proxy (127.0.0.1, trusted) forwards it.
VIA_PROXY = {"X-Forwarded-For": f"198.51.100.66, {CLIENT}"}


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestServer]:
    behind_proxy = Settings.from_env({**settings.child_env(), "TRUSTED_PROXIES": "127.0.0.1"})
    async with web_server(behind_proxy) as server:
        async with server.app[CTX].db.session() as session:
            session.add(ClinicProfile(name="Clínica Teste", data=CLINIC_PROFILE))
            # These tests count every entry a login leaves; the second factor's own entries
            # are tested in tests/accounts/test_second_factor.py.
            session.add(SecurityPolicy(second_factor=SecondFactorPolicy.NOBODY))
        yield server


async def _client(server: TestServer, email: str, password: str = PASSWORD):
    http = aiohttp.ClientSession(
        base_url=str(server.make_url("")),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        headers=VIA_PROXY,
    )
    async with http.post("/api/login", json={"email": email, "password": password}) as response:
        assert response.status == 200
    return http


async def test_logins_failed_logins_and_logouts_are_recorded_with_the_client_address(server):
    db = server.app[CTX].db
    ana = await staff(db)
    async with aiohttp.ClientSession(base_url=str(server.make_url(""))) as http:
        for email in (ana.email, "ninguem@exemplo.com"):
            async with http.post(
                "/api/login",
                json={"email": email, "password": "senha-errada-123"},
                headers=VIA_PROXY,
            ) as response:
                assert response.status == 401
    ana_http = await _client(server, ana.email)
    async with ana_http.post("/api/logout") as response:
        assert response.status == 200
    await ana_http.close()

    entries = await audit_entries(db, "login", "login_failed", "logout")
    assert [(e.action, e.actor_id, e.ip) for e in entries] == [
        ("login_failed", None, CLIENT),
        ("login_failed", None, CLIENT),
        ("login", ana.id, CLIENT),
        ("logout", ana.id, CLIENT),
    ]
    failed = [str(e.details) for e in entries[:2]]
    # Neither the address typed nor the password is kept; the same address matches.
    assert not any(secret in row for row in failed for secret in ("senha-errada", "@", "ninguem"))
    assert entries[0].details["email"] != entries[1].details["email"]


async def test_a_patients_export_is_recorded(server):
    http = await patient_logged_in(server, PASSWORD)
    try:
        async with http.get("/api/portal/export", headers=VIA_PROXY) as response:
            assert response.status == 200
    finally:
        await http.close()
    [export] = await audit_entries(server.app[CTX].db, "export")
    assert (export.actor_id, export.patient_id, export.ip) == (
        export.patient_id,
        export.patient_id,
        CLIENT,
    )


async def test_admin_changes_are_recorded_with_the_admin_and_address(server):
    db = server.app[CTX].db
    admin = await staff(db, Role.ADMIN)
    http = await _client(server, admin.email)
    try:
        new = {"name": "Carla", "email": "carla@clinica.test", "role": "attendant"}
        async with http.post("/api/admin/staff", json={**new, "password": "12345678"}) as r:
            carla_id = (await r.json())["id"]
        async with http.patch(f"/api/admin/staff/{carla_id}", json={"is_active": False}) as r:
            assert r.status == 200
        async with http.put(
            "/api/admin/clinic", json={"name": "Clínica", "data": {"telefone": "1"}}
        ) as r:
            assert r.status == 200
    finally:
        await http.close()
    entries = await audit_entries(db, "staff_created", "staff_updated", "clinic_profile_updated")
    assert [(e.action, e.actor_id, e.ip) for e in entries] == [
        ("staff_created", admin.id, CLIENT),
        ("staff_updated", admin.id, CLIENT),
        ("clinic_profile_updated", admin.id, CLIENT),
    ]
    assert entries[1].details == {
        "target_user_id": carla_id,
        "fields": ["is_active"],
        "is_active": False,
    }


# Every GET route of the staff API (not the portal's, not the admin's own), and what a read
# of it records: an action, or None for routes that return no patient's data.
STAFF_READS = {
    "/api/me": None,
    "/api/account/second-factor": None,  # whether one's own second factor is on
    "/api/conversations": "read_conversation_list",
    "/api/conversations/{id}": "read_history",
    "/api/conversations/{id}/window": None,  # whether the channel's window is open, until when
    "/api/transcripts/{id}": "read_history",
    "/api/search": "search",
    "/api/past-conversations": "read_conversation_list",
    "/api/patients/{id}/appointments": "read_appointments",
    "/api/patients/{id}/card": "read_patient_card",
    "/api/agenda": "read_agenda",
    "/api/ws": "live_supervision_opened",
    "/api/agenda/doctors": None,
    "/api/slots": None,  # free slots: no patient in them
    "/api/attendants": None,
    "/api/canned-responses": None,
    "/api/labels": None,  # the clinic's labels: no patient in them
    "/api/analytics": None,  # counts and durations, no patient named
    "/api/analytics/series": None,
    "/api/analytics/console": None,  # the two above in one answer
    "/api/analytics/drill": None,  # conversation ids, channels and times: no patient data
    "/api/analytics/export/{table}": None,
    "/api/openapi.json": None,  # the API's contract, public
    "/api/files/{key}": "read_file",
}

QUERIES = {
    "/api/slots": {"doctor_id": "1"},
    "/api/analytics/drill": {"figure": "handoffs"},
    "/api/search": {"q": "ajuda"},
}


def _staff_get_routes(server: TestServer) -> set[str]:
    paths = {
        route.resource.canonical.replace(r"{id:\d+}", "{id}")
        for route in server.app.router.routes()
        if route.method == "GET" and route.resource is not None
    }
    return {
        path
        for path in paths
        if path.startswith("/api/") and not path.startswith(("/api/portal/", "/api/admin/"))
    }


async def test_every_staff_read_of_patient_data_is_recorded_with_the_address(server):
    assert _staff_get_routes(server) == set(STAFF_READS), "classify the new route here"
    ctx = server.app[CTX]
    marta = await staff(ctx.db, Role.MANAGER, presence=Presence.OFFLINE)
    recorded = await patient_message(ctx.db, "preciso de ajuda")
    await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
    photo = await keep_upload(ctx, marta, recorded.conversation.id, PNG, "carteirinha.png")
    http = await _client(server, marta.email)
    try:
        for path in STAFF_READS:
            if path == "/api/ws":
                await (await http.ws_connect(path)).close()
                continue
            owner = recorded.message.patient_id if "patients" in path else recorded.conversation.id
            query = QUERIES.get(path, {})
            url = path.format(id=owner, table="motivos", key=photo.key)
            async with http.get(url, params=query) as response:
                assert response.status == 200, path
    finally:
        await http.close()

    entries = await audit_entries(ctx.db)
    recorded_actions = {e.action for e in entries}
    assert recorded_actions == {a for a in STAFF_READS.values() if a}
    assert {(e.actor_id, e.ip) for e in entries} == {(marta.id, CLIENT)}
    [history] = [
        e
        for e in entries
        if e.action == "read_history" and (e.details or {}).get("scope") != "transcript"
    ]
    assert (history.patient_id, history.conversation_id) == (
        recorded.message.patient_id,
        recorded.conversation.id,
    )


async def test_the_admin_lists_and_filters_the_log_and_verifies_the_chain(server):
    db = server.app[CTX].db
    admin = await staff(db, Role.ADMIN)
    marta = await staff(db, Role.MANAGER, presence=Presence.OFFLINE)
    patient_id = (await patient_message(db, "oi", display_name="Helena Prado")).message.patient_id
    marta_http = await _client(server, marta.email)
    async with marta_http.get(f"/api/patients/{patient_id}/appointments") as response:
        assert response.status == 200
    await marta_http.close()
    http = await _client(server, admin.email)
    try:
        async with http.get("/api/admin/audit", params={"patient_id": patient_id}) as response:
            listed = await response.json()
        assert [(e["action"], e["actor_name"], e["patient_name"]) for e in listed["entries"]] == [
            ("read_appointments", marta.name, "Helena Prado")
        ]
        assert (listed["page"], listed["pages"], listed["total"]) == (1, 1, 1)
        async with http.get(
            "/api/admin/audit", params={"actor_id": marta.id, "action": "login"}
        ) as response:
            [login] = (await response.json())["entries"]
        assert (login["action"], login["ip"]) == ("login", CLIENT)
        long_ago = {"from": "2000-01-01", "to": "2000-01-31"}
        async with http.get("/api/admin/audit", params=long_ago) as response:
            assert (await response.json())["total"] == 0
        async with http.get("/api/admin/audit", params={"action": "nada"}) as response:
            assert response.status == 400
        async with http.get("/api/admin/audit/verify") as response:
            report = await response.json()
    finally:
        await http.close()
    # Two logins, Marta's read and the admin's three listings (each recorded).
    assert report == {"intact": True, "checked": 6, "unchained": 0, "broken_id": None}


async def test_the_log_is_paginated_newest_first(server):
    db = server.app[CTX].db
    admin = await staff(db, Role.ADMIN)
    http = await _client(server, admin.email)
    try:
        for _ in range(AUDIT_PAGE_SIZE):
            async with http.get("/api/agenda"):
                pass
        async with http.get("/api/admin/audit", params={"page": 2}) as response:
            second = await response.json()
    finally:
        await http.close()
    # The login and 50 agenda reads: the login is alone on page two.
    assert (second["page"], second["pages"], second["total"]) == (2, 2, AUDIT_PAGE_SIZE + 1)
    assert [e["action"] for e in second["entries"]] == ["login"]


@pytest.mark.parametrize("role", [Role.ATTENDANT, Role.MANAGER])
async def test_only_the_admin_reads_the_audit_log(server, role):
    user = await staff(server.app[CTX].db, role, presence=Presence.OFFLINE)
    http = await logged_in(server, user.email, PASSWORD)
    try:
        for path in ("/api/admin/audit", "/api/admin/audit/verify"):
            async with http.get(path) as response:
                assert response.status == 403
    finally:
        await http.close()
    assert await audit_entries(server.app[CTX].db) == []


async def test_a_patient_cannot_read_the_audit_log(server):
    http = await patient_logged_in(server, PASSWORD)
    try:
        async with http.get("/api/admin/audit") as response:
            assert response.status == 403
    finally:
        await http.close()
