"""HTML pages: the demo clinic site (with the chat widget), login and the staff workspace."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from core import access
from core.catalog import CATALOG_PATH
from core.settings import ROOT
from web.keys import USER, current_user

STATIC = Path(__file__).with_name("static")
CHART_JS = ROOT / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"


def render_page(name: str, **values: str) -> web.Response:
    html = (STATIC / name).read_text(encoding="utf-8")
    for key, value in values.items():
        html = html.replace("{{" + key + "}}", value)
    return web.Response(text=html, content_type="text/html")


async def clinic(request: web.Request) -> web.Response:
    return render_page("clinic.html")


async def login(request: web.Request) -> web.StreamResponse:
    user = request[USER]
    if user is not None:
        raise web.HTTPFound("/staff" if user.is_staff else "/portal")
    return render_page("login.html")


async def staff(request: web.Request) -> web.Response:
    current_user(request)
    return render_page("staff.html")


async def metrics(request: web.Request) -> web.Response:
    """The analytics console: managers and admins only; anyone else goes back to work."""
    if not access.is_manager(current_user(request)):
        raise web.HTTPFound("/staff")
    return render_page("metrics.html")


async def chart_library(_request: web.Request) -> web.FileResponse:
    """Chart.js as package-lock.json installed it (never a CDN: the pages' CSP allows only
    this origin)."""
    return web.FileResponse(CHART_JS, headers={"Content-Type": "text/javascript"})


async def catalog(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(CATALOG_PATH, headers={"Content-Type": "application/json"})


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def setup(app: web.Application) -> None:
    app.router.add_get("/", clinic)
    app.router.add_get("/login", login)
    app.router.add_get("/staff", staff)
    app.router.add_get("/staff/metrics", metrics)
    app.router.add_get("/catalog.json", catalog)
    app.router.add_get("/healthz", health)
    # Before the static folder, which would otherwise claim the path.
    app.router.add_get("/static/vendor/chart.umd.min.js", chart_library)
    app.router.add_static("/static/", STATIC)
