from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from models import User, utcnow
from tests.factories import patient_message
from tests.webapp import logged_in, mail_through, mails_to, signed_up, web_server
from web.keys import CTX

MARIA = {
    "name": "Maria da Silva",
    "email": "Maria.Silva@Exemplo.com",
    "phone": "(11) 98765-4321",
    "cpf": "529.982.247-25",
    "password": "senha-da-maria",
    "consent": True,
}


@pytest.fixture
async def server(settings, smtp_server) -> AsyncIterator:
    async with web_server(settings) as server:
        mail_through(server, smtp_server)
        yield server


@pytest.fixture
async def anonymous(server) -> AsyncIterator[aiohttp.ClientSession]:
    http = aiohttp.ClientSession(
        base_url=str(server.make_url("")), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    yield http
    await http.close()


async def _users(server) -> int:
    async with server.app[CTX].db.session() as session:
        return (await session.execute(select(func.count(User.id)))).scalar_one()


async def test_a_patient_signs_up_verifies_the_email_and_logs_in(server, smtp_server):
    http = await signed_up(server, smtp_server, MARIA)
    try:
        async with http.get("/api/portal/me") as response:
            me = await response.json()
    finally:
        await http.close()
    assert me["name"] == "Maria da Silva"
    assert me["email"] == "maria.silva@exemplo.com"
    assert me["phone"] == "+5511987654321"
    assert me["cpf"] == "52998224725"
    assert me["lgpd_consent_at"] is not None


async def test_before_the_link_is_followed_the_account_cannot_log_in(
    server, anonymous, smtp_server
):
    before = len(await mails_to(server, smtp_server, "maria.silva@exemplo.com"))
    async with anonymous.post("/api/signup", json=MARIA) as response:
        assert response.status == 202
    async with anonymous.get("/api/portal/me") as response:
        assert response.status == 401  # the sign-up logs nobody in
    login = {"email": MARIA["email"], "password": MARIA["password"]}
    async with anonymous.post("/api/login", json=login) as response:
        assert response.status == 403
        assert (await response.json())["code"] == "error.email_not_verified"
    # Trying to log in sends a fresh link; the first one stopped working.
    mails = (await mails_to(server, smtp_server, "maria.silva@exemplo.com"))[before:]
    assert len(mails) == 2 and "verificar-email#token=" in mails[-1]


async def test_a_patient_cannot_open_staff_pages_or_api(server, smtp_server):
    http = await signed_up(server, smtp_server, MARIA)
    try:
        async with http.get("/api/conversations") as response:
            assert response.status == 403
        async with http.get("/staff", allow_redirects=False) as response:
            assert response.status == 302
        async with http.get("/api/portal/me") as response:
            assert response.status == 200
    finally:
        await http.close()


async def test_the_portal_needs_a_patient_login(anonymous):
    async with anonymous.get("/api/portal/me") as response:
        assert response.status == 401
    async with anonymous.get("/portal", allow_redirects=False) as response:
        assert response.headers["Location"] == "/login"


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"cpf": "529.982.247-24"}, 400, "CPF inválido. Confira os números."),
        ({"cpf": "111.111.111-11"}, 400, "CPF inválido. Confira os números."),
        (
            {"phone": "98765"},
            400,
            "Informe um telefone válido com DDD, por exemplo (11) 98765-4321.",
        ),
        ({"email": "maria"}, 400, "Informe um e-mail válido."),
        ({"password": "curta"}, 400, "A senha precisa ter pelo menos 8 caracteres."),
        (
            {"consent": False},
            400,
            "Para criar a conta, é preciso concordar com o uso dos seus dados.",
        ),
        ({"name": "  "}, 400, "Informe seu nome."),
    ],
)
async def test_invalid_sign_ups_are_refused_and_create_nothing(
    server, anonymous, change, status, message
):
    async with anonymous.post("/api/signup", json={**MARIA, **change}) as response:
        assert response.status == status
        assert (await response.json())["error"] == message
    assert await _users(server) == 0


async def _sign_up(http: aiohttp.ClientSession, form: dict) -> tuple[int, dict]:
    async with http.post("/api/signup", json=form) as response:
        return response.status, await response.json()


