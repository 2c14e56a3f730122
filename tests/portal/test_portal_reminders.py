"""The patient chooses where reminders go first, among the channels that can reach them, and
can stop them; over real HTTP."""

from sqlalchemy import select

from models import PatientProfile, User
from web.keys import CTX


async def test_a_verified_email_is_offered_and_can_be_chosen(maria):
    async with maria.get("/api/portal/me") as response:
        me = await response.json()
    assert "email" in me["reminder_channels"] and me["reminders_opt_in"] is True

    async with maria.patch("/api/portal/me", json={"preferred_channel": "email"}) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["preferred_channel"] == "email"


async def test_a_channel_that_cannot_reach_the_patient_is_refused(maria):
    # The phone was only typed at sign-up: no WhatsApp can be chosen until it is proved.
    async with maria.patch("/api/portal/me", json={"preferred_channel": "whatsapp"}) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "error.channel_unreachable"


async def test_stopping_reminders_in_the_portal_turns_them_off(server, maria):
    async with maria.post("/api/portal/consents/lembretes/withdraw") as response:
        assert response.status == 200
    async with maria.get("/api/portal/me") as response:
        assert (await response.json())["reminders_opt_in"] is False
    async with server.app[CTX].db.session() as session:
        query = select(PatientProfile.reminders_opt_in).join(User).where(User.name.is_not(None))
        assert (await session.execute(query)).scalars().all() == [False]
