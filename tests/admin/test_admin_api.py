from collections.abc import AsyncIterator

import pytest

from models import ClinicProfile, Presence, Role
from scripts.demo_clinic import CLINIC_PROFILE
from tests.factories import audit_entries, staff
from tests.webapp import logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings) -> AsyncIterator:
    async with web_server(settings) as server:
        async with server.app[CTX].db.session() as session:
            session.add(ClinicProfile(name="Clínica Teste", data=CLINIC_PROFILE))
        yield server


@pytest.fixture
async def admin_http(server):
    admin = await staff(server.app[CTX].db, Role.ADMIN, password=PASSWORD)
    http = await logged_in(server, admin.email, PASSWORD)
    yield http
    await http.close()


async def test_the_admin_creates_an_attendant_who_can_then_log_in(server, admin_http):
    new = {
        "name": "Carla Dias",
        "email": "Carla@Clinica.test",
        "role": "attendant",
        "password": "senha-da-carla",
        "capacity": 3,
    }
    async with admin_http.post("/api/admin/staff", json=new) as response:
        assert response.status == 201

    carla = await logged_in(server, "carla@clinica.test", "senha-da-carla")
    try:
        async with carla.get("/api/me") as response:
            me = await response.json()
        assert (me["name"], me["role"], me["capacity"], me["presence"]) == (
            "Carla Dias",
            "attendant",
            3,
            "offline",
        )
    finally:
        await carla.close()


@pytest.mark.parametrize("role", [Role.ATTENDANT, Role.MANAGER])
async def test_only_the_admin_manages_staff(server, role):
    user = await staff(server.app[CTX].db, role, presence=Presence.OFFLINE, password=PASSWORD)
    http = await logged_in(server, user.email, PASSWORD)
    try:
        new = {"name": "X", "email": "x@clinica.test", "role": "admin", "password": "12345678"}
        async with http.post("/api/admin/staff", json=new) as response:
            assert response.status == 403
        async with http.get("/api/admin/staff") as response:
            assert response.status == 403
        async with http.put("/api/admin/clinic", json={"name": "X", "data": {}}) as response:
            assert response.status == 403
        async with http.get("/staff/admin", allow_redirects=False) as response:
            assert response.headers["Location"] == "/staff"
    finally:
        await http.close()


async def test_invalid_staff_accounts_are_refused_with_a_reason(admin_http):
    existing = {
        "name": "Ana",
        "email": "ana@clinica.test",
        "role": "attendant",
        "password": "senha-da-ana",
    }
    async with admin_http.post("/api/admin/staff", json=existing) as response:
        assert response.status == 201
    async with admin_http.post("/api/admin/staff", json=existing) as response:
        assert response.status == 409
        assert (await response.json())["error"] == "Já existe uma conta com este e-mail."
    async with admin_http.post(
        "/api/admin/staff", json={**existing, "email": "b@clinica.test", "password": "curta"}
    ) as response:
        assert response.status == 400
    async with admin_http.post(
        "/api/admin/staff", json={**existing, "email": "c@clinica.test", "role": "patient"}
    ) as response:
        assert response.status == 400
    async with admin_http.get("/api/admin/staff") as response:
        assert [u["email"] for u in await response.json() if u["role"] == "attendant"] == [
            "ana@clinica.test"
        ]


async def test_deactivating_an_account_ends_its_sessions(server, admin_http):
    bruno = await staff(server.app[CTX].db, password=PASSWORD)
    bruno_http = await logged_in(server, bruno.email, PASSWORD)
    try:
        async with admin_http.patch(
            f"/api/admin/staff/{bruno.id}", json={"is_active": False}
        ) as response:
            assert response.status == 200
        async with bruno_http.get("/api/me") as response:
            assert response.status == 401
    finally:
        await bruno_http.close()


async def test_the_clinic_profile_is_edited_and_audited(server, admin_http):
    async with admin_http.get("/api/admin/clinic") as response:
        profile = await response.json()
    profile["data"]["convenios"] = ["Amil", "Unimed", "  "]
    async with admin_http.put("/api/admin/clinic", json=profile) as response:
        assert response.status == 200
    async with admin_http.get("/api/admin/clinic") as response:
        assert (await response.json())["data"]["convenios"] == ["Amil", "Unimed"]

    async with admin_http.put(
        "/api/admin/clinic", json={"name": "Clínica", "data": {"convenios": 3}}
    ) as response:
        assert response.status == 400
    async with admin_http.get("/api/admin/clinic") as response:
        assert (await response.json())["data"]["convenios"] == ["Amil", "Unimed"]

    entries = await audit_entries(server.app[CTX].db)
    assert [e.action for e in entries] == ["clinic_profile_updated"]
