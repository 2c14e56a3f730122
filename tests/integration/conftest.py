from collections.abc import AsyncIterator

import pytest

from tests.clients import StaffClient, WidgetClient
from tests.clinic import STAFF_PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture
async def widget(clinic) -> AsyncIterator[WidgetClient]:
    client = WidgetClient(clinic.widget_socket_url)
    await client.connect()
    yield client
    await client.close()


@pytest.fixture
async def ana(clinic) -> AsyncIterator[StaffClient]:
    """Attendant Ana, logged in, online and listening to live events."""
    client = StaffClient(clinic.settings.web_url)
    await client.login(clinic.login_for("ana@").email, STAFF_PASSWORD)
    await client.go_online()
    await client.listen()
    yield client
    await client.close()
