from accounts.auth import authenticate, hash_password, open_session, user_for_token, verify_password
from tests.factories import staff


def test_password_hash_verifies_only_the_right_password():
    stored = hash_password("correta")
    assert verify_password("correta", stored)
    assert not verify_password("errada", stored)
    assert hash_password("correta") != stored  # salted


async def test_login_by_email_is_case_insensitive_and_needs_the_password(db):
    user = await staff(db, password="s3nha")
    async with db.session() as session:
        assert (await authenticate(session, user.email.upper(), "s3nha")).id == user.id
        assert await authenticate(session, user.email, "wrong") is None
        assert await authenticate(session, "nobody@clinica.test", "s3nha") is None


async def test_session_token_identifies_the_user(db):
    user = await staff(db)
    async with db.session() as session:
        token = await open_session(session, user)
    async with db.session() as session:
        assert (await user_for_token(session, token)).id == user.id
        assert await user_for_token(session, token + "x") is None
