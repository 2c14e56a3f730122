"""An admin sets a new specialty and doctor up in the admin page, in Chromium, over the whole
clinic (the real assistant and action server): the bot and the portal offer exactly those
slots at once, without retraining, and a clinic holiday the admin adds removes that day."""

import re
from datetime import date, datetime, time, timedelta

import pytest
from playwright.async_api import Page, expect

from models import utcnow
from scheduling.agenda import CLINIC_TZ, to_local
from scheduling.holidays import local_holidays, national_holidays
from tests.clients import StaffClient
from tests.clinic import STAFF_PASSWORD
from tests.e2e.conftest import bot_said, portal_patient, say

pytestmark = pytest.mark.e2e

TUESDAY = 1
# Margin for the test's own run time before the first slot.
LEAD = timedelta(minutes=30)


def _closed(day: date) -> bool:
    """A national holiday or one the demo clinic seeds (São Paulo's)."""
    days = national_holidays(day.year) + local_holidays(day.year)
    return any(d == day for d, _ in days)


def _tuesday_after(moment: datetime) -> date:
    """The first Tuesday whose 14h (clinic time) is still ahead and the clinic is open."""
    day = to_local(moment).date()
    while True:
        if (
            day.weekday() == TUESDAY
            and not _closed(day)
            and datetime.combine(day, time(14), CLINIC_TZ) > moment + LEAD
        ):
            return day
        day += timedelta(days=1)


def _times(day: date, count: int) -> list[str]:
    start = datetime.combine(day, time(14))
    return [f"{(start + timedelta(minutes=20 * n)):%H:%M}" for n in range(count)]


