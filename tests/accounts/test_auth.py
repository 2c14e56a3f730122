from datetime import timedelta

import pytest

from accounts.auth import hash_password, open_session, user_for_token, verify_password
from accounts.login import attempt_login
from accounts.mail import Postbox
from core.errors import Unauthenticated
from tests.factories import staff

IDLE = timedelta(minutes=30)


def test_password_hash_verifies_only_the_right_password():
    stored = hash_password("correta")
    assert verify_password("correta", stored)
    assert not verify_password("errada", stored)
    assert not verify_password("correta", None)  # no password: refused, after the same work
    assert hash_password("correta") != stored  # salted


async def test_login_by_email_is_case_insensitive_and_needs_the_password(ctx):
    user = await staff(ctx.db, password="s3nha")
    postbox = Postbox(ctx)
    logged_in = await attempt_login(
        ctx, postbox, user.email.upper(), "s3nha", ip="10.0.0.1", device=None
    )
    assert logged_in.user.id == user.id
    for email, password in ((user.email, "wrong"), ("nobody@clinica.test", "s3nha")):
        with pytest.raises(Unauthenticated):
            await attempt_login(ctx, postbox, email, password, ip="10.0.0.1", device=None)


async def test_session_token_identifies_the_user(db):
    user = await staff(db)
    async with db.session() as session:
        token = await open_session(session, user)
    async with db.session() as session:
        assert (await user_for_token(session, token, idle=IDLE)).id == user.id
        assert await user_for_token(session, token + "x", idle=IDLE) is None
