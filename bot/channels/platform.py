"""The assistant's one door: the platform's calls, over loopback HTTP with a shared secret.

The platform owns the providers, the patients and the database; Rasa only understands and
answers. Per turn the platform posts the patient's message here (sender = patient id) and
records and delivers what comes back, so this connector sends nothing itself. Rasa loads it
from credentials.yml and mounts it at /webhooks/platform/:

    POST /webhooks/platform/turn       a patient's message → the bot's answers
    POST /webhooks/platform/hand_back  the team finished: resume the bot, which speaks first

Every call carries `Authorization: Bearer $RASA_TOKEN`; without the variable the connector
refuses to be built, so Rasa does not start with an open door. This module runs in the
assistant's sealed environment (Rasa 3.6, Python 3.10) and imports nothing of the platform.
Message texts are never logged, and error answers never echo the request or the tracker.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.agent import Agent
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationResumed, UserUttered
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import wording
from bot.emergency import looks_like_emergency

log = logging.getLogger(__name__)

# Keys of a bot message passed on as they are (besides its text and buttons).
PASSED_ON = ("custom", "image", "attachment", "elements")


# What one clause of a message may ask: a FAQ question or a request that starts a dialogue.
REQUESTS = (
    "agendar_consulta",
    "cancelar_consulta",
    "remarcar_consulta",
    "consultar_agendamentos",
    "falar_com_atendente",
)
FAQ = "faq"
# Below these, a clause is not taken for an ask of its own (the whole message's reading stays).
MIN_ASK_CONFIDENCE = 0.6
MIN_FAQ_KEY_CONFIDENCE = 0.5


class BadRequest(ValueError):
    """A body the connector cannot read; answered 400 with this short reason."""


def reply(message: dict[str, Any]) -> dict[str, Any]:
    """One bot message as the platform gets it: text and options stay together (quick
    replies are buttons too), `custom` is what an action sent as `json_message`."""
    entry: dict[str, Any] = {"text": message["text"]} if message.get("text") else {}
    buttons = message.get("buttons") or message.get("quick_replies")
    if buttons:
        entry["buttons"] = buttons
    entry.update({key: message[key] for key in PASSED_ON if message.get(key)})
    return entry


class Replies(OutputChannel):
    """Collects the bot's messages of one call, one entry per message as the response or
    action produced it (Rasa's CollectingOutputChannel splits texts on blank lines and drops
    quick replies). It bears the patient's channel name because Rasa picks channel-specific
    response variations (`channel: whatsapp` in domain.yml) by the output channel's name."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.messages: list[dict[str, Any]] = []

    def name(self) -> str:  # type: ignore[override]  # per instance: the patient's channel
        return self.channel

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        entry = reply(message)
        if entry:
            self.messages.append(entry)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.send_response(recipient_id, {"text": text})


