"""The embedded default (`make run`: SQLite, one process of each kind) holds a burst of new
conversations: 50 new patients writing on WhatsApp at once from 16 clients are all
acknowledged, each answered in the order they wrote, and the database never fails."""

from __future__ import annotations

import pytest

from tests.burst import burst
from tests.channels.fake_provider import FakeProvider
from tests.clinic import RunningClinic

pytestmark = pytest.mark.integration


async def test_a_burst_of_new_conversations_is_answered_in_order_without_database_errors(
    clinic: RunningClinic, provider: FakeProvider
) -> None:
    result = await burst(clinic.settings.web_url, provider, clinic.log_path, answer_within=50)

    assert result.refused == 0
    assert result.answered_in_order == result.patients == 50, clinic.log_tail()
    assert result.db_errors == 0, clinic.log_tail()
