import pytest

from tests.portal.test_patient_accounts import MARIA
from tests.webapp import signed_up

JOAO = {**MARIA, "name": "João Souza", "email": "joao@exemplo.com", "cpf": "111.444.777-35"}


async def _first_slot(http, specialty_name: str) -> dict:
    async with http.get("/api/portal/specialties") as response:
        specialties = {s["name"]: s["id"] for s in await response.json()}
    async with http.get(
        "/api/portal/slots", params={"specialty_id": specialties[specialty_name]}
    ) as response:
        slots = await response.json()
    assert slots, "the demo agenda has free slots"
    return slots[0]


async def test_a_patient_books_a_free_slot_and_sees_it(maria):
    slot = await _first_slot(maria, "Cardiologia")
    async with maria.post(
        "/api/portal/appointments",
        json={"doctor_id": slot["doctor_id"], "starts_at": slot["starts_at"]},
    ) as response:
        assert response.status == 201
    async with maria.get("/api/portal/appointments") as response:
        [appointment] = await response.json()
    assert appointment["doctor_name"] == slot["doctor_name"]
    assert appointment["starts_at"] == slot["starts_at"]
    assert appointment["status"] == "agendada"

    slot_again = await _first_slot(maria, "Cardiologia")
    assert slot_again["starts_at"] != slot["starts_at"], "a booked slot is no longer offered"


async def test_a_slot_taken_meanwhile_is_refused_in_portuguese(server, maria, smtp_server):
    slot = await _first_slot(maria, "Dermatologia")
    joao = await signed_up(server, smtp_server, JOAO)
    try:
        body = {"doctor_id": slot["doctor_id"], "starts_at": slot["starts_at"]}
        async with joao.post("/api/portal/appointments", json=body) as response:
            assert response.status == 201
        async with maria.post("/api/portal/appointments", json=body) as response:
            assert response.status == 409
            assert (await response.json())[
                "error"
            ] == "Esse horário acabou de ser ocupado. Escolha outro."
    finally:
        await joao.close()


async def test_patients_cancel_only_their_own_appointments(server, maria, smtp_server):
    slot = await _first_slot(maria, "Pediatria")
    async with maria.post(
        "/api/portal/appointments",
        json={"doctor_id": slot["doctor_id"], "starts_at": slot["starts_at"]},
    ) as response:
        appointment_id = (await response.json())["id"]
    joao = await signed_up(server, smtp_server, JOAO)
    try:
        async with joao.post(f"/api/portal/appointments/{appointment_id}/cancel") as response:
            assert response.status == 404
    finally:
        await joao.close()
    async with maria.post(f"/api/portal/appointments/{appointment_id}/cancel") as response:
        assert response.status == 200
    async with maria.get("/api/portal/appointments") as response:
        assert await response.json() == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"doctor_id": "x", "starts_at": "2030-01-01T10:00:00+00:00"},
        {"doctor_id": 1, "starts_at": "2030-01-01T10:00:00"},
    ],
)
async def test_malformed_bookings_are_refused(maria, body):
    async with maria.post("/api/portal/appointments", json=body) as response:
        assert response.status == 400


async def test_a_time_off_the_agenda_is_refused(maria):
    slot = await _first_slot(maria, "Cardiologia")
    body = {
        "doctor_id": slot["doctor_id"],
        "starts_at": slot["starts_at"].replace(":00+", ":07+", 1),
    }
    async with maria.post("/api/portal/appointments", json=body) as response:
        assert response.status == 409


async def _book_first(http, specialty_name: str = "Cardiologia") -> tuple[int, dict]:
    slot = await _first_slot(http, specialty_name)
    body = {"doctor_id": slot["doctor_id"], "starts_at": slot["starts_at"]}
    async with http.post("/api/portal/appointments", json=body) as response:
        assert response.status == 201, await response.text()
        return (await response.json())["id"], slot


async def test_a_patient_confirms_attendance(maria):
    appointment_id, _ = await _book_first(maria)

    async with maria.post(f"/api/portal/appointments/{appointment_id}/confirm") as response:
        assert response.status == 200, await response.text()
    async with maria.get("/api/portal/appointments") as response:
        [appointment] = await response.json()
    assert appointment["status"] == "confirmada"


async def test_a_patient_reschedules_and_the_old_time_is_listed_as_past(maria):
    appointment_id, first = await _book_first(maria)
    later = await _first_slot(maria, "Cardiologia")  # the next free one

    async with maria.post(
        f"/api/portal/appointments/{appointment_id}/reschedule",
        json={"doctor_id": later["doctor_id"], "starts_at": later["starts_at"]},
    ) as response:
        assert response.status == 201, await response.text()
        moved_id = (await response.json())["id"]

    async with maria.get("/api/portal/appointments") as response:
        [upcoming] = await response.json()
    assert (upcoming["id"], upcoming["starts_at"]) == (moved_id, later["starts_at"])
    assert upcoming["rescheduled_from_id"] == appointment_id
    async with maria.get("/api/portal/appointments/past") as response:
        [old] = await response.json()
    assert (old["id"], old["starts_at"], old["status"]) == (
        appointment_id,
        first["starts_at"],
        "cancelada",
    )


async def test_the_calendar_file_is_the_patients_own_appointment(server, maria, smtp_server):
    appointment_id, slot = await _book_first(maria)

    async with maria.get(f"/api/portal/appointments/{appointment_id}/calendar.ics") as response:
        assert response.status == 200
        assert response.content_type == "text/calendar"
        assert "attachment" in response.headers["Content-Disposition"]
        ics = await response.text()
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and slot["doctor_name"] in ics
    joao = await signed_up(server, smtp_server, JOAO)
    try:
        for path in ("calendar.ics", "confirm", "reschedule"):
            method = joao.get if path.endswith(".ics") else joao.post
            async with method(f"/api/portal/appointments/{appointment_id}/{path}") as response:
                assert response.status == 404, path
    finally:
        await joao.close()
