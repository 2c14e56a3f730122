from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import func, select

from models import User
from tests.factories import patient_message
from tests.webapp import logged_in, web_server
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
async def server(settings) -> AsyncIterator:
    async with web_server(settings) as server:
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


async def test_a_patient_signs_up_and_is_logged_in_to_the_portal(server, anonymous):
    async with anonymous.post("/api/signup", json=MARIA) as response:
        assert response.status == 201
    async with anonymous.get("/api/portal/me") as response:
        me = await response.json()
    assert me["name"] == "Maria da Silva"
    assert me["email"] == "maria.silva@exemplo.com"
    assert me["phone"] == "+5511987654321"
    assert me["cpf"] == "52998224725"
    assert me["lgpd_consent_at"] is not None

    again = await logged_in(server, "maria.silva@exemplo.com", "senha-da-maria")
    await again.close()


async def test_a_patient_cannot_open_staff_pages_or_api(server, anonymous):
    async with anonymous.post("/api/signup", json=MARIA) as response:
        assert response.status == 201
    async with anonymous.get("/api/conversations") as response:
        assert response.status == 403
    async with anonymous.get("/staff", allow_redirects=False) as response:
        assert response.status == 302
    async with anonymous.get("/api/portal/me") as response:
        assert response.status == 200


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


async def test_an_email_or_cpf_already_registered_is_not_taken_over(server, anonymous):
    async with anonymous.post("/api/signup", json=MARIA) as response:
        assert response.status == 201
    other = aiohttp.ClientSession(base_url=str(server.make_url("")))
    try:
        async with other.post(
            "/api/signup", json={**MARIA, "email": "outra@exemplo.com"}
        ) as response:
            assert response.status == 409
            assert "CPF já tem cadastro" in (await response.json())["error"]
        async with other.post("/api/signup", json={**MARIA, "cpf": "111.444.777-35"}) as response:
            assert response.status == 409
    finally:
        await other.close()
    assert await _users(server) == 1


async def test_a_typed_phone_does_not_pull_in_that_phones_whatsapp_history(server, anonymous):
    async with anonymous.post("/api/signup", json=MARIA) as response:
        assert response.status == 201
    recorded = await patient_message(
        server.app[CTX].db,
        "meu exame deu alterado",
        channel="whatsapp",
        user="5511987654321",
        phone="+5511987654321",
    )
    async with anonymous.get("/api/portal/export") as response:
        export = await response.json()
    assert export["messages"] == []
    assert recorded.message.patient_id != export["profile"]["id"]


async def test_the_patient_edits_contact_data_and_exports_everything(server, anonymous):
    async with anonymous.post("/api/signup", json=MARIA) as response:
        assert response.status == 201
    async with anonymous.patch(
        "/api/portal/me", json={"name": "Maria S. Souza", "phone": "11 91234-5678"}
    ) as response:
        assert (await response.json())["phone"] == "+5511912345678"
    async with anonymous.patch("/api/portal/me", json={"phone": "123"}) as response:
        assert response.status == 400
    async with anonymous.get("/api/portal/export") as response:
        assert response.headers["Content-Disposition"] == 'attachment; filename="meus-dados.json"'
        export = await response.json()
    assert export["profile"]["name"] == "Maria S. Souza"
    assert export["profile"]["phone"] == "+5511912345678"
    assert set(export) == {
        "exported_at",
        "profile",
        "consents",
        "channels",
        "messages",
        "staff_notes",
        "appointments",
        "access_log",
    }
