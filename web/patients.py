"""The patient's card beside the conversation, its edits, and managers' merge of two records.

Thin views over accounts.card and accounts.merge, which decide access (core.access), validate,
write and audit-log; every refusal is a `core.errors.ClinicError` the error middleware answers.
Staff see the CPF and the phone masked, as everywhere in the workspace.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from accounts import card, merge
from core.contacts import mask_cpf
from models import ACTIVE_APPOINTMENT_STATUSES, PatientMerge, utcnow
from models.views import appointment_view
from web.api import mask_phone, read_json
from web.keys import CTX, bad_parameter, client_ip, current_user, id_from

PATIENT = r"/api/patients/{id:\d+}"


def _patient_id(request: web.Request) -> int:
    if (patient_id := id_from(request.match_info["id"])) is None:
        raise bad_parameter("id")
    return patient_id


def _body_id(body: dict[str, Any], name: str) -> int:
    raw = body.get(name)
    if isinstance(raw, bool) or (value := id_from(raw)) is None:
        raise bad_parameter(name)
    return value


def _merge_view(row: PatientMerge) -> dict[str, Any]:
    return {
        "id": row.id,
        "source_id": row.source_id,
        "target_id": row.target_id,
        "actor_id": row.actor_id,
        "created_at": row.created_at.isoformat(),
    }


def card_view(shown: card.Card) -> dict[str, Any]:
    patient = shown.patient
    profile = patient.patient_profile
    now = utcnow()
    upcoming: list[dict[str, Any]] = []
    past: list[dict[str, Any]] = []
    for item in shown.appointments:
        view = appointment_view(item.appointment, reminders=item.reminders)
        active = item.appointment.status in ACTIVE_APPOINTMENT_STATUSES
        (upcoming if active and item.appointment.starts_at >= now else past).append(view)
    return {
        "id": patient.id,
        "name": patient.name,
        "email": patient.email,
        "email_verified": patient.email_verified_at is not None,
        "phone": mask_phone(patient.phone_e164),
        "phone_proved": bool(profile and profile.phone_match_key),
        "cpf": mask_cpf(patient.cpf),
        "has_login": patient.password_hash is not None and patient.is_active,
        "preferred_channel": profile.preferred_channel if profile else None,
        "reminders_opt_in": profile.reminders_opt_in if profile else True,
        "notes": profile.notes if profile else None,
        "merged_into_id": patient.merged_into_id,
        "erased": patient.erased_at is not None,
        "reachable_channels": shown.reachable,
        "label_ids": shown.label_ids,
        "channels": [
            {
                "channel": identity.channel,
                "display_name": identity.display_name,
                "verified_phone": identity.verified_phone is not None,
                "last_inbound_at": identity.last_inbound_at.isoformat()
                if identity.last_inbound_at
                else None,
            }
            for identity in shown.identities
        ],
        "upcoming": sorted(upcoming, key=lambda a: a["starts_at"]),
        "past": past,
        "merges": [_merge_view(m) for m in shown.merges],
    }


async def patient_card(request: web.Request) -> web.Response:
    """GET /api/patients/{id}/card."""
    shown = await card.read_card(
        request.app[CTX], current_user(request), _patient_id(request), ip=client_ip(request)
    )
    return web.json_response(card_view(shown))


async def edit_patient(request: web.Request) -> web.Response:
    """PATCH /api/patients/{id}: any of the record's editable fields; the card after it."""
    ctx, user, patient_id = request.app[CTX], current_user(request), _patient_id(request)
    body = await read_json(request)
    changed = await card.edit_record(ctx, user, patient_id, body, ip=client_ip(request))
    shown = await card.read_card(ctx, user, patient_id, ip=client_ip(request))
    return web.json_response({"changed": changed, "card": card_view(shown)})


async def merge_patients(request: web.Request) -> web.Response:
    """POST /api/patients/merge {source_id, target_id, confirm: true} (managers)."""
    body = await read_json(request)
    merged = await merge.merge_records(
        request.app[CTX],
        current_user(request),
        source_id=_body_id(body, "source_id"),
        target_id=_body_id(body, "target_id"),
        confirmed=body.get("confirm") is True,
        ip=client_ip(request),
    )
    return web.json_response(
        {
            "merge_id": merged.merge_id,
            "source_id": merged.source_id,
            "target_id": merged.target_id,
            "moved": merged.moved,
            "kept_conversation_id": merged.kept_conversation_id,
            "closed_conversation_ids": merged.closed_conversation_ids,
            "login": str(merged.login),
        }
    )


def setup(app: web.Application) -> None:
    app.router.add_get(f"{PATIENT}/card", patient_card)
    app.router.add_patch(PATIENT, edit_patient)
    app.router.add_post("/api/patients/merge", merge_patients)