async def _admin_page(browser, clinic) -> Page:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{clinic.settings.web_url}/login")
    await page.fill("#email", clinic.login_for("admin@").email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{clinic.settings.web_url}/staff")
    await page.goto(f"{clinic.settings.web_url}/staff/admin")
    return page


async def _portal_slots(page: Page, first_day: date) -> list[str]:
    """The slots the portal offers for Endocrinologia, once the first is on `first_day`."""
    await page.select_option("#specialty", label="Endocrinologia")
    await page.click("#slot-search button[type=submit]")
    slots = page.locator("#slots button")
    await expect(slots.first).to_contain_text(f"{first_day:%d/%m}")
    return await slots.all_text_contents()


@pytest.fixture
async def doctor_ended(clinic):
    """The clinic is shared by the whole session: the new doctor stops being offered."""
    yield
    admin = StaffClient(clinic.settings.web_url)
    await admin.login(clinic.login_for("admin@").email, STAFF_PASSWORD)
    _, setup = await admin.request("GET", "/api/admin/agenda")
    for doctor in setup["doctors"]:
        if doctor["name"] == "Dra. Beatriz Moura":
            ended = {**doctor, "active_until": (date.today() - timedelta(days=1)).isoformat()}
            status, _ = await admin.request(
                "PUT", f"/api/admin/agenda/doctors/{doctor['id']}", ended
            )
            assert status == 200
    for holiday in setup["holidays"]:
        if holiday["name"] == "Aniversário da cidade (teste)":
            await admin.request("DELETE", f"/api/admin/agenda/holidays/{holiday['id']}")
    await admin.close()


async def test_an_admin_sets_a_doctor_up_and_the_bot_and_the_portal_offer_exactly_those_slots(
    clinic, browser, smtp_server, doctor_ended
):
    admin = await _admin_page(browser, clinic)

    # A specialty the assistant was never trained on, and its doctor: Tuesdays 14h-18h,
    # 20-minute appointments, accepting Unimed.
    await admin.fill("#specialty-name", "Endocrinologia")
    await admin.click("#specialty-form button[type=submit]")
    await expect(admin.locator("#setup-specialties")).to_contain_text("Endocrinologia")
    await admin.click("#doctor-new")
    await admin.fill("#doctor-name", "Dra. Beatriz Moura")
    await admin.fill("#doctor-crm", "CRM-SP 999001")
    await admin.locator("#doctor-specialties").get_by_label("Endocrinologia").check()
    await admin.locator("#doctor-convenios").get_by_label("Unimed").check()
    await admin.fill("#doctor-slot", "20")
    for starts, ends in (("14:00", "18:00"), ("17:00", "19:00")):
        await admin.click("#hours-add")
        row = admin.locator("#doctor-hours .hours-row").last
        await row.locator(".hours-weekday").select_option(label="Terça-feira")
        await row.locator(".hours-starts").fill(starts)
        await row.locator(".hours-ends").fill(ends)
    # Two overlapping ranges are refused, in words; without the second one it is saved.
    await admin.click("#doctor-form button[type=submit]")
    await expect(admin.locator("#doctor-status")).to_have_text(
        "terça-feira: duas faixas de horário se sobrepõem."
    )
    await admin.locator("#doctor-hours .hours-row").last.get_by_role("button").click()
    await admin.click("#doctor-form button[type=submit]")
    await expect(admin.locator("#doctor-status")).to_have_text(
        "Salvo. Os horários já aparecem para os pacientes."
    )
    await expect(admin.locator("#setup-doctors")).to_contain_text(
        "Dra. Beatriz Moura — Endocrinologia · consultas de 20 min"
    )

    tuesday = _tuesday_after(utcnow())
    offered = [f"ter {tuesday:%d/%m} {t}" for t in _times(tuesday, 3)]

    # A patient asks the bot in her own words: exactly the doctor's first three slots.
    patient = await (await browser.new_context()).new_page()
    await portal_patient(patient, clinic, smtp_server, "Rita Endócrina", "rita.endo@exemplo.com")
    await patient.click(".ocw-launcher")
    await say(patient, "quero marcar endocrinologia")
    await expect(bot_said(patient)).to_contain_text("Para quando você prefere?")
    await say(patient, "o quanto antes")
    await expect(patient.locator(".ocw-buttons button")).to_have_text(offered)

    # The portal's booking offers the same times (the first eight of that Tuesday).
    portal = await _portal_slots(patient, tuesday)
    assert len(portal) == 8
    for text, expected in zip(portal, _times(tuesday, 8), strict=True):
        assert re.search(rf"{tuesday:%d/%m}.*{expected} · Dra\. Beatriz Moura$", text), text

    # And so does the workspace's booking panel, for the reception.
    reception = StaffClient(clinic.settings.web_url)
    await reception.login(clinic.login_for("ana@").email, STAFF_PASSWORD)
    _, doctors = await reception.request("GET", "/api/agenda/doctors")
    [beatriz] = [d for d in doctors if d["name"] == "Dra. Beatriz Moura"]
    assert (beatriz["specialty_name"], beatriz["convenios"]) == ("Endocrinologia", ["Unimed"])
    specialty_id = beatriz["specialties"][0]["id"]
    _, found = await reception.request("GET", f"/api/slots?specialty_id={specialty_id}")
    await reception.close()
    assert [
        f"ter {to_local(datetime.fromisoformat(s['starts_at'])):%d/%m %H:%M}"
        for s in found["slots"]
    ][:3] == offered

    # The city's holiday on that Tuesday: the portal moves to the next open Tuesday.
    await admin.fill("#holiday-date", tuesday.isoformat())
    await admin.fill("#holiday-name", "Aniversário da cidade (teste)")
    await admin.click("#holiday-form button[type=submit]")
    await expect(admin.locator("#setup-holidays")).to_contain_text(
        f"{tuesday:%d/%m/%Y} — Aniversário da cidade (teste)"
    )
    later = _tuesday_after(datetime.combine(tuesday + timedelta(days=1), time(0), CLINIC_TZ))
    portal = await _portal_slots(patient, later)
    assert re.search(rf"{later:%d/%m}.*14:00 · Dra\. Beatriz Moura$", portal[0]), portal[0]
    assert not any(f"{tuesday:%d/%m}" in text for text in portal)