def _object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("body is not JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("body is not a JSON object")
    return body


def _string(body: dict[str, Any], key: str, *, empty: bool = False) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not (empty or value.strip()):
        raise BadRequest(f"'{key}' must be a {'' if empty else 'non-empty '}string")
    return value


def _error(status: int, error: str) -> HTTPResponse:
    return response.json({"error": error}, status=status)


def _faq_key(parsed: dict[str, Any]) -> str | None:
    """'valores' for a clause the model reads as faq/valores with enough confidence."""
    selected = (parsed.get("response_selector") or {}).get("default") or {}
    response = selected.get("response") or {}
    key = response.get("intent_response_key") or ""
    if not key.startswith(f"{FAQ}/") or response.get("confidence", 0) < MIN_FAQ_KEY_CONFIDENCE:
        return None
    return key.split("/", 1)[1]


async def several_asks(agent: Agent, text: str) -> dict[str, Any] | None:
    """The reading of a message that asks several things ("quanto custa? aceitam unimed?",
    "qual o endereço? quero marcar"), or None for any other message (Rasa reads it whole).

    Each clause is classified by the loaded model itself. When at least two asks come out
    and one is a FAQ question, the message is taken as the request it makes (the first
    one), or else as a FAQ question, and `faq_keys` lists every FAQ key asked, in order: the
    actions answer them all, then carry on with the request."""
    if text.startswith("/") or looks_like_emergency(text):
        return None  # our buttons' payloads; an emergency is answered as one, whatever else
    parts = wording.clauses(text)
    if len(parts) < 2:
        return None
    faq_keys: list[str] = []
    faq_parse: dict[str, Any] | None = None
    requests: list[dict[str, Any]] = []
    for part in parts:
        parsed = await agent.parse_message(part)
        intent = parsed["intent"]
        if intent.get("confidence", 0) < MIN_ASK_CONFIDENCE:
            continue
        if intent.get("name") in REQUESTS:
            requests.append(parsed)
        elif intent.get("name") == FAQ and (key := _faq_key(parsed)) and key not in faq_keys:
            faq_keys.append(key)
            faq_parse = faq_parse or parsed
    if faq_parse is None or len(faq_keys) + len(requests) < 2:
        return None
    lead = requests[0] if requests else faq_parse
    return {
        **await agent.parse_message(text),
        "intent": lead["intent"],
        "response_selector": faq_parse["response_selector"],
        "faq_keys": faq_keys,
    }


async def answered(agent: Agent, sender: str, message_id: str) -> list[dict[str, Any]] | None:
    """What the bot answered to `message_id`, or None when the assistant never took it in.

    Rasa saves a tracker only at the end of a turn, so the user event is either there with
    all its answers or not there at all. Under the sender's lock: a turn still running in
    this process finishes first."""
    async with agent.lock_store.lock(sender):
        tracker = await agent.tracker_store.retrieve_full_tracker(sender)
    if tracker is None:
        return None
    replies: list[dict[str, Any]] | None = None
    for event in tracker.events:
        if replies is None:
            if isinstance(event, UserUttered) and event.message_id == message_id:
                replies = []
        elif isinstance(event, UserUttered):
            break
        elif isinstance(event, BotUttered) and (entry := reply(event.message())):
            replies.append(entry)
    return replies


async def hand_back(agent: Agent, sender: str, intent: str, replies: Replies) -> None:
    """Resume the bot and trigger `intent`, as Rasa's HTTP API did in two calls: `POST
    /conversations/<id>/tracker/events` with `resume` + `action_listen` (the pause ended the
    turn without `action_listen`; without it the next user turn matches no rule), then
    `POST /conversations/<id>/trigger_intent`. Under one hold of the sender's lock."""
    processor = agent.processor
    assert processor is not None  # the caller checked agent.is_ready()
    async with agent.lock_store.lock(sender):
        tracker = await processor.fetch_tracker_with_initial_session(sender, replies)
        for event in (ConversationResumed(), ActionExecuted(ACTION_LISTEN_NAME)):
            tracker.update(event, agent.domain)
        await agent.tracker_store.save(tracker)

        # MessageProcessor.trigger_external_user_uttered, except that the invisible user
        # event is on the channel the platform names (the patient's latest message may
        # have come on another channel while the team had the conversation), so the
        # actions see that channel.
        tracker = await processor.fetch_tracker_and_update_session(sender, replies)
        tracker.update(UserUttered.create_external(intent, [], replies.channel), agent.domain)
        tracker = await processor.run_action_extract_slots(replies, tracker)
        await processor._run_prediction_loop(replies, tracker)
        await processor.save_tracker(tracker)


class PlatformInput(InputChannel):
    """The connector Rasa mounts at /webhooks/platform/ (see the module's docstring)."""

    @classmethod
    def name(cls) -> str:
        return "platform"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> PlatformInput:
        """Rasa's hook: the secret comes from the environment, never from a file."""
        return cls(os.environ.get("RASA_TOKEN", ""))

    def __init__(self, token: str) -> None:
        if not token:
            raise RasaException(
                "RASA_TOKEN is not set: the platform connector refuses every call "
                "without it, so the assistant does not start"
            )
        self._expected = f"Bearer {token}".encode()

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, self._expected)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("platform_webhook", __name__)

        @bp.post("/turn")
        async def turn(request: Request) -> HTTPResponse:
            """One patient message through NLU and dialogue; `replay` when the platform
            cannot tell whether the assistant took it in before its process died."""
            if not self._authorized(request):
                return _error(401, "unauthorized")
            try:
                body = _object(request)
                sender, message_id, channel = (
                    _string(body, key) for key in ("sender", "message_id", "channel")
                )
                # A patient's "/" is "" once the platform neutralised it: still a turn.
                text = _string(body, "text", empty=True)
                metadata = {} if body.get("metadata") is None else body["metadata"]
                replay = body.get("replay", False)
                if not isinstance(metadata, dict) or not isinstance(replay, bool):
                    raise BadRequest("'metadata' must be an object and 'replay' a boolean")
            except BadRequest as exc:
                return _error(400, str(exc))
            agent: Agent | None = getattr(request.app.ctx, "agent", None)
            if agent is None or not agent.is_ready():
                return _error(503, "no model loaded")
            replies = Replies(channel)
            try:
                # The normal path reads no tracker beyond what Rasa reads for the turn.
                if replay and (earlier := await answered(agent, sender, message_id)) is not None:
                    return response.json({"messages": earlier})
                message = UserMessage(
                    text,
                    replies,
                    sender_id=sender,
                    parse_data=await several_asks(agent, text),
                    input_channel=channel,
                    message_id=message_id,
                    metadata=metadata,
                )
                await on_new_message(message)
            except Exception as exc:  # answered without the exception: it may quote the text
                log.error("turn of sender %s failed (%s)", sender, type(exc).__name__)
                return _error(500, "turn failed")
            return response.json({"messages": replies.messages})

        @bp.post("/hand_back")
        async def hand_back_route(request: Request) -> HTTPResponse:
            """The team resolved the conversation: the bot takes it back and speaks first."""
            if not self._authorized(request):
                return _error(401, "unauthorized")
            try:
                body = _object(request)
                sender, intent, channel = (
                    _string(body, key) for key in ("sender", "intent", "channel")
                )
            except BadRequest as exc:
                return _error(400, str(exc))
            agent: Agent | None = getattr(request.app.ctx, "agent", None)
            if agent is None or not agent.is_ready():
                return _error(503, "no model loaded")
            # Only external intents: what a patient means comes in turns, through NLU.
            if not intent.startswith("EXTERNAL_") or intent not in agent.domain.intents:
                return _error(400, "'intent' is not an external intent of the domain")
            replies = Replies(channel)
            try:
                await hand_back(agent, sender, intent, replies)
            except Exception as exc:
                log.error("hand-back of sender %s failed (%s)", sender, type(exc).__name__)
                return _error(500, "hand-back failed")
            return response.json({"messages": replies.messages})

        return bp
