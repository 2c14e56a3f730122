"""A morning at the reception: two attendants and a manager, each in their own Chromium
window, serve patients writing in the site widget; nothing is reloaded by hand."""

import re

import pytest
from playwright.async_api import expect

from tests.clients import WidgetClient
from tests.e2e.conftest import hand_off, open_workspace, reset_reception

pytestmark = pytest.mark.e2e


def _item(page, list_id: str, conversation_id: int):
    return page.locator(f'#{list_id} [data-conversation-id="{conversation_id}"]')


async def test_a_morning_at_the_reception(clinic, browser):
    await reset_reception(clinic)
    names = {prefix: clinic.login_for(prefix).name for prefix in ("ana@", "bruno@", "marta@")}
    windows = {prefix: await open_workspace(browser, clinic, prefix) for prefix in names}
    by_name = {name: windows[prefix] for prefix, name in names.items()}
    for prefix in ("ana@", "bruno@"):
        await windows[prefix].select_option("#presence", "online")
        await expect(
            windows["marta@"].locator(".member.presence-online", has_text=names[prefix])
        ).to_be_visible()

    patients = []
    try:
        # Conversations flow in and are spread by load: one each before anyone gets two.
        first, c1, holder1 = await hand_off(clinic, "sou o paciente 1, preciso de ajuda")
        second, c2, holder2 = await hand_off(clinic, "sou o paciente 2, preciso de ajuda")
        patients += [first, second]
        assert {holder1, holder2} == {names["ana@"], names["bruno@"]}
        other = next(name for name in (names["ana@"], names["bruno@"]) if name != holder1)
        x, y, marta = by_name[holder1], by_name[other], windows["marta@"]
        await expect(_item(x, "mine", c1)).to_be_visible()
        await expect(_item(y, "mine", c2)).to_be_visible()
        await expect(_item(x, "mine", c2)).to_have_count(0)
        await expect(_item(marta, "others", c1)).to_contain_text(f"com {holder1}")

        # The attendant sees the whole history and answers with a canned response.
        await _item(x, "mine", c1).click()
        await expect(x.locator("#timeline")).to_contain_text("sou o paciente 1")
        await expect(x.locator("#timeline")).to_contain_text("Vou chamar alguém da nossa equipe")
        await x.select_option("#canned", "bomdia")
        await expect(x.locator("#reply-text")).to_have_value(re.compile(r"^Bom dia"))
        await x.press("#reply-text", "Enter")
        assert (await first.next_reply("attendant"))["text"].startswith("Bom dia")

        # The manager whispers; only staff see it.
        await _item(marta, "others", c1).click()
        await marta.select_option("#reply-mode", "note")
        await marta.fill("#reply-text", "Confira a carteirinha do convênio.")
        await marta.press("#reply-text", "Enter")
        await expect(x.locator("#timeline .entry.internal")).to_contain_text(
            "Confira a carteirinha"
        )
        assert all("carteirinha" not in reply["text"] for reply in await first.replies_within(1))
        reopened = WidgetClient(clinic.widget_socket_url)
        patients.append(reopened)
        welcome = await reopened.connect(first.token)
        assert all("carteirinha" not in m["text"] for m in welcome["history"])

        # A reception action is recorded, typed, in the timeline.
        await x.click('#actions [data-action="exams_delivered"]')
        await expect(x.locator("#timeline .entry.action")).to_contain_text(
            "Exames entregues ao paciente"
        )

        # Transfer to the colleague: it moves between their screens live.
        target = x.locator("#transfer-to option", has_text=other)
        await x.select_option("#transfer-to", await target.get_attribute("value"))
        await x.click("#transfer")
        assert (await first.next_reply("system"))["text"].startswith(other)
        await expect(_item(y, "mine", c1)).to_be_visible()
        await expect(_item(x, "mine", c1)).to_have_count(0)

        # The manager barges into the other conversation.
        await _item(marta, "others", c2).click()
        await marta.click("#take-over")
        assert (await second.next_reply("system"))["text"].startswith(names["marta@"])
        await expect(_item(marta, "mine", c2)).to_be_visible()
        await expect(_item(y, "mine", c2)).to_have_count(0)

        # Resolution hands the patient back to the bot, which answers the next message.
        await _item(y, "mine", c1).click()
        await y.click("#resolve")
        assert "encerrado" in (await first.next_reply("bot"))["text"]
        await expect(_item(y, "mine", c1)).to_have_count(0)
        await first.say("oi")
        assert "assistente virtual" in (await first.next_reply("bot"))["text"]

        # The manager's indicators count the morning's handoffs.
        await marta.goto(f"{clinic.settings.web_url}/staff/metrics")
        await expect(marta.locator("#service-cards")).to_contain_text("Encaminhadas para a equipe")
        await expect(marta.locator("#attendants tbody tr", has_text=holder1)).to_be_visible()
    finally:
        for patient in patients:
            await patient.close()
        for page in windows.values():
            await page.context.close()
        await reset_reception(clinic)
