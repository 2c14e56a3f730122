"""What the handoff does when the process's event bus tells it: the bot asked for a person
(queue the conversation), a person finished (hand the patient back to the bot)."""

from __future__ import annotations

from typing import Any

from core.context import Context
from core.events import BOT_HANDOFF, RESOLVED
from handoff.transitions.queueing import request_handoff
from handoff.transitions.resolution import hand_back
from models import Priority


def listen(ctx: Context) -> None:
    """Subscribe the handoff's reactions to the process's event bus."""

    async def on_bot_handoff(event: dict[str, Any]) -> None:
        priority = Priority[str(event.get("priority", "normal")).upper()]
        await request_handoff(
            ctx, event["conversation_id"], reason=str(event["reason"]), priority=priority
        )

    async def on_resolved(event: dict[str, Any]) -> None:
        await hand_back(ctx, event["patient_id"], event["conversation_ids"])

    ctx.bus.listen(on_bot_handoff, frozenset({BOT_HANDOFF}))
    ctx.bus.listen(on_resolved, frozenset({RESOLVED}))