async def test_sign_up_answers_the_same_for_taken_and_free_emails_and_cpfs(
    server, anonymous, smtp_server
):
    """The enumeration probe: nothing in the answer tells a registered e-mail or CPF from a
    free one; the owner learns by mail that someone used theirs, and nothing is taken over."""
    await (await signed_up(server, smtp_server, MARIA)).close()
    before = len(await mails_to(server, smtp_server, "maria.silva@exemplo.com"))
    free = await _sign_up(
        anonymous, {**MARIA, "email": "nova@exemplo.com", "cpf": "111.444.777-35"}
    )
    same_email = await _sign_up(anonymous, {**MARIA, "cpf": "390.533.447-05"})
    same_cpf = await _sign_up(anonymous, {**MARIA, "email": "outra@exemplo.com"})
    assert free == same_email == same_cpf
    assert free[0] == 202 and "Enviamos um e-mail" in free[1]["message"]

    owner_mails = (await mails_to(server, smtp_server, "maria.silva@exemplo.com"))[before:]
    assert sum("já tem uma conta" in text for text in owner_mails) == 1
    assert sum("com o seu CPF" in text for text in owner_mails) == 1
    assert await mails_to(server, smtp_server, "outra@exemplo.com") == []
    assert await _users(server) == 2  # Maria and the free sign-up, nobody else
    # The password typed by whoever probed Maria's e-mail is not hers now.
    again = await logged_in(server, MARIA["email"], MARIA["password"])
    await again.close()


async def test_a_squatted_email_gets_none_of_the_owners_mail(server, anonymous, smtp_server):
    """Someone signs up with a patient's e-mail and never gets the link: inbound mail from
    that address is not filed under the squatter's account."""
    async with anonymous.post("/api/signup", json=MARIA) as response:
        assert response.status == 202
    recorded = await patient_message(
        server.app[CTX].db,
        "segue meu exame",
        channel="email",
        user="maria.silva@exemplo.com",
        email="maria.silva@exemplo.com",
    )
    async with server.app[CTX].db.session() as session:
        squatter = (
            await session.execute(select(User).where(User.email == "maria.silva@exemplo.com"))
        ).scalar_one()
    assert recorded.message.patient_id != squatter.id


async def test_a_cpf_parked_by_an_unverified_sign_up_is_freed_when_its_link_expires(
    server, anonymous, smtp_server
):
    """Someone signs up with Maria's CPF and an address of theirs, and never verifies it:
    once the link has expired, Maria's own sign-up gets her account."""
    parked = {**MARIA, "email": "estranho@exemplo.com"}
    async with anonymous.post("/api/signup", json=parked) as response:
        assert response.status == 202
    async with server.app[CTX].db.session() as session:
        squatter = (
            await session.execute(select(User).where(User.email == "estranho@exemplo.com"))
        ).scalar_one()
        squatter.created_at = utcnow() - timedelta(hours=25)  # the link's 24 h are over

    http = await signed_up(server, smtp_server, MARIA)
    await http.close()
    async with server.app[CTX].db.session() as session:
        maria = (await session.execute(select(User).where(User.cpf == "52998224725"))).scalar_one()
        retired = await session.get_one(User, squatter.id)
    assert maria.email == "maria.silva@exemplo.com" and maria.id != squatter.id
    assert (retired.is_active, retired.email, retired.cpf) == (False, None, None)


async def test_a_typed_phone_does_not_pull_in_that_phones_whatsapp_history(server, smtp_server):
    anonymous = await signed_up(server, smtp_server, MARIA)
    recorded = await patient_message(
        server.app[CTX].db,
        "meu exame deu alterado",
        channel="whatsapp",
        user="5511987654321",
        phone="+5511987654321",
    )
    async with anonymous.get("/api/portal/export") as response:
        export = await response.json()
    await anonymous.close()
    assert export["messages"] == []
    assert recorded.message.patient_id != export["profile"]["id"]


async def test_the_patient_edits_contact_data_and_exports_everything(server, smtp_server):
    anonymous = await signed_up(server, smtp_server, MARIA)
    async with anonymous.patch(
        "/api/portal/me", json={"name": "Maria S. Souza", "phone": "11 91234-5678"}
    ) as response:
        assert (await response.json())["phone"] == "+5511912345678"
    async with anonymous.patch("/api/portal/me", json={"phone": "123"}) as response:
        assert response.status == 400
    async with anonymous.get("/api/portal/export") as response:
        assert response.headers["Content-Disposition"] == 'attachment; filename="meus-dados.json"'
        export = await response.json()
    await anonymous.close()
    assert export["profile"]["name"] == "Maria S. Souza"
    assert export["profile"]["phone"] == "+5511912345678"
    assert set(export) == {
        "exported_at",
        "profile",
        "consents",
        "channels",
        "messages",
        "files",
        "staff_notes",
        "appointments",
        "access_log",
    }
