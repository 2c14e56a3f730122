"""The client address believes X-Forwarded-For only from a trusted reverse proxy."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from core.settings import Settings
from web.keys import SETTINGS, client_ip


def _request(remote: str, forwarded: str | None, trusted: str) -> web.Request:
    app = web.Application()
    app[SETTINGS] = Settings.from_env({"TRUSTED_PROXIES": trusted, "INTERNAL_TOKEN": "x"})
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    request = make_mocked_request("GET", "/", headers=headers, app=app)
    return request.clone(remote=remote)


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "expected"),
    [
        # Straight from the internet: the header is the client's own claim.
        ("203.0.113.7", "10.0.0.1", "127.0.0.1", "203.0.113.7"),
        # Through the proxy: the address the proxy saw, not what the client prepended.
        ("127.0.0.1", "198.51.100.1, 203.0.113.7", "127.0.0.1", "203.0.113.7"),
        # Two proxies in a row (a CDN network, then ours).
        ("127.0.0.1", "203.0.113.7, 10.1.2.3", "127.0.0.1,10.0.0.0/8", "203.0.113.7"),
        # A proxy that forwarded nothing.
        ("127.0.0.1", None, "127.0.0.1", "127.0.0.1"),
    ],
)
def test_client_ip(remote: str, forwarded: str | None, trusted: str, expected: str) -> None:
    assert client_ip(_request(remote, forwarded, trusted)) == expected
