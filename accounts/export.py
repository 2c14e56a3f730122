"""The data export (LGPD art. 18 II and V, art. 19): everything the clinic holds about a
patient, as JSON (reusable) and as a readable pt-BR HTML document (times in the clinic's
zone). The patient downloads it from the portal; an admin for a patient. Whoever asks,
the export is recorded in the audit log by the view that serves it."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from accounts import consent
from core.catalog import t
from core.errors import NotFound
from messaging.files import files_of
from models import (
    AppointmentEvent,
    AttendantAction,
    AuditLog,
    ChannelIdentity,
    Message,
    Role,
    User,
    utcnow,
)
from models.db import Database
from models.views import appointment_view, message_view, patient_view
from scheduling.agenda import CLINIC_TZ, patient_history


class NotAPatient(NotFound):
    code = "privacy.error.not_a_patient"


async def load_patient(session: AsyncSession, patient_id: int) -> User:
    query = select(User).where(User.id == patient_id).options(selectinload(User.patient_profile))
    patient = (await session.execute(query)).scalar_one_or_none()
    if patient is None or patient.role != Role.PATIENT:
        raise NotAPatient()
    return patient


async def collect(db: Database, patient_id: int) -> dict[str, Any]:
    """Every category the clinic holds about the patient, in a reusable format."""
    async with db.session() as session:
        patient = await load_patient(session, patient_id)
        return {
            "exported_at": utcnow().isoformat(),
            "profile": patient_view(patient)
            | {
                "birth_date": patient.patient_profile.birth_date
                if patient.patient_profile
                else None,
                # What the reception wrote on the patient's card is the patient's data too.
                "staff_notes": patient.patient_profile.notes if patient.patient_profile else None,
                "created_at": patient.created_at.isoformat(),
            },
            "consents": await _consents(session, patient_id),
            "channels": await _channels(session, patient_id),
            "messages": await _messages(session, patient_id),
            "files": await _files(session, patient_id),
            "staff_notes": await _staff_notes(session, patient_id),
            "appointments": await _appointments(session, patient_id),
            "access_log": await _access_log(session, patient_id),
        }


async def _consents(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    return [
        {
            "purpose": c.purpose,
            "text_version": c.text_version,
            "channel": c.channel,
            "granted_at": c.granted_at.isoformat(),
            "withdrawn_at": c.withdrawn_at.isoformat() if c.withdrawn_at else None,
        }
        for c in await consent.history(session, patient_id)
    ]


async def _channels(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    query = select(ChannelIdentity).where(ChannelIdentity.patient_id == patient_id)
    return [
        {"channel": i.channel, "external_id": i.external_id, "since": i.created_at.isoformat()}
        for i in (await session.execute(query.order_by(ChannelIdentity.id))).scalars()
    ]


async def _messages(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    query = (
        select(Message)
        .where(Message.patient_id == patient_id, Message.internal.is_(False))
        .order_by(Message.created_at, Message.id)
    )
    return [
        {k: v for k, v in message_view(m).items() if k not in ("author_id", "internal")}
        for m in (await session.execute(query)).scalars()
    ]


async def _files(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    """What is known of each file in the history; each opens from "Histórico de mensagens"."""
    return [
        {
            "filename": f.filename,
            "kind": f.kind,
            "mime_type": f.mime_type,
            "size": f.size,
            "sha256": f.sha256,
            "message_id": f.message_id,
            "created_at": f.created_at.isoformat(),
        }
        for f in await files_of(session, patient_id)
    ]


async def _staff_notes(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    """Internal notes written in the patient's conversations and the reception's recorded
    actions about them, oldest first, with who wrote them."""
    author = aliased(User)
    notes = await session.execute(
        select(Message, author.name)
        .outerjoin(author, author.id == Message.author_id)
        .where(Message.patient_id == patient_id, Message.internal.is_(True))
    )
    actions = await session.execute(
        select(AttendantAction, author.name)
        .outerjoin(author, author.id == AttendantAction.actor_id)
        .where(AttendantAction.patient_id == patient_id)
    )
    entries: list[tuple[datetime, dict[str, Any]]] = [
        (m.created_at, {"kind": "nota", "by": name, "text": m.text, "details": {}})
        for m, name in notes
    ] + [
        (a.created_at, {"kind": a.kind, "by": name, "text": "", "details": a.details or {}})
        for a, name in actions
    ]
    return [entry | {"at": at.isoformat()} for at, entry in sorted(entries, key=lambda e: e[0])]


async def _appointments(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    history = list(reversed(await patient_history(session, patient_id)))
    ids = [item.appointment.id for item in history]
    events: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    query = (
        select(AppointmentEvent)
        .where(AppointmentEvent.appointment_id.in_(ids))
        .order_by(AppointmentEvent.created_at, AppointmentEvent.id)
    )
    for event in (await session.execute(query)).scalars():
        events[event.appointment_id].append(
            {
                "from_status": event.from_status,
                "to_status": event.to_status,
                "channel": event.channel,
                "at": event.created_at.isoformat(),
            }
        )
    return [
        appointment_view(i.appointment, patient_name=i.patient_name, reminders=i.reminders)
        | {"history": events[i.appointment.id]}
        for i in history
    ]


async def _access_log(session: AsyncSession, patient_id: int) -> list[dict[str, Any]]:
    """Who of the staff read or changed the patient's data, and when (the patient's own
    actions are theirs, not an access to report)."""
    actor = aliased(User)
    query = (
        select(AuditLog, actor.name, actor.role)
        .outerjoin(actor, actor.id == AuditLog.actor_id)
        .where(AuditLog.patient_id == patient_id, AuditLog.actor_id != patient_id)
        .order_by(AuditLog.created_at, AuditLog.id)
    )
    return [
        {
            "by": name,
            "role": str(role) if role else None,
            "action": entry.action,
            "at": entry.created_at.isoformat(),
        }
        for entry, name, role in await session.execute(query)
    ]


# --- The readable document --------------------------------------------------------------


def _local(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone(CLINIC_TZ).strftime("%d/%m/%Y %H:%M")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return f"<p>{escape(t('export.none'))}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(key: str, content: str) -> str:
    return f"<section><h2>{escape(t(key))}</h2>{content}</section>"


def _purpose(purpose: str) -> str:
    return t(f"consent.{purpose}.title") if purpose in consent.PURPOSES else purpose


def render_html(data: dict[str, Any]) -> str:
    """The export as a standalone pt-BR page: no script, every value escaped."""
    profile = data["profile"]
    name = profile.get("name") or ""
    fields = [
        ("export.name", name),
        ("export.email", profile.get("email") or "—"),
        ("export.phone", profile.get("phone") or "—"),
        ("export.cpf", profile.get("cpf") or "—"),
        ("export.birth_date", profile.get("birth_date") or "—"),
        ("export.preferred_channel", profile.get("preferred_channel") or "—"),
        ("export.staff_notes", profile.get("staff_notes") or "—"),
        ("export.created_at", _local(profile.get("created_at"))),
    ]
    parts = [
        _section(
            "export.profile", _table([t("export.profile"), ""], [[t(k), v] for k, v in fields])
        ),
        _section(
            "export.consents",
            _table(
                [
                    t(k)
                    for k in (
                        "export.purpose",
                        "export.version",
                        "export.channel",
                        "export.granted_at",
                        "export.withdrawn_at",
                    )
                ],
                [
                    [
                        _purpose(c["purpose"]),
                        c["text_version"],
                        c["channel"],
                        _local(c["granted_at"]),
                        _local(c["withdrawn_at"]),
                    ]
                    for c in data["consents"]
                ],
            ),
        ),
        _section(
            "export.identities",
            _table(
                [t("export.channel"), t("export.identifier"), t("export.since")],
                [[i["channel"], i["external_id"], _local(i["since"])] for i in data["channels"]],
            ),
        ),
        _section(
            "export.messages",
            _table(
                [t("export.when"), t("export.channel"), t("export.author"), t("export.text")],
                [
                    [
                        _local(m["created_at"]),
                        m["channel"],
                        t(f"export.author.{m['author_kind']}"),
                        m["text"],
                    ]
                    for m in data["messages"]
                ],
            ),
        ),
        _section(
            "export.files",
            _table(
                [t("export.when"), t("export.kind"), t("export.filename"), t("export.size")],
                [
                    [
                        _local(f["created_at"]),
                        t(f"files.kind.{f['kind']}"),
                        f["filename"] or "—",
                        f"{f['size']:,}".replace(",", "."),
                    ]
                    for f in data["files"]
                ],
            ),
        ),
        _section(
            "export.staff_notes",
            _table(
                [t("export.when"), t("export.who"), t("export.kind"), t("export.text")],
                [
                    [
                        _local(n["at"]),
                        n["by"] or "—",
                        n["kind"],
                        n["text"] or ", ".join(f"{k}: {v}" for k, v in n["details"].items()),
                    ]
                    for n in data["staff_notes"]
                ],
            ),
        ),
        _section(
            "export.appointments",
            _table(
                [
                    t(k)
                    for k in (
                        "export.when",
                        "export.doctor",
                        "export.specialty",
                        "export.status",
                        "export.history",
                        "export.reminders",
                    )
                ],
                [
                    [
                        _local(a["starts_at"]),
                        a["doctor_name"],
                        a["specialty_name"],
                        t(f"appointment.status.{a['status']}"),
                        "; ".join(
                            f"{_local(e['at'])} {e['to_status']} ({e['channel']})"
                            for e in a["history"]
                        ),
                        "; ".join(
                            f"{_local(r['sent_at'] or r['due_at'])} {r['status']}"
                            for r in a["reminders"]
                        ),
                    ]
                    for a in data["appointments"]
                ],
            ),
        ),
        _section(
            "export.access_log",
            _table(
                [t("export.when"), t("export.who"), t("export.action")],
                [
                    [_local(e["at"]), f"{e['by'] or '—'} ({e['role'] or '—'})", e["action"]]
                    for e in data["access_log"]
                ],
            ),
        ),
    ]
    title = escape(t("export.title", nome=name))
    intro = escape(t("export.intro", quando=_local(data["exported_at"])))
    return (
        '<!doctype html>\n<html lang="pt-BR"><head><meta charset="utf-8">'
        f'<title>{title}</title><link rel="stylesheet" href="/static/app.css"></head>'
        f'<body class="export"><main><h1>{title}</h1><p>{intro}</p>{"".join(parts)}'
        "</main></body></html>\n"
    )
