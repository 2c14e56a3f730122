"""The whole clinic on PostgreSQL: history, Rasa's tracker store (schema `rasa`) and handoff."""

import asyncio
from collections.abc import Iterator

import psycopg2
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

    # Rasa saves its tracker after the replies went out: give it a moment.
    for _ in range(100):
        if _query(postgres_clinic, "SELECT count(*) FROM rasa.events WHERE type_name = 'user'") == [
            (2,)
        ]:
            break
        await asyncio.sleep(0.1)
    assert _query(postgres_clinic, "SELECT count(*) FROM rasa.events WHERE type_name = 'user'") == [
        (2,)
    ]
    assert _query(postgres_clinic, "SELECT owner FROM conversations") == [("queued",)]


def _query(clinic: RunningClinic, sql: str) -> list[tuple]:
    connection = psycopg2.connect(clinic.settings.database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()
