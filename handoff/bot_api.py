"""The few calls the platform makes to the Rasa server's token-protected HTTP API."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


class BotApi:
    def __init__(self, bot_url: str, token: str) -> None:
        self._url = bot_url
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, path: str, body: Any, **params: str) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        query = {"token": self._token, **params}
        async with self._session.post(f"{self._url}{path}", json=body, params=query) as resp:
            if resp.status >= 400:
                raise BotApiError(f"{path}: HTTP {resp.status}")

    async def hand_back(self, patient_id: int, intent: str) -> None:
        """Resume the (safety-net) paused tracker and let the bot speak first on the
        patient's latest channel."""
        path = f"/conversations/{patient_id}"
        # The pause ended the turn without `action_listen`; without it the next user turn
        # matches no rule and Rasa falls back (and re-runs the handoff action).
        events = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
        await self._post(f"{path}/tracker/events", events)
        await self._post(
            f"{path}/trigger_intent", {"name": intent, "entities": {}}, output_channel="latest"
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class BotApiError(RuntimeError):
    pass
