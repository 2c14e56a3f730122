import pytest

from core.settings import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    """As the root fixture, with the reception always open so that what a queued patient is
    told does not depend on when the tests run (tests of closed hours set their own)."""
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "INTERNAL_TOKEN": "internal-test-token",
            "SESSION_SECRET": "session-test-secret",
            "RASA_TOKEN": "rasa-test-token",
            "STAFF_HOURS": "",
        }
    )
