"""A CPF or phone of a known patient typed on Messenger, Instagram or the widget is proved
with a one-time code sent to that patient's verified channel before anything is linked:
the assistant's side (opening the claim, asking, checking) on a real database, with the
code sent as the Rasa process sends it (`messaging.verification.send_code`)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from bot.actions.forms import DialogueForm
from bot.actions.identity import ActionAskCodigo
from messaging.verification import send_code
from models import ChannelIdentity, ClaimStatus, IdentityClaim, Message, User
from tests.bot.conftest import sent, tracker
from tests.factories import patient_message

CPF = "52998224725"
PHONE = "+5511987650001"


class Form(DialogueForm):
    def name(self) -> str:
        return "validate_identificacao_form"


@pytest.fixture(autouse=True)
def code_secret(monkeypatch, settings):
    """The action server hashes with the same SESSION_SECRET as the Rasa process (`ctx`)."""
    monkeypatch.setenv("SESSION_SECRET", settings.session_secret)


async def _known_on_whatsapp(db, *, phone: str = PHONE, cpf: str = CPF) -> int:
    """A patient who wrote on WhatsApp (the provider proved the phone) and has a CPF."""
    recorded = await patient_message(
        db, "oi", channel="whatsapp", user=phone[1:], phone=phone, display_name="Maria Souza"
    )
    async with db.session() as session:
        (await session.get(User, recorded.message.patient_id)).cpf = cpf
    return recorded.message.patient_id


async def _on_messenger(db) -> int:
    return (await patient_message(db, "oi", channel="messenger")).message.patient_id


def _on(patient: int, text: str, **kwargs):
    return tracker(patient, text, input_channel="messenger", **kwargs)


async def _validate(slot: str, value: str, patient: int, **kwargs):
    dispatcher = CollectingDispatcher()
    method = getattr(Form(), f"validate_{slot}")
    return await method(value, dispatcher, _on(patient, value, **kwargs), {}), dispatcher


async def _claims(db) -> list[IdentityClaim]:
    async with db.session() as session:
        return list((await session.execute(select(IdentityClaim))).scalars())


async def _patient_of_messenger(db) -> int:
    async with db.session() as session:
        query = select(ChannelIdentity.patient_id).where(ChannelIdentity.channel == "messenger")
        return (await session.execute(query)).scalar_one()


async def _code_sent(ctx, claimant: int) -> str:
    """Ask for the code as the form does, and send it as the Rasa process does; the code
    as the known patient read it on WhatsApp."""
    dispatcher = CollectingDispatcher()
    await ActionAskCodigo().run(
        dispatcher, _on(claimant, "", slots={"requested_slot": "codigo"}), {}
    )
    [message] = dispatcher.messages
    assert message["response"] == "utter_codigo_enviado"
    assert await send_code(ctx, message["custom"]["identity_code"]["claim"], claimant)
    [text] = ctx.senders["whatsapp"].texts[-1:]
    return re.search(r"\b(\d{6})\b", text).group(1)


async def test_a_cpf_known_on_whatsapp_opens_a_claim_and_the_code_goes_there(clinic_db, ctx):
    owner = await _known_on_whatsapp(clinic_db.db)
    claimant = await _on_messenger(clinic_db.db)

    result, dispatcher = await _validate("cpf", "529.982.247-25", claimant)

    assert result == {"cpf": None}
    assert dispatcher.messages == []  # the form's next question says where the code goes
    required = await Form().required_slots(
        ["lgpd_consentimento", "nome", "cpf", "telefone", "codigo"],
        dispatcher,
        _on(claimant, ""),
        {},
    )
    assert required == ["codigo"]
    ask = CollectingDispatcher()
    await ActionAskCodigo().run(ask, _on(claimant, "", slots={"requested_slot": "codigo"}), {})
    [message] = ask.messages
    assert message["response"] == "utter_codigo_enviado"
    assert "canal" not in message and "final" not in message  # never where the code went
    [claim] = await _claims(clinic_db.db)
    assert (claim.claimant_id, claim.owner_id, claim.status) == (claimant, owner, "pending")
    assert message["custom"] == {"identity_code": {"claim": claim.id}}
    assert await _patient_of_messenger(clinic_db.db) == claimant


async def test_the_right_code_links_the_messenger_id_to_the_known_patient(clinic_db, ctx, caplog):
    for logger in ("handoff", "bot"):
        caplog.set_level(logging.DEBUG, logger=logger)
    owner = await _known_on_whatsapp(clinic_db.db)
    claimant = await _on_messenger(clinic_db.db)
    await _validate("cpf", CPF, claimant)

    code = await _code_sent(ctx, claimant)
    [(delivered, to)] = ctx.senders["whatsapp"].delivered
    assert to.external_id == PHONE[1:]
    result, dispatcher = await _validate(
        "codigo", f"{code[:3]} {code[3:]}", claimant, active_loop="identificacao_form"
    )

    assert result == {"codigo": "confirmado"}
    assert sent(dispatcher) == ["utter_identidade_confirmada", "utter_retomar_identificacao_form"]
    assert await _patient_of_messenger(clinic_db.db) == owner
    async with clinic_db.db.session() as session:
        merged = await session.get(User, claimant)
        history = (await session.execute(select(Message).order_by(Message.id))).scalars().all()
    assert (merged.is_active, merged.merged_into_id) == (False, owner)
    assert {m.patient_id for m in history} == {owner}
    # What the history keeps of the code message: that it was sent, never the code.
    [record] = [m for m in history if m.sealed]
    assert record.id == delivered.id and code not in record.text and record.template is None
    assert record.delivery_status == "sent"
    [claim] = await _claims(clinic_db.db)
    assert claim.status == ClaimStatus.LINKED and code not in (claim.code_hash or "")
    assert code not in caplog.text and CPF not in caplog.text and PHONE[-8:] not in caplog.text


async def test_three_wrong_codes_link_nothing_and_offer_a_person(clinic_db, ctx):
    owner = await _known_on_whatsapp(clinic_db.db)
    claimant = await _on_messenger(clinic_db.db)
    await _validate("cpf", CPF, claimant)
    code = await _code_sent(ctx, claimant)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = [await _validate("codigo", wrong, claimant) for _ in range(3)]
    late, _ = await _validate("codigo", code, claimant)

    assert [result for result, _ in answers] == [
        {"codigo": None},
        {"codigo": None},
        {"codigo": "recusado"},
    ]
    assert [d.messages[0].get("restantes") for _, d in answers[:2]] == [2, 1]
    refusal = answers[2][1].messages[0]
    assert refusal["response"] == "utter_codigo_recusado"
    assert late == {"codigo": None}  # the claim is closed: even the right code does nothing
    assert await _patient_of_messenger(clinic_db.db) == claimant != owner
    [claim] = await _claims(clinic_db.db)
    assert claim.status == ClaimStatus.REFUSED


async def test_an_expired_code_links_nothing_and_the_form_asks_again(clinic_db, ctx):
    await _known_on_whatsapp(clinic_db.db)
    claimant = await _on_messenger(clinic_db.db)
    await _validate("cpf", CPF, claimant)
    code = await _code_sent(ctx, claimant)
    async with clinic_db.db.session() as session:
        claim = (await session.execute(select(IdentityClaim))).scalar_one()
        claim.expires_at -= timedelta(minutes=11)

    result, dispatcher = await _validate(
        "codigo", code, claimant, slots={"requested_slot": "codigo"}
    )

    assert result == {"codigo": None}
    assert sent(dispatcher) == ["utter_codigo_expirado"]
    assert await _patient_of_messenger(clinic_db.db) == claimant
    required = await Form().required_slots(
        ["lgpd_consentimento", "nome", "cpf", "telefone", "codigo"],
        dispatcher,
        _on(claimant, ""),
        {},
    )
    assert "codigo" not in required and "cpf" in required


async def test_a_cpf_of_a_patient_with_no_verified_channel_gets_a_decoy_and_no_code(clinic_db, ctx):
    claimant = await _on_messenger(clinic_db.db)
    known = (await patient_message(clinic_db.db, "oi", channel="webchat")).message.patient_id
    async with clinic_db.db.session() as session:
        # A phone typed on a form proves nothing: no code goes to it.
        user = await session.get(User, known)
        user.cpf, user.phone_e164 = CPF, PHONE

    result, dispatcher = await _validate("cpf", CPF, claimant)

    assert (result, dispatcher.messages) == ({"cpf": None}, [])
    [claim] = await _claims(clinic_db.db)
    assert (claim.owner_id, claim.destination_id) == (None, None)
    assert await send_code(ctx, claim.id, claimant)
    assert ctx.senders["whatsapp"].texts == []
    assert await _patient_of_messenger(clinic_db.db) == claimant


async def test_a_phone_someone_writes_from_on_whatsapp_is_proved_by_a_code_to_it(clinic_db):
    owner = await _known_on_whatsapp(clinic_db.db)
    claimant = await _on_messenger(clinic_db.db)

    result, _ = await _validate("telefone", "(11) 98765-0001", claimant)

    assert result == {"telefone": None}
    [claim] = await _claims(clinic_db.db)
    assert (claim.owner_id, claim.claimed) == (owner, "phone")
    async with clinic_db.db.session() as session:
        # Stored as typed (it links nothing), as an unknown phone would be.
        assert (await session.get(User, claimant)).phone_e164 == PHONE


async def test_a_phone_only_typed_on_another_record_is_stored_and_sends_no_code(clinic_db):
    claimant = await _on_messenger(clinic_db.db)
    other = (await patient_message(clinic_db.db, "oi", channel="webchat")).message.patient_id
    async with clinic_db.db.session() as session:
        (await session.get(User, other)).phone_e164 = PHONE

    result, dispatcher = await _validate("telefone", PHONE, claimant)

    assert (result, dispatcher.messages) == ({"telefone": None}, [])
    [claim] = await _claims(clinic_db.db)
    assert claim.destination_id is None  # a decoy: the typed phone proves nothing
    async with clinic_db.db.session() as session:
        assert (await session.get(User, claimant)).phone_e164 == PHONE


async def test_no_more_than_three_codes_a_day_go_to_one_patient(clinic_db):
    await _known_on_whatsapp(clinic_db.db)
    for _ in range(3):
        await _validate("cpf", CPF, await _on_messenger(clinic_db.db))

    result, dispatcher = await _validate("cpf", CPF, await _on_messenger(clinic_db.db))

    assert (result, dispatcher.messages) == ({"cpf": None}, [])  # answered as ever
    claims = await _claims(clinic_db.db)
    assert [c.destination_id is not None for c in claims] == [True, True, True, False]


# --- enumeration probes: a known and an unknown CPF get the same answers ----------------------

UNKNOWN_CPF = "11144477735"


async def _bot_says(claimant: int, steps: list[tuple[str, str]]) -> list[list[dict]]:
    """What the visitor reads at each step: the CPF answer, the code question, then each
    answer to the code question (its validation and, after it, the form's next question)."""
    seen = []
    for slot, text in steps:
        if slot == "ask":
            dispatcher = CollectingDispatcher()
            await ActionAskCodigo().run(
                dispatcher, _on(claimant, "", slots={"requested_slot": "codigo"}), {}
            )
        else:
            _, dispatcher = await _validate(slot, text, claimant, slots={"requested_slot": slot})
        seen.append(
            [
                {k: v for k, v in m.items() if k != "custom"}  # the platform's, not shown
                for m in dispatcher.messages
            ]
        )
    return seen


@pytest.mark.parametrize(
    "ending", [["000000", "111111", "222222"], ["pular"], ["expire", "000000"]]
)
async def test_a_known_and_an_unknown_cpf_read_the_same_on_the_widget(clinic_db, ctx, ending):
    await _known_on_whatsapp(clinic_db.db)
    answers = {}
    for cpf in (CPF, UNKNOWN_CPF):
        claimant = (await patient_message(clinic_db.db, "oi", channel="webchat")).message.patient_id
        steps = [("cpf", cpf), ("ask", "")]
        seen = await _bot_says(claimant, steps)
        async with clinic_db.db.session() as session:
            claim = (
                await session.execute(
                    select(IdentityClaim).where(IdentityClaim.claimant_id == claimant)
                )
            ).scalar_one()
        await send_code(ctx, claim.id, claimant)
        for answer in ending:
            if answer == "expire":
                async with clinic_db.db.session() as session:
                    (await session.get(IdentityClaim, claim.id)).expires_at -= timedelta(minutes=11)
                continue
            seen += await _bot_says(claimant, [("codigo", answer)])
        required = await Form().required_slots(
            ["lgpd_consentimento", "nome", "cpf", "telefone", "codigo"],
            CollectingDispatcher(),
            _on(claimant, ""),
            {},
        )
        answers[cpf] = (seen, required)
        async with clinic_db.db.session() as session:
            assert (await session.get(User, claimant)).cpf is None  # typed: not stored

    assert answers[CPF] == answers[UNKNOWN_CPF]
    seen, _ = answers[CPF]
    assert seen[0] == [] and seen[1][0]["response"] == "utter_codigo_enviado"
    # Only the real owner's WhatsApp got a code.
    assert len(ctx.senders["whatsapp"].texts) == 1


async def test_after_the_same_answer_the_real_owner_still_gets_the_code_and_proves_it(
    clinic_db, ctx
):
    owner = await _known_on_whatsapp(clinic_db.db)
    claimant = (await patient_message(clinic_db.db, "oi", channel="webchat")).message.patient_id
    await _validate("cpf", CPF, claimant)

    code = await _code_sent(ctx, claimant)
    result, _ = await _validate("codigo", code, claimant)

    assert result == {"codigo": "confirmado"}
    async with clinic_db.db.session() as session:
        query = select(ChannelIdentity.patient_id).where(ChannelIdentity.channel == "webchat")
        assert (await session.execute(query)).scalar_one() == owner
