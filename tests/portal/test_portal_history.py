""" "Histórico de mensagens": the patient's conversations on every channel in one timeline,
with the files listed, never staff's internal notes, and never anyone else's messages."""

from sqlalchemy import select

from messaging.history import record_outbound
from models import AuthorKind, Conversation, User
from tests.factories import patient_message
from tests.portal.test_patient_accounts import MARIA
from web.keys import CTX

MAIL = MARIA["email"].lower()


async def _maria_id(db) -> int:
    async with db.session() as session:
        return (await session.execute(select(User.id).where(User.email == MAIL))).scalar_one()


async def test_every_channel_in_one_timeline_without_internal_notes(server, maria):
    db = server.app[CTX].db
    maria_id = await _maria_id(db)
    # Her verified e-mail is a channel identity: authenticated mail from it is hers.
    mail = await patient_message(
        db,
        "Segue o pedido de exame.",
        channel="email",
        user=MAIL,
        attachments=[
            {"type": "document", "mime_type": "application/pdf", "filename": "pedido.pdf"}
        ],
    )
    assert mail.message.patient_id == maria_id
    async with db.session() as session:
        conversation = await session.get_one(Conversation, mail.message.conversation_id)
        await record_outbound(
            session, conversation, text="Recebemos, obrigado!", author_kind=AuthorKind.ATTENDANT
        )
        await record_outbound(
            session,
            conversation,
            text="nota interna: conferir convênio",
            author_kind=AuthorKind.ATTENDANT,
            internal=True,
        )
    await patient_message(db, "mensagem de outra pessoa", channel="whatsapp", user="5511900000000")

    async with maria.get("/api/portal/messages") as response:
        assert response.status == 200
        timeline = await response.json()

    assert [(m["author_kind"], m["text"]) for m in timeline] == [
        ("patient", "Segue o pedido de exame."),
        ("attendant", "Recebemos, obrigado!"),
    ]
    assert timeline[0]["channel"] == "email"
    assert timeline[0]["attachments"] == [  # not stored (recorded as is): nothing to open
        {"type": "document", "filename": "pedido.pdf", "mime_type": "application/pdf", "file": None}
    ]


async def test_older_messages_come_a_page_at_a_time(server, maria):
    db = server.app[CTX].db
    first = await patient_message(db, "primeira", channel="email", user=MAIL)
    await patient_message(db, "segunda", channel="email", user=MAIL)

    async with maria.get("/api/portal/messages", params={"before": "0"}) as response:
        assert await response.json() == []
    async with maria.get(
        "/api/portal/messages", params={"before": str(first.message.id + 1)}
    ) as response:
        assert [m["text"] for m in await response.json()] == ["primeira"]
