"""The staff second factor over real HTTP: enrolment, the code after the password, replays,
recovery codes, the lock, the clinic's policy, the admin's reset, and patients untouched."""

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pyotp
import pytest
from alembic import command
from sqlalchemy import select

from accounts.second_factor import open_secret
from core.audit import AuditAction
from core.encryption import DataKeys, UnreadableSecret, new_key_spec
from models import AuditLog, Role, SecondFactor, User, utcnow
from models.db import Database
from models.migrate import alembic_config
from tests.factories import staff
from tests.webapp import Enrolled, enrol_second_factor, logged_in, patient_logged_in, web_server
from web.keys import CTX

PASSWORD = "senha-segura"


@pytest.fixture
async def server(settings) -> AsyncIterator:
    async with web_server(settings) as server:
        yield server


def _client(server) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=str(server.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )


async def _call(http, method, path, body=None) -> tuple[int, dict]:
    async with http.request(method, path, json=body, allow_redirects=False) as response:
        data = await response.json() if response.content_type == "application/json" else {}
        return response.status, data


async def _password(http, email) -> dict:
    status, body = await _call(http, "POST", "/api/login", {"email": email, "password": PASSWORD})
    assert status == 200, body
    return body


async def _code(http, pending, code) -> tuple[int, dict]:
    return await _call(http, "POST", "/api/login/second-factor", {"pending": pending, "code": code})


def _later_code(enrolled: Enrolled, steps: int = 1) -> str:
    """The code of a later step than the one that confirmed the enrolment (still within the
    one-step drift for steps=1)."""
    return pyotp.TOTP(enrolled.secret).at(time.time() + 30 * steps)


async def _enrolled_manager(server) -> tuple[str, Enrolled]:
    manager = await staff(server.app[CTX].db, Role.MANAGER, password=PASSWORD)
    http = _client(server)
    try:
        await _password(http, manager.email)
        return manager.email, await enrol_second_factor(http)
    finally:
        await http.close()


async def _actions(server, action: AuditAction) -> list[AuditLog]:
    async with server.app[CTX].db.session() as session:
        query = select(AuditLog).where(AuditLog.action == str(action))
        return list((await session.execute(query)).scalars())


