"""The JSON API's contract: `web/openapi.yaml`, kept by hand next to the handlers it
describes, served as JSON at /api/openapi.json to anyone (it holds no data, only shapes).

A hand-written document rather than one built from per-route declarations: it stays one
readable file that reviewers diff, the handlers stay free of schema boilerplate, and
tests/web/test_openapi.py keeps it true (every /api/ route documented and nothing else; every
operation fuzzed against a live app). It is read and checked once, when the app is built, so
a broken document stops the process at start-up rather than at the first request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

DOCUMENT_PATH = Path(__file__).with_name("openapi.yaml")
OPENAPI_PATH = "/api/openapi.json"
OPENAPI = web.AppKey("openapi", bytes)


def load_document(path: Path = DOCUMENT_PATH) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
        raise ValueError(f"{path} is not an OpenAPI 3 document")
    return document


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def setup(app: web.Application) -> None:
    app[OPENAPI] = json.dumps(load_document(), ensure_ascii=False).encode()
    app.router.add_get(OPENAPI_PATH, openapi_document)
