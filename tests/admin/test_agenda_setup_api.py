"""The agenda set-up's JSON API over real HTTP: only admins reach it, what cannot be an
agenda is answered with a 4xx and its reason in pt-BR (nothing saved), each change is
audit-logged, and the doctor saved is searchable by the workspace at once."""

from collections.abc import AsyncIterator

import pytest

from models import ClinicProfile, Role
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


async def _http(server, role: Role):
    user = await staff(server.app[CTX].db, role, password=PASSWORD)
    return await logged_in(server, user.email, PASSWORD)


def _doctor(specialty_id: int, **changes) -> dict:
    return {
        "name": "Dra. Beatriz Moura",
        "specialty_ids": [specialty_id],
        "convenios": ["Unimed"],
        "slot_minutes": 20,
        "hours": [{"weekday": 1, "starts": "14:00", "ends": "18:00"}],
        **changes,
    }


async def test_an_admin_sets_a_doctor_up_and_refusals_say_why_in_portuguese(server):
    admin = await _http(server, Role.ADMIN)
    try:
        async with admin.post("/api/admin/agenda/specialties", json={"name": "Dermatologia"}) as r:
            assert r.status == 201
            specialty = await r.json()
        async with admin.post("/api/admin/agenda/specialties", json={"name": "dermatologia"}) as r:
            assert (r.status, (await r.json())["error"]) == (
                409,
                "Já existe a especialidade dermatologia.",
            )
        overlapping = _doctor(
            specialty["id"],
            hours=[
                {"weekday": 1, "starts": "14:00", "ends": "18:00"},
                {"weekday": 1, "starts": "13:00", "ends": "15:00"},
            ],
        )
        async with admin.post("/api/admin/agenda/doctors", json=overlapping) as r:
            assert (r.status, (await r.json())["error"]) == (
                400,
                "terça-feira: duas faixas de horário se sobrepõem.",
            )
        async with admin.post(
            "/api/admin/agenda/doctors", json=_doctor(specialty["id"], slot_minutes=300)
        ) as r:
            assert (r.status, (await r.json())["error"]) == (
                400,
                "A duração da consulta deve ser de 5 a 240 minutos.",
            )
        async with admin.post("/api/admin/agenda/doctors", json=_doctor(specialty["id"])) as r:
            assert r.status == 201
            doctor = await r.json()
        async with admin.get("/api/admin/agenda") as r:
            setup = await r.json()
        async with admin.get(f"/api/slots?doctor_id={doctor['id']}") as r:
            slots = (await r.json())["slots"]
    finally:
        await admin.close()

    assert [d["name"] for d in setup["doctors"]] == ["Dra. Beatriz Moura"]
    assert setup["doctors"][0]["hours"] == [{"weekday": 1, "starts": "14:00", "ends": "18:00"}]
    assert "Unimed" in setup["convenios"]
    assert slots and {s["specialty_name"] for s in slots} == {"Dermatologia"}
    changes = await audit_entries(server.app[CTX].db, "agenda_changed")
    assert [(e.details["what"], e.details["change"]) for e in changes] == [
        ("specialty", "created"),
        ("doctor", "created"),
    ]


@pytest.mark.parametrize("role", [Role.ATTENDANT, Role.MANAGER])
async def test_only_admins_change_the_agenda(server, role):
    http = await _http(server, role)
    try:
        async with http.post("/api/admin/agenda/specialties", json={"name": "Urologia"}) as r:
            assert r.status == 403
        async with http.get("/api/admin/agenda") as r:
            assert r.status == 403
    finally:
        await http.close()