async def test_a_manager_without_a_second_factor_can_only_enrol_then_works(server):
    manager = await staff(server.app[CTX].db, Role.MANAGER, password=PASSWORD)
    http = _client(server)
    try:
        assert (await _password(http, manager.email))["role"] == "manager"
        status, body = await _call(http, "GET", "/api/conversations")
        assert (status, body["code"]) == (403, "error.second_factor_required")
        assert "Segurança da conta" in body["error"]
        async with http.get("/staff", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (302, "/staff/seguranca")
        async with http.get("/staff/seguranca") as response:
            assert response.status == 200
        assert await _call(http, "GET", "/api/account/second-factor") == (
            200,
            {"active": False, "required": True},
        )
        confirm = "/api/account/second-factor/confirm"
        status, body = await _call(http, "POST", confirm, {"code": "123456"})
        assert (status, body["code"]) == (400, "error.no_enrolment")
        enrolled = await enrol_second_factor(http)
        assert len(set(enrolled.recovery_codes)) == 10
        assert (await _call(http, "GET", "/api/conversations"))[0] == 200
        # Once active, a new key cannot replace it from the account alone.
        status, _ = await _call(http, "POST", "/api/account/second-factor/enrolment")
        assert status == 400
    finally:
        await http.close()
    assert len(await _actions(server, AuditAction.SECOND_FACTOR_ENROLLED)) == 1


async def test_the_password_alone_opens_no_session_and_a_code_does_once(server):
    email, enrolled = await _enrolled_manager(server)
    http = _client(server)
    try:
        step = await _password(http, email)
        assert step["second_factor"] is True and "role" not in step
        assert (await _call(http, "GET", "/api/conversations"))[0] == 401
        code = _later_code(enrolled)
        status, body = await _code(http, step["pending"], code)
        assert (status, body["role"]) == (200, "manager")
        assert (await _call(http, "GET", "/api/conversations"))[0] == 200
    finally:
        await http.close()
    replayer = _client(server)
    try:
        step = await _password(replayer, email)
        # The code just used, and the one before it, are spent.
        for spent in (code, pyotp.TOTP(enrolled.secret).now()):
            status, body = await _code(replayer, step["pending"], spent)
            assert (status, body["code"]) == (401, "error.invalid_code")
        assert (await _call(replayer, "GET", "/api/conversations"))[0] == 401
    finally:
        await replayer.close()
    logins = await _actions(server, AuditAction.LOGIN)
    assert [entry.details.get("second_factor") for entry in logins][-1] == "totp"


async def test_a_recovery_code_works_once(server):
    email, enrolled = await _enrolled_manager(server)
    recovery = enrolled.recovery_codes[3].upper().replace("-", " ")  # as someone might type it
    for expected in (200, 401):
        http = _client(server)
        try:
            step = await _password(http, email)
            status, _ = await _code(http, step["pending"], recovery)
            assert status == expected
        finally:
            await http.close()


async def test_wrong_codes_count_on_the_account_and_the_password_does_not_reset_them(server):
    email, enrolled = await _enrolled_manager(server)
    attacker = _client(server)
    try:
        for _ in range(10):  # the password again before each guess
            step = await _password(attacker, email)
            status, _ = await _code(attacker, step["pending"], "000000")
            assert status == 401
        status, body = await _call(
            attacker, "POST", "/api/login", {"email": email, "password": PASSWORD}
        )
        assert (status, body["code"]) == (429, "error.too_many_attempts")
        status, _ = await _code(attacker, step["pending"], _later_code(enrolled))
        assert status == 429
    finally:
        await attacker.close()
    assert len(await _actions(server, AuditAction.SECOND_FACTOR_FAILED)) == 10


async def test_a_forged_or_foreign_pending_token_is_refused(server):
    email, enrolled = await _enrolled_manager(server)
    http = _client(server)
    try:
        step = await _password(http, email)
        user_id, deadline, nonce, signature = step["pending"].split(".")
        forged = f"{int(user_id) + 1}.{deadline}.{nonce}.{signature}"
        for token in (forged, "", None, step["pending"] + "0"):
            status, body = await _code(http, token, _later_code(enrolled))
            assert (status, body["code"]) == (401, "error.login_step_expired")
        status, _ = await _code(http, step["pending"], _later_code(enrolled))
        assert status == 200
        # Spent with the session it opened.
        status, body = await _code(http, step["pending"], enrolled.recovery_codes[0])
        assert (status, body["code"]) == (401, "error.login_step_expired")
    finally:
        await http.close()


async def test_the_admin_setting_decides_who_must_have_it(server):
    db = server.app[CTX].db
    attendant = await staff(db, Role.ATTENDANT, password=PASSWORD)
    manager = await staff(db, Role.MANAGER, password=PASSWORD)
    admin = await staff(db, Role.ADMIN, password=PASSWORD)
    admin_http = await logged_in(server, admin.email, PASSWORD)  # enrols: admins must
    ana, marta = _client(server), _client(server)
    try:
        await _password(ana, attendant.email)
        await _password(marta, manager.email)
        assert (await _call(ana, "GET", "/api/conversations"))[0] == 200
        assert (await _call(marta, "GET", "/api/conversations"))[0] == 403
        assert await _call(admin_http, "GET", "/api/admin/security") == (
            200,
            {"second_factor": "managers"},
        )

        await _call(admin_http, "PUT", "/api/admin/security", {"second_factor": "all_staff"})
        status, body = await _call(ana, "GET", "/api/conversations")
        assert (status, body["code"]) == (403, "error.second_factor_required")

        await _call(admin_http, "PUT", "/api/admin/security", {"second_factor": "nobody"})
        assert (await _call(ana, "GET", "/api/conversations"))[0] == 200
        assert (await _call(marta, "GET", "/api/conversations"))[0] == 200

        status, body = await _call(admin_http, "PUT", "/api/admin/security", {"second_factor": 1})
        assert (status, body["code"]) == (400, "error.invalid_policy")
        status, _ = await _call(marta, "PUT", "/api/admin/security", {"second_factor": "all_staff"})
        assert status == 403
        assert (await _call(admin_http, "GET", "/api/admin/security"))[1] == {
            "second_factor": "nobody"
        }
    finally:
        for http in (admin_http, ana, marta):
            await http.close()
    changes = await _actions(server, AuditAction.SETTINGS_CHANGED)
    assert [entry.details["value"] for entry in changes] == ["all_staff", "nobody"]


async def test_an_admin_resets_a_lost_second_factor(server):
    db = server.app[CTX].db
    email, _ = await _enrolled_manager(server)
    admin = await staff(db, Role.ADMIN, password=PASSWORD)
    admin_http = await logged_in(server, admin.email, PASSWORD)
    try:
        status, listed = await _call(admin_http, "GET", "/api/admin/staff")
        enrolled = {user["email"]: user["second_factor"] for user in listed}
        assert enrolled[email] is True
        manager_id = next(user["id"] for user in listed if user["email"] == email)
        path = f"/api/admin/staff/{manager_id}/second-factor/reset"
        assert (await _call(admin_http, "POST", path))[0] == 200
        own = f"/api/admin/staff/{admin.id}/second-factor/reset"
        status, body = await _call(admin_http, "POST", own)
        assert (status, body["code"]) == (400, "error.cannot_reset_own_second_factor")
        status, listed = await _call(admin_http, "GET", "/api/admin/staff")
        assert {user["email"]: user["second_factor"] for user in listed}[email] is False
    finally:
        await admin_http.close()
    http = _client(server)
    try:
        body = await _password(http, email)  # a session at once, confined to enrolment again
        assert body["role"] == "manager"
        assert (await _call(http, "GET", "/api/conversations"))[0] == 403
    finally:
        await http.close()
    resets = await _actions(server, AuditAction.SECOND_FACTOR_RESET)
    assert [entry.details["target_user_id"] for entry in resets] == [manager_id]


async def test_patients_are_never_asked_for_a_second_factor(server):
    db = server.app[CTX].db
    admin = await staff(db, Role.ADMIN, password=PASSWORD)
    admin_http = await logged_in(server, admin.email, PASSWORD)
    try:
        await _call(admin_http, "PUT", "/api/admin/security", {"second_factor": "all_staff"})
    finally:
        await admin_http.close()
    patient = await patient_logged_in(server, PASSWORD)
    try:
        assert (await _call(patient, "GET", "/api/portal/appointments"))[0] == 200
    finally:
        await patient.close()


# --- Keys sealed at rest ----------------------------------------------------------------------


async def _stored_secret(server, email: str) -> tuple[int, str]:
    async with server.app[CTX].db.session() as session:
        query = (
            select(SecondFactor.user_id, SecondFactor.secret).join(User).where(User.email == email)
        )
        user_id, secret = (await session.execute(query)).one()
    return user_id, secret


async def test_a_leaked_row_alone_does_not_give_the_key(server, settings):
    email, enrolled = await _enrolled_manager(server)
    user_id, stored = await _stored_secret(server, email)
    other, _ = await _enrolled_manager(server)
    other_id, _ = await _stored_secret(server, other)

    assert enrolled.secret not in stored and enrolled.secret.lower() not in stored.lower()
    assert open_secret(settings.data_keys, user_id, stored) == enrolled.secret
    stranger = DataKeys.parse(new_key_spec(settings.data_keys.current))  # same id, other key
    with pytest.raises(UnreadableSecret):
        open_secret(stranger, user_id, stored)
    with pytest.raises(UnreadableSecret):  # copied into another account's row
        open_secret(settings.data_keys, other_id, stored)


async def test_a_rotated_key_still_opens_and_the_next_login_seals_with_the_new_one(
    server, settings
):
    email, enrolled = await _enrolled_manager(server)
    newer = new_key_spec("r2")
    rotated = replace(settings, data_encryption_key=f"{newer},{settings.data_encryption_key}")

    async with web_server(rotated) as after_rotation:
        http = _client(after_rotation)
        try:
            step = await _password(http, email)
            status, body = await _code(http, step["pending"], _later_code(enrolled))
            assert (status, body["role"]) == (200, "manager")
        finally:
            await http.close()
    user_id, stored = await _stored_secret(server, email)

    assert stored.startswith("r2$")  # sealed again with the current key at its use
    only_the_new_key = DataKeys.parse(newer)  # the old key can now be dropped
    assert open_secret(only_the_new_key, user_id, stored) == enrolled.secret


def test_a_malformed_data_encryption_key_stops_start_up(settings):
    for malformed in ("", "1:short", "no-colon", f"1:{'A' * 43},1:{'B' * 43}"):
        with pytest.raises(ValueError, match="DATA_ENCRYPTION_KEY"):
            replace(settings, data_encryption_key=malformed)


async def test_the_migration_seals_the_keys_stored_as_they_were(database_url, settings):
    alembic = alembic_config(database_url)
    command.downgrade(alembic, "0016")
    plain = pyotp.random_base32()
    db = Database(database_url)
    try:
        manager = await staff(db, Role.MANAGER, password=PASSWORD)
        async with db.session() as session:
            session.add(SecondFactor(user_id=manager.id, secret=plain, confirmed_at=utcnow()))
    finally:
        await db.dispose()

    command.upgrade(alembic, "head")

    async with web_server(settings) as server:
        user_id, stored = await _stored_secret(server, manager.email)
        assert plain not in stored
        assert open_secret(settings.data_keys, user_id, stored) == plain
        http = _client(server)  # and the manager still logs in with their app's code
        try:
            step = await _password(http, manager.email)
            status, body = await _code(http, step["pending"], pyotp.TOTP(plain).now())
            assert (status, body["role"]) == (200, "manager")
        finally:
            await http.close()
