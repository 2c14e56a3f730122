"""The staff search box and the past conversations: find a patient or a word in any message,
list the conversations that ended (by period, channel, attendant), read one's transcript.
Read-only; who finds what is `core.access.searchable_patients`' to say, and every answer that
names patients is audit-logged (never with what was typed: it may be a CPF or a phone)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core import access, audit
from core.audit import AuditAction
from core.contacts import mask_cpf
from messaging import search
from models.views import conversation_view
from web.api import history_entries, mask_phone
from web.keys import CTX, client_ip, current_user, id_from


def _patient(found: search.FoundPatient) -> dict[str, Any]:
    patient = found.patient
    return {
        "id": patient.id,
        "name": patient.name,
        "cpf": mask_cpf(patient.cpf),
        "phone": mask_phone(patient.phone_e164),
        "email": patient.email,
        "open_conversations": [
            conversation_view(c, patient.name) for c in found.open_conversations
        ],
    }


def _message(found: search.FoundMessage) -> dict[str, Any]:
    message = found.message
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "patient_id": message.patient_id,
        "patient_name": found.patient_name,
        "channel": message.channel,
        "author_kind": str(message.author_kind),
        "internal": message.internal,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }


async def search_everything(request: web.Request) -> web.Response:
    """Patients and messages matching `q`."""
    user = current_user(request)
    async with request.app[CTX].db.session() as session:
        found = await search.search(session, user, request.query.get("q", ""))
        if found.patient_ids:
            await audit.record(
                session,
                user,
                AuditAction.SEARCH,
                ip=client_ip(request),
                patient_ids=found.patient_ids,
            )
    return web.json_response(
        {
            "patients": [_patient(p) for p in found.patients],
            "messages": [_message(m) for m in found.messages],
        }
    )


async def past_conversations(request: web.Request) -> web.Response:
    """Closed conversations, latest first, narrowed by the query's filters."""
    user = current_user(request)
    conditions = search.past_filters(request.query)
    async with request.app[CTX].db.session() as session:
        rows = await search.past_conversations(session, user, conditions)
        if rows:
            await audit.record(
                session,
                user,
                AuditAction.READ_CONVERSATION_LIST,
                ip=client_ip(request),
                patient_ids=sorted({row.conversation.patient_id for row in rows}),
                list="past",
            )
    return web.json_response(
        [
            {
                **conversation_view(row.conversation, row.patient_name),
                "closed_at": row.conversation.closed_at.isoformat()
                if row.conversation.closed_at
                else None,
                "resolver_id": row.resolver_id,
            }
            for row in rows
        ]
    )


async def transcript(request: web.Request) -> web.Response:
    """One conversation's messages, changes and reception actions, to read."""
    user = current_user(request)
    async with request.app[CTX].db.session() as session:
        conversation, patient = await search.transcript_conversation(
            session, user, id_from(request.match_info["id"])
        )
        timeline = await history_entries(
            session, patient.id, episode=conversation.id, with_csat=access.is_manager(user)
        )
        await audit.record(
            session,
            user,
            AuditAction.READ_HISTORY,
            patient_id=patient.id,
            conversation_id=conversation.id,
            ip=client_ip(request),
            scope="transcript",
        )
    return web.json_response(
        {"conversation": conversation_view(conversation, patient.name), "timeline": timeline}
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/api/search", search_everything)
    app.router.add_get("/api/past-conversations", past_conversations)
    app.router.add_get(r"/api/transcripts/{id:\d+}", transcript)
