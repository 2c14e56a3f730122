"""The manager's analytics console API: figures, series, the rows behind a figure, and CSV of
each table (handoff.analytics computes them; this only reads the request and shapes the
answer). Managers and admins only (core.access)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

import handoff.analytics as analytics
from core import access
from core.errors import BadRequest, Forbidden
from handoff.analytics import drill
from handoff.queue import CLINIC_TZ
from models import utcnow
from web.keys import CTX, current_user, id_from

CHANNEL = re.compile(r"[a-z][a-z0-9_]{0,23}")
# Reports computed at once by this process: one, so a manager's year never makes the staff's
# live traffic wait behind several (the others queue here, not in the database).
CONCURRENT_REPORTS = 1
REPORTS = web.AppKey("analytics_reports", asyncio.Semaphore)
# A spreadsheet runs a cell starting with these as a formula: such text is exported quoted.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _scope(request: web.Request, dialect: str) -> analytics.Scope:
    if not access.is_manager(current_user(request)):
        raise Forbidden()
    query = request.query
    now = utcnow()
    try:
        period = analytics.Period.parse(
            query.get("from"), query.get("to"), now.astimezone(CLINIC_TZ).date()
        )
    except ValueError:
        raise BadRequest("error.invalid_period") from None
    channel = query.get("channel") or None
    if channel is not None and not CHANNEL.fullmatch(channel):
        raise BadRequest("error.invalid_channel")
    attendant = query.get("attendant")
    attendant_id = None if not attendant else id_from(attendant)
    if attendant and attendant_id is None:
        raise BadRequest("error.invalid_attendant")
    label = query.get("label")
    label_id = None if not label else id_from(label)
    if label and label_id is None:
        raise BadRequest("labels.error.invalid")
    sla = query.get("sla_minutes", str(analytics.DEFAULT_SLA_MINUTES))
    if not sla.isdigit() or not 1 <= int(sla) <= analytics.MAX_SLA_MINUTES:
        raise BadRequest("error.invalid_sla")
    filters = analytics.Filters(channel=channel, attendant_id=attendant_id, label_id=label_id)
    return analytics.Scope(period, filters, dialect, now, sla_seconds=int(sla) * 60)


async def _figures(request: web.Request, kind: str) -> Any:
    db = request.app[CTX].db
    scope = _scope(request, db.engine.dialect.name)
    figure = request.query.get("figure", "")
    if kind == "drill" and figure not in drill.FIGURES:
        raise BadRequest("error.invalid_figure")
    async with request.app[REPORTS]:
        if kind == "console":  # its own transactions, side by side
            return await analytics.console(db, scope)
        async with db.session() as session:
            if kind == "report":
                return await analytics.report(session, scope)
            if kind == "series":
                return await analytics.series(session, scope)
            return await drill.listing(session, scope, figure, request.query.get("value"))


async def console(request: web.Request) -> web.Response:
    return web.json_response(await _figures(request, "console"))


async def report(request: web.Request) -> web.Response:
    return web.json_response(await _figures(request, "report"))


async def series(request: web.Request) -> web.Response:
    return web.json_response(await _figures(request, "series"))


async def drill_down(request: web.Request) -> web.Response:
    return web.json_response(await _figures(request, "drill"))


async def export(request: web.Request) -> web.Response:
    """One table of the console as CSV (`table`: see TABLES), for a spreadsheet."""
    table = request.match_info["table"]
    if table not in TABLES:
        raise BadRequest("error.invalid_table")
    source, shape = TABLES[table]
    header, rows = shape(await _figures(request, source))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_safe(cell) for cell in row] for row in rows)
    name = f"{table}-{request.query.get('from', '')}-{request.query.get('to', '')}.csv"
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _safe(cell: Any) -> Any:
    if isinstance(cell, str) and cell.startswith(FORMULA_START):
        return "'" + cell
    return "" if cell is None else cell


Rows = tuple[list[str], Iterable[list[Any]]]

DURATION_COLUMNS = ["média (s)", "mediana (s)", "p90 (s)"]


def _spread(d: dict[str, Any]) -> list[Any]:
    return [d["mean_seconds"], d["p50_seconds"], d["p90_seconds"]]


def _attendants(r: dict[str, Any]) -> Rows:
    header = [
        "atendente",
        "recebidas",
        *DURATION_COLUMNS,
        "fora do prazo",
        "encerradas",
        "reabertas",
        "transferências",
        "respostas CSAT",
        "CSAT médio",
    ]
    return header, (
        [
            a["name"],
            a["handled"],
            *_spread(a["first_response"]),
            a["sla_breaches"],
            a["resolved"],
            a["reopened"],
            a["transfers_out"],
            a["csat_responses"],
            a["csat_mean"],
        ]
        for a in r["attendants"]
    )


def _channels(r: dict[str, Any]) -> Rows:
    header = [
        "canal",
        "conversas",
        "encaminhadas",
        *DURATION_COLUMNS,
        "fora do prazo",
        "encerradas",
        "reabertas",
        "respostas CSAT",
        "CSAT médio",
    ]
    return header, (
        [
            c["channel"],
            c["conversations"],
            c["handoffs"],
            *_spread(c["first_response"]),
            c["sla_breaches"],
            c["resolved"],
            c["reopened"],
            c["csat_responses"],
            c["csat_mean"],
        ]
        for c in r["channels"]
    )


def _reasons(r: dict[str, Any]) -> Rows:
    return ["motivo", "quantidade"], (
        [x["reason"], x["count"]] for x in r["service"]["handoff_reasons"]
    )


def _origins(r: dict[str, Any]) -> Rows:
    return ["origem", "canal", "agendadas", "remarcações"], (
        [o["origin"], o["channel"], o["booked"], o["reschedules"]]
        for o in r["appointments"]["by_origin"]
    )


def _reminders(r: dict[str, Any]) -> Rows:
    header = ["canal", "enviados", "entregues", "lidos", "falharam", "confirmaram", "cancelaram"]
    return header, (
        [
            x["channel"],
            x["sent"],
            x["delivered"],
            x["read"],
            x["failed"],
            x["confirmed"],
            x["cancelled"],
        ]
        for x in r["reminders"]["by_channel"]
    )


def _series(s: dict[str, Any]) -> Rows:
    names = sorted(s["series"])
    header = ["período", "dia" if s["granularity"] == "day" else "hora", *names]
    current = (
        ["atual", bucket, *(s["series"][n]["current"][i] for n in names)]
        for i, bucket in enumerate(s["buckets"])
    )
    previous = (
        ["anterior", bucket, *(s["series"][n]["previous"][i] for n in names)]
        for i, bucket in enumerate(s["previous_buckets"])
    )
    return header, [*current, *previous]


def _listing(d: dict[str, Any]) -> Rows:
    rows = d["rows"]
    header = list(rows[0]) if rows else ["id"]
    return header, ([row[key] for key in header] for row in rows)


TABLES = {
    "atendentes": ("report", _attendants),
    "canais": ("report", _channels),
    "motivos": ("report", _reasons),
    "agendamentos": ("report", _origins),
    "lembretes": ("report", _reminders),
    "series": ("series", _series),
    "lista": ("drill", _listing),
}


def setup(app: web.Application) -> None:
    app[REPORTS] = asyncio.Semaphore(CONCURRENT_REPORTS)
    app.router.add_get("/api/analytics", report)
    app.router.add_get("/api/analytics/console", console)
    app.router.add_get("/api/analytics/series", series)
    app.router.add_get("/api/analytics/drill", drill_down)
    app.router.add_get("/api/analytics/export/{table}", export)
