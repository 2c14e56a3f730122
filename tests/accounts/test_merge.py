"""A manager merges two records of one person (accounts.merge), on SQLite and PostgreSQL:
everything of the source moves to the target, nothing is lost, the source can no longer log
in, one open conversation goes on, and both records' timelines say what happened."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from accounts import consent
from accounts.auth import hash_password, open_session, session_users
from accounts.merge import Login, ManagersMerge, NotMergeable, Unconfirmed, merge_records
from core.errors import ClinicError
from handoff.transitions.queueing import request_handoff
from models import (
    Appointment,
    AttendantAction,
    AuditLog,
    ChannelIdentity,
    Consent,
    Conversation,
    ConversationStatus,
    HandoffEvent,
    Message,
    Owner,
    PatientMerge,
    PatientProfile,
    Role,
    User,
    utcnow,
)
from scripts.demo_clinic import add_agenda
from tests.factories import booked, patient_message, staff

_DAY = timedelta(days=1)
WHATSAPP_PHONE = "5511987654321"


async def _patient(ctx, *, channel: str, user: str, texts: list[str], **record) -> User:
    for text in texts:
        recorded = await patient_message(ctx.db, text, channel=channel, user=user)
    async with ctx.db.session() as session:
        patient = await session.get_one(User, recorded.message.patient_id)
        for field, value in record.items():
            setattr(patient, field, value)
    return patient


async def _count(ctx, model, patient_id: int) -> int:
    async with ctx.db.session() as session:
        query = select(func.count()).select_from(model).where(model.patient_id == patient_id)
        return int((await session.execute(query)).scalar_one())


@pytest.fixture
async def two_records(ctx):
    """Maria wrote on the widget (and signed up there) and on WhatsApp: two records, each
    with messages, an appointment, a consent, an open conversation and a portal login."""
    async with ctx.db.session() as session:
        add_agenda(session, [utcnow().year, utcnow().year + 1])
    source = await _patient(
        ctx,
        channel="webchat",
        user="visitante-maria",
        texts=["oi", "quero marcar"],
        name="Maria (site)",
        email="maria.site@exemplo.com",
        email_verified_at=utcnow(),
        password_hash=hash_password("senha-da-maria-1"),
    )
    target = await _patient(
        ctx,
        channel="whatsapp",
        user=WHATSAPP_PHONE,
        texts=["bom dia"],
        name="Maria Souza",
        email="maria@exemplo.com",
        email_verified_at=utcnow(),
        password_hash=hash_password("senha-da-maria-2"),
    )
    await booked(ctx.db, source, nth=0)
    await booked(ctx.db, target, "Camila", nth=0)
    async with ctx.db.session() as session:
        await consent.grant(session, source.id, consent.SERVICE, channel="webchat")
        await consent.grant(session, target.id, consent.SERVICE, channel="whatsapp")
        profile = await session.get_one(PatientProfile, source.id)
        profile.notes = "Prefere ser chamada pela manhã."
        source_login = await open_session(session, await session.get_one(User, source.id))
    return source, target, source_login


async def test_merge_moves_every_row_of_the_source_and_loses_nothing(ctx, two_records):
    source, target, source_login = two_records
    manager = await staff(ctx.db, Role.MANAGER)
    models = (Message, Conversation, ChannelIdentity, Appointment, Consent)
    before = {m: await _count(ctx, m, source.id) + await _count(ctx, m, target.id) for m in models}

    merged = await merge_records(
        ctx, manager, source_id=source.id, target_id=target.id, confirmed=True, ip="10.0.0.1"
    )

    for model in models:
        assert await _count(ctx, model, source.id) == 0, model
        assert await _count(ctx, model, target.id) == before[model], model
    assert merged.moved == {
        "conversations": 1,
        "messages": 2,
        "identities": 1,
        "appointments": 1,
        "consents": 1,
    }
    async with ctx.db.session() as session:
        old = await session.get_one(User, source.id)
        kept = await session.get_one(User, target.id)
        profile = await session.get_one(PatientProfile, target.id)
        assert (old.is_active, old.merged_into_id, old.password_hash) == (False, target.id, None)
        # Both logged in: the target's login stays, the source's session is over.
        assert merged.login == Login.TARGET_KEPT
        assert kept.email == "maria@exemplo.com" and kept.password_hash is not None
        assert await session_users(session, [source_login], idle=_DAY) == {}
        assert profile.notes == "Prefere ser chamada pela manhã."
        row = await session.get_one(PatientMerge, merged.merge_id)
        assert (row.source_id, row.target_id, row.actor_id) == (source.id, target.id, manager.id)
        audited = (
            await session.execute(select(AuditLog).where(AuditLog.action == "patients_merged"))
        ).scalar_one()
        assert (audited.actor_id, audited.patient_id) == (manager.id, target.id)
        assert audited.details["merged_patient_id"] == source.id
        explained = (
            await session.execute(
                select(AttendantAction.patient_id, AttendantAction.details["note"].as_string())
                .where(AttendantAction.kind == "patient_merged")
                .order_by(AttendantAction.patient_id)
            )
        ).all()
    assert sorted(explained) == sorted(
        [
            (target.id, f"o cadastro nº {source.id} foi unido a este"),
            (source.id, f"este cadastro foi unido ao cadastro nº {target.id}"),
        ]
    )


async def test_two_open_conversations_become_one_and_the_person_keeps_theirs(ctx, two_records):
    source, target, _ = two_records
    manager = await staff(ctx.db, Role.MANAGER)
    async with ctx.db.session() as session:
        waiting = (
            await session.execute(
                select(Conversation.id).where(Conversation.patient_id == source.id)
            )
        ).scalar_one()
        with_bot = (
            await session.execute(
                select(Conversation.id).where(Conversation.patient_id == target.id)
            )
        ).scalar_one()
    await request_handoff(ctx, waiting, reason="pedido_do_paciente")

    merged = await merge_records(
        ctx, manager, source_id=source.id, target_id=target.id, confirmed=True, ip=None
    )

    assert (merged.kept_conversation_id, merged.closed_conversation_ids) == (waiting, [with_bot])
    async with ctx.db.session() as session:
        still_open = (
            await session.execute(
                select(Conversation.id, Conversation.owner).where(
                    Conversation.patient_id == target.id,
                    Conversation.status == ConversationStatus.OPEN,
                )
            )
        ).all()
        closing = (
            await session.execute(
                select(HandoffEvent).where(HandoffEvent.conversation_id == with_bot)
            )
        ).scalar_one()
    assert still_open == [(waiting, Owner.QUEUED)]
    assert (closing.kind, closing.actor_id) == ("closed_by_merge", manager.id)
    assert closing.details == {"into_conversation_id": waiting}


async def test_a_login_on_the_source_alone_moves_with_its_email(ctx, two_records):
    source, target, _ = two_records
    async with ctx.db.session() as session:
        record = await session.get_one(User, target.id)
        record.email, record.email_verified_at, record.password_hash = None, None, None
    manager = await staff(ctx.db, Role.MANAGER)

    merged = await merge_records(
        ctx, manager, source_id=source.id, target_id=target.id, confirmed=True, ip=None
    )

    assert merged.login == Login.MOVED
    async with ctx.db.session() as session:
        kept = await session.get_one(User, target.id)
    assert kept.email == "maria.site@exemplo.com" and kept.email_verified_at is not None
    assert kept.password_hash is not None


@pytest.mark.parametrize(
    ("role", "confirmed", "refusal"),
    [(Role.ATTENDANT, True, ManagersMerge), (Role.MANAGER, False, Unconfirmed)],
)
async def test_no_merge_without_a_manager_who_confirms(ctx, two_records, role, confirmed, refusal):
    source, target, _ = two_records
    actor = await staff(ctx.db, role)

    with pytest.raises(refusal):
        await merge_records(
            ctx, actor, source_id=source.id, target_id=target.id, confirmed=confirmed, ip=None
        )

    assert await _count(ctx, Message, source.id) == 2
    async with ctx.db.session() as session:
        assert (await session.get_one(User, source.id)).is_active


async def test_a_merged_record_cannot_be_merged_again(ctx, two_records):
    source, target, _ = two_records
    manager = await staff(ctx.db, Role.MANAGER)
    await merge_records(
        ctx, manager, source_id=source.id, target_id=target.id, confirmed=True, ip=None
    )

    with pytest.raises(NotMergeable):
        await merge_records(
            ctx, manager, source_id=source.id, target_id=target.id, confirmed=True, ip=None
        )
    with pytest.raises(ClinicError):
        await merge_records(
            ctx, manager, source_id=target.id, target_id=source.id, confirmed=True, ip=None
        )
