"""The JSON API's contract (web/openapi.yaml, served at /api/openapi.json) holds: every /api/
route of the app is in it and nothing else, anyone can read it, and every operation, fuzzed
against a live app with schemathesis (valid and invalid input), answers no 5xx and only
documented statuses whose bodies match the document.

The fuzzing is bounded for CI: a fixed number of examples per operation, derandomised (the
same cases on every run), against one app on SQLite with an admin and a patient logged in.
The few operations that would end the sessions the rest of the run uses get a session of
their own or leave those accounts alone (see `_session_for` and `_leaves_the_run_alone`)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import hypothesis
import pytest
import requests
import schemathesis
from aiohttp import web
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.settings import Settings
from models import Role
from tests.factories import staff
from tests.webapp import logged_in, patient_logged_in, web_server
from web.keys import CTX, SESSION_COOKIE
from web.openapi import OPENAPI_PATH, load_document

PASSWORD = "senha-segura"
EXAMPLES_PER_OPERATION = 10
DOCUMENT = load_document()
METHODS = {"get", "put", "post", "patch", "delete"}

schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "mode": "all",  # valid input and invalid input
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
                # The session cookie is the harness's to set; a missing or foreign session is
                # tests/handoff/test_route_protection.py's subject.
                "with-security-parameters": False,
            }
        }
    ),
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _documented(document: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def _served(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, path) under /api/ the app routes, ids as OpenAPI writes them."""
    return {
        (route.method, re.sub(r"\{(\w+):[^{}]+\}", r"{\1}", route.resource.canonical))
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }


@dataclass
class LiveApp:
    """The web app on a real local HTTP server in a thread of its own (schemathesis calls
    it synchronously), with the sessions the operations run under."""

    base_url: str
    app: web.Application
    admin_id: int
    admin_session: str
    patient_id: int
    patient_session: str
    leaver_id: int  # a staff account whose sessions logout may end
    leaver_email: str


def _cookie(http: aiohttp.ClientSession) -> str:
    return next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)


@pytest.fixture(scope="module")
def live_app(sqlite_databases, tmp_path_factory) -> Iterator[LiveApp]:
    url = sqlite_databases.create()
    settings = Settings.from_env(
        {
            "DATABASE_URL": url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            "FILES_DIR": str(tmp_path_factory.mktemp("files")),
        }
    )
    ready: list[LiveApp] = []
    started = threading.Event()
    stops: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        stops.append((asyncio.get_running_loop(), stop))
        async with web_server(settings) as server:
            db = server.app[CTX].db
            admin = await staff(db, Role.ADMIN)
            leaver = await staff(db, Role.ATTENDANT)
            async with await logged_in(server, admin.email, PASSWORD) as admin_http:
                admin_session = _cookie(admin_http)
            async with await patient_logged_in(server, PASSWORD) as patient_http:
                patient_session = _cookie(patient_http)
                async with patient_http.get("/api/portal/me") as response:
                    patient_id = (await response.json())["id"]
            ready.append(
                LiveApp(
                    str(server.make_url("")).rstrip("/"),
                    server.app,
                    admin.id,
                    admin_session,
                    patient_id,
                    patient_session,
                    leaver.id,
                    leaver.email,
                )
            )
            started.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(60), "the app did not start"
    try:
        yield ready[0]
    finally:
        loop, stop = stops[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        sqlite_databases.drop(url)


def test_every_api_route_is_documented_and_nothing_else(live_app):
    served, documented = _served(live_app.app), _documented(DOCUMENT)
    assert served - documented == set(), "document these routes in web/openapi.yaml"
    assert documented - served == set(), "web/openapi.yaml documents routes the app lacks"


def test_anyone_reads_the_document_as_json(live_app):
    response = requests.get(live_app.base_url + OPENAPI_PATH, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == DOCUMENT
    assert response.json()["components"]["securitySchemes"]["session"]["name"] == SESSION_COOKIE


def _session_for(live_app: LiveApp, path: str) -> str:
    """Portal operations run as the patient, the rest as the admin; logout ends a session of
    its own, logged in for each example, so the shared ones outlive it."""
    if path == "/api/logout":
        login = {"email": live_app.leaver_email, "password": PASSWORD}
        response = requests.post(live_app.base_url + "/api/login", json=login, timeout=10)
        assert response.status_code == 200, response.text
        return response.cookies[SESSION_COOKIE]
    if path.startswith("/api/portal/"):
        return live_app.patient_session
    return live_app.admin_session


def _leaves_the_run_alone(live_app: LiveApp, case: schemathesis.Case) -> bool:
    """The admin erasing the logged-in patient (or merging it into another), or changing
    (deactivating, demoting, re-passwording) the accounts whose sessions the run uses, would
    turn every later operation into a 401 or 403: those few examples are skipped, every other
    id is fuzzed."""
    target = (case.path_parameters or {}).get("id")
    if case.path == "/api/admin/patients/{id}/erase":
        return target != live_app.patient_id
    if case.method == "PATCH" and case.path == "/api/admin/staff/{id}":
        return target not in (live_app.admin_id, live_app.leaver_id)
    if case.path == "/api/patients/merge" and isinstance(case.body, dict):
        return case.body.get("source_id") != live_app.patient_id
    return True


@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation_answers_as_documented(case, live_app):
    hypothesis.assume(_leaves_the_run_alone(live_app, case))
    cookies = {SESSION_COOKIE: _session_for(live_app, case.path)}
    case.call_and_validate(base_url=live_app.base_url, cookies=cookies, checks=CHECKS)
