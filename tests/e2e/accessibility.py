"""axe-core (installed from package-lock.json) run inside a page, and the layout checks a
phone screen and a 200% zoom need."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page

from core.settings import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# A 360 px wide phone; and a 1280 px screen at 200% zoom, which lays pages out in 640 CSS
# pixels with every pixel drawn twice (what the browser's zoom does).
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2}
ZOOM_200 = {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2}


async def checked_context(browser: Browser, **options: object) -> BrowserContext:
    """A browser context axe can be injected into: the pages' CSP allows only their own
    scripts, so the test's injection bypasses it (the pages themselves are unchanged)."""
    return await browser.new_context(bypass_csp=True, **options)  # type: ignore[arg-type]


async def serious_violations(page: Page, within: str | None = None) -> list[dict[str, object]]:
    """The WCAG 2.1 A/AA violations axe rates serious or critical: rule and elements (of the
    whole page, or of the part `within` selects)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=AXE.read_text())
    return await page.evaluate(
        """async ([tags, within]) => {
            const context = within ? {include: [within]} : document;
            const result = await axe.run(context, {runOnly: {type: "tag", values: tags}});
            return result.violations
              .filter((v) => v.impact === "serious" || v.impact === "critical")
              .map((v) => ({rule: v.id, impact: v.impact,
                            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
        }""",
        [WCAG_21_AA, within],
    )


async def overflow(page: Page) -> dict[str, object]:
    """Whether the page scrolls sideways, and the visible controls cut off at the right
    edge of the screen (a control the user cannot reach without side scrolling)."""
    return await page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const controls = "button, a, input, select, textarea, label";
            const clipped = [...document.querySelectorAll(controls)]
              .filter((el) => el.offsetParent !== null)
              .filter((el) => {
                const r = el.getBoundingClientRect();
                return r.width > 0 && r.right > width + 1;
              })
              .map((el) => el.id || el.name || el.textContent.trim().slice(0, 40));
            return {scrolls: document.documentElement.scrollWidth > width + 1, clipped};
        }"""
    )


async def screenshot(page: Page, name: str, folder: Path) -> bytes:
    """The whole page as a PNG, kept in `folder` (pytest's tmp_path) for a person to look at."""
    return await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
