"""Unexpected failures are logged by type and place only: a database error's message quotes
the statement's parameters (what the patient wrote, a CPF, a phone number)."""

import asyncio
import logging

from sqlalchemy.exc import OperationalError

from core.catalog import t
from core.context import DeliveryFailed
from handoff.transitions import queueing, talking
from messaging.outbound import send
from models import AuthorKind
from processes.worker import PeriodicJob, run_periodically
from tests.factories import patient_message, staff
from tests.webapp import logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-segura"
MARKER = "CPF 529.982.247-25 MARCADOR-LGPD"


def _database_error(text: str) -> OperationalError:
    return OperationalError("INSERT INTO messages", {"text": text}, Exception("disk I/O error"))


async def test_a_failing_api_call_answers_500_in_portuguese_and_logs_no_message_text(
    settings, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)

    async def database_down(_ctx, _conversation_id, _user, text, **_kwargs):
        raise _database_error(text)

    async with web_server(settings) as server:
        ctx = server.app[CTX]
        ana = await staff(ctx.db, password=PASSWORD)
        recorded = await patient_message(ctx.db, "preciso de ajuda")
        await queueing.request_handoff(ctx, recorded.conversation.id, reason="pedido_do_paciente")
        http = await logged_in(server, ana.email, PASSWORD)
        monkeypatch.setattr(talking, "reply", database_down)
        try:
            async with http.post(
                f"/api/conversations/{recorded.conversation.id}/messages", json={"text": MARKER}
            ) as response:
                assert response.status == 500
                assert (await response.json())["error"] == t("error.internal")
        finally:
            await http.close()

    assert "OperationalError" in caplog.text
    assert "529.982.247-25" not in caplog.text and "MARCADOR-LGPD" not in caplog.text


async def test_a_failing_worker_job_is_logged_without_its_data(caplog):
    caplog.set_level(logging.INFO)
    stop = asyncio.Event()

    async def failing_job(_ctx):
        stop.set()
        raise _database_error(MARKER)

    await run_periodically(PeriodicJob("reminder dispatch", 0.01, failing_job), None, stop)

    assert "reminder dispatch failed" in caplog.text and "OperationalError" in caplog.text
    assert "529.982.247-25" not in caplog.text and "MARCADOR-LGPD" not in caplog.text


class RefusingSender:
    """A provider refusal that echoes the number, as Twilio's error 21211 does."""

    async def deliver(self, message, identity, reach=None):
        raise DeliveryFailed(
            "twilio: HTTP 400, Twilio error 21211: The 'To' number +5511987650204 is not a "
            "valid phone number."
        )


async def test_a_provider_error_is_logged_without_the_phone_number_it_quotes(ctx, caplog):
    caplog.set_level(logging.INFO)
    ctx.senders = {**ctx.senders, "whatsapp": RefusingSender()}
    recorded = await patient_message(ctx.db, "oi", channel="whatsapp", phone="+5511987650204")

    await send(ctx, recorded.conversation.id, text="Olá!", author_kind=AuthorKind.BOT)

    assert "is not a valid phone number" in caplog.text
    assert "987650204" not in caplog.text
