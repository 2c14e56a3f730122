"""The whole clinic on PostgreSQL: history, Rasa's tracker store (schema `rasa`) and handoff."""

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from tests.clients import WidgetClient
from tests.clinic import RunningClinic
from tests.databases import PostgresDatabases, require_postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres_clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningClinic]:
    require_postgres()
    databases = PostgresDatabases()
    databases.prepare_template()
    url = databases.create()
    running = RunningClinic.prepare(tmp_path_factory.mktemp("pgclinic"), url)
    running.start()
    yield running
    running.stop()
    databases.drop_all()


async def test_a_conversation_on_postgresql_keeps_rasa_state_in_its_own_schema(postgres_clinic):
    widget = WidgetClient(postgres_clinic.widget_socket_url)
    await widget.connect()
    try:
        await widget.say("oi")
        assert "assistente virtual" in (await widget.next_reply("bot"))["text"]
        await widget.say("quero falar com um atendente")
        assert "equipe" in (await widget.next_reply("bot"))["text"]
        await widget.next_reply("system")
    finally:
        await widget.close()

    # Rasa saves the turn's events after its replies went out: wait for them briefly.
    for _ in range(50):
        user_turns, owners = _stored(postgres_clinic.settings.database_url)
        if user_turns == 2:
            break
        await asyncio.sleep(0.1)
    assert user_turns == 2
    assert owners == [("queued",)]


def _stored(url: str) -> tuple[int, list[tuple[str]]]:
    connection = psycopg.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM rasa.events WHERE type_name = 'user'")
            user_turns = cursor.fetchone()[0]
            cursor.execute("SELECT owner FROM conversations")
            return user_turns, cursor.fetchall()
    finally:
        connection.close()
