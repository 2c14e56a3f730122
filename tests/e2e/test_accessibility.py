"""The pages a patient and the staff use pass axe-core's WCAG 2.1 A/AA rules with no serious
or critical violation; the widget and booking in the portal work from the keyboard alone; the
portal stays usable on a 360 px phone and at 200% zoom. In Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from models import Role
from tests.clinic import STAFF_PASSWORD
from tests.e2e.accessibility import (
    PHONE,
    ZOOM_200,
    checked_context,
    overflow,
    screenshot,
    serious_violations,
)
from tests.e2e.conftest import bot_said, portal_patient, tab_to
from tests.factories import second_factor_optional, staff
from web.keys import CTX

pytestmark = pytest.mark.e2e


async def _no_serious_violations(page: Page, where: str) -> None:
    assert await serious_violations(page) == [], where


async def _fits(page: Page, where: str, folder: Path, layout: str) -> None:
    """No side scrolling, no control cut off, and a rendered page kept as a screenshot."""
    assert await overflow(page) == {"scrolls": False, "clipped": []}, f"{where} at {layout}"
    name = where.strip("/").replace("/", "-")
    shot = await screenshot(page, f"{name}-{layout}", folder)
    assert len(shot) > 10_000, where  # a rendered page, not a blank one


async def test_booking_and_rescheduling_in_the_portal_from_the_keyboard(
    clinic, browser, smtp_server
):
    page = await (await checked_context(browser)).new_page()
    await portal_patient(page, clinic, smtp_server, "Lia Teclado", "lia.teclado@exemplo.com")
    await expect(page.locator("#specialty option")).not_to_have_count(0)

    await tab_to(page, "#specialty")
    await page.keyboard.type("Dermatologia")
    await tab_to(page, "#slot-search button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page.locator("#slots button").first).to_be_visible()
    await tab_to(page, "#slots button")
    await page.keyboard.press("Enter")
    await expect(page.locator("#booking-status")).to_contain_text("Consulta agendada")
    booked = page.locator("#appointments li")
    await expect(booked).to_have_count(1)
    first_time = await booked.locator(".what").text_content()

    await tab_to(page, "#appointments button[data-action=confirm]")
    await page.keyboard.press("Enter")
    await expect(page.locator("#appointments")).to_contain_text("confirmada")

    await tab_to(page, "#appointments button[data-action=reschedule]")
    await page.keyboard.press("Enter")
    await expect(page.locator("#rescheduling")).to_be_visible()
    await tab_to(page, "#slot-search button[type=submit]")
    await page.keyboard.press("Enter")
    await expect(page.locator("#slots button").first).to_be_visible()
    await tab_to(page, "#slots button")
    await page.keyboard.press("Enter")
    await expect(page.locator("#booking-status")).to_contain_text("Consulta remarcada")
    await expect(page.locator("#appointments li")).to_have_count(1)
    assert await page.locator("#appointments .what").text_content() != first_time
    await expect(page.locator("#past-appointments")).to_contain_text("cancelada")

    await _no_serious_violations(page, "portal")


@pytest.mark.parametrize(("layout", "screen"), [("phone-360px", PHONE), ("zoom-200", ZOOM_200)])
async def test_the_portal_fits_a_phone_and_a_200_percent_zoom(
    clinic, browser, smtp_server, tmp_path, layout, screen
):
    page = await (await checked_context(browser, **screen)).new_page()
    email = f"rita.{layout}@exemplo.com"
    await portal_patient(page, clinic, smtp_server, "Rita Tela Pequena", email)
    await expect(page.locator("#specialty option")).not_to_have_count(0)
    await page.select_option("#specialty", label="Cardiologia")
    await page.click("#slot-search button[type=submit]")
    await expect(page.locator("#slots button").first).to_be_visible()

    await _fits(page, "portal", tmp_path, layout)
    await _no_serious_violations(page, f"portal at {layout}")


async def test_sign_up_login_and_the_site_with_its_widget_pass_axe(clinic, browser):
    page = await (await checked_context(browser)).new_page()
    base = clinic.settings.web_url
    for path in ("/cadastro", "/login", "/"):
        await page.goto(f"{base}{path}")
        await page.wait_for_load_state("networkidle")
        await _no_serious_violations(page, path)
    await page.click(".ocw-launcher")
    await expect(page.locator(".ocw-form input")).to_be_visible()
    await _no_serious_violations(page, "widget open")


async def test_the_staff_pages_pass_axe(clinic, browser):
    page = await (await checked_context(browser)).new_page()
    base = clinic.settings.web_url
    await page.goto(f"{base}/login")
    await page.fill("#email", clinic.login_for("marta@").email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/staff")
    await expect(page.locator("#connection")).to_have_text("Conectado")
    await _no_serious_violations(page, "/staff")
    await page.goto(f"{base}/staff/agenda")
    await page.wait_for_load_state("networkidle")
    await _no_serious_violations(page, "/staff/agenda")


async def test_the_widget_works_from_the_keyboard_alone(clinic, browser):
    page = await (await checked_context(browser)).new_page()
    await page.goto(f"{clinic.settings.web_url}/")

    await tab_to(page, ".ocw-launcher")
    await page.keyboard.press("Enter")
    await expect(page.locator(".ocw-form input")).to_be_focused()
    await page.keyboard.type("quais convênios vocês aceitam?")
    await page.keyboard.press("Enter")

    await expect(bot_said(page)).to_contain_text("Unimed")
    await expect(page.locator(".ocw-form input")).to_have_value("")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_admin_security_and_analytics_pages_pass_axe(browser, server):
    base = str(server.make_url("")).rstrip("/")
    ctx = server.app[CTX]
    await second_factor_optional(ctx.db)
    admin = await staff(ctx.db, Role.ADMIN)
    page = await (await checked_context(browser)).new_page()
    await page.goto(f"{base}/login")
    await page.fill("#email", admin.email)
    await page.fill("#password", "senha-segura")  # the factory's
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/staff")
    for path in (
        "/staff/admin",
        "/staff/seguranca",
        "/staff/metrics",
        "/staff/etiquetas",
        "/conta/senha",
    ):
        await page.goto(f"{base}{path}")
        await page.wait_for_load_state("networkidle")
        await _no_serious_violations(page, path)


@pytest.mark.parametrize(("layout", "screen"), [("phone-360px", PHONE), ("zoom-200", ZOOM_200)])
async def test_sign_up_login_the_widget_and_the_workspace_fit_a_phone_and_a_200_percent_zoom(
    clinic, browser, tmp_path, layout, screen
):
    page = await (await checked_context(browser, **screen)).new_page()
    base = clinic.settings.web_url
    for path in ("/cadastro", "/login"):
        await page.goto(f"{base}{path}")
        await page.wait_for_load_state("networkidle")
        await _fits(page, path, tmp_path, layout)

    await page.goto(f"{base}/")
    await page.click(".ocw-launcher")
    await page.fill(".ocw-form input", "quais convênios vocês aceitam?")
    await page.keyboard.press("Enter")
    await expect(bot_said(page)).to_contain_text("Unimed")
    await _fits(page, "widget", tmp_path, layout)
    await expect(page.locator(".ocw-form input")).to_be_in_viewport()

    await page.goto(f"{base}/login")
    await page.fill("#email", clinic.login_for("marta@").email)
    await page.fill("#password", STAFF_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("#connection")).to_have_text("Conectado")
    await _fits(page, "/staff", tmp_path, layout)
    await _no_serious_violations(page, f"/staff at {layout}")
