"""The audit log: who did what to whose data, from which address — append-only and chained.

Every entry is written through `record`, which links it to the entry before it: it stores
that entry's hash (`prev_hash`) and its own (`entry_hash`, SHA-256 over a canonical
serialisation of its fields and `prev_hash`). The database refuses UPDATE and DELETE on the
table (triggers, migration 0012); the chain shows any change made around them — an edited,
removed or inserted entry breaks the link at that point, which `verify_chain` reports.

Appends are serialised so that concurrent transactions never fork the chain: on PostgreSQL
by a transaction-scoped advisory lock taken before reading the chain's head, on SQLite by
the write lock every transaction takes up front (`models.db`). The lock is held until the
caller's transaction ends, so callers record near the end of their unit of work.

Entries name users, patients and conversations by id only (no foreign keys): erasing a
patient neither is blocked by nor rewrites the log. Nothing personal goes in `details`
(no message text, CPF, phone, e-mail or password): a failed login keeps only a keyed
fingerprint of the address typed (`fingerprint`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from models import AuditLog, User, utcnow
from models.base import StrEnum

# pg_advisory_xact_lock key of the chain's head ("audit" in ASCII).
_CHAIN_LOCK = 0x6175646974
_VERIFY_BATCH = 1000


class AuditAction(StrEnum):
    """What an entry records; the admin page shows each as `audit.action.<value>`."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    # The staff second factor: a wrong code after the right password, an enrolment, and its
    # removal by an admin (a lost phone).
    SECOND_FACTOR_FAILED = "second_factor_failed"
    SECOND_FACTOR_ENROLLED = "second_factor_enrolled"
    SECOND_FACTOR_RESET = "second_factor_reset"
    # The data subject's export (portal) or one made for them by staff (LGPD art. 18).
    EXPORT = "export"
    # Erasure and anonymisation on request or by retention (recorded by the LGPD functions).
    ERASURE = "erasure"
    ANONYMISATION = "anonymisation"
    # Staff reads of patients' data.
    READ_CONVERSATION_LIST = "read_conversation_list"
    READ_HISTORY = "read_history"
    READ_APPOINTMENTS = "read_appointments"
    READ_AGENDA = "read_agenda"
    LIVE_SUPERVISION_OPENED = "live_supervision_opened"
    READ_AUDIT_LOG = "read_audit_log"
    # The staff search answered with patients or their messages (what was typed is not kept).
    SEARCH = "search"
    # A file from a patient's history opened (by staff, the patient, or a provider through
    # a signed link sending it).
    READ_FILE = "read_file"
    # Admin and manager changes.
    STAFF_CREATED = "staff_created"
    STAFF_UPDATED = "staff_updated"
    CLINIC_PROFILE_UPDATED = "clinic_profile_updated"
    # An approved message template created or changed in the registry.
    MESSAGE_TEMPLATE_SAVED = "message_template_saved"
    SETTINGS_CHANGED = "settings_changed"
    LOCK_LIFTED = "lock_lifted"
    # An admin's change to the agenda set-up: a specialty, a doctor or a clinic holiday.
    AGENDA_CHANGED = "agenda_changed"
    BLOCK_TIME = "block_time"
    UNBLOCK_TIME = "unblock_time"
    NOTIFY_BLOCKED = "notify_blocked"
    # Staff booked a patient beyond the cap of appointments per specialty, on purpose.
    BOOKED_OVER_CAP = "booked_over_cap"
    # The system joined two patient records after a one-time code proved the contact.
    PATIENT_LINKED_BY_CODE = "patient_linked_by_code"
    # A patient proved their typed phone with a code sent to it; or proved it while another
    # patient with an account holds it, which a person must sort out.
    PHONE_PROVED = "phone_proved"
    PHONE_PROOF_CONFLICT = "phone_proof_conflict"
    # The patient's card: staff read it, edit the record (field names only), and a manager
    # merges two records into one.
    READ_PATIENT_CARD = "read_patient_card"
    PATIENT_UPDATED = "patient_updated"
    PATIENTS_MERGED = "patients_merged"


def fingerprint(secret: str, value: str) -> str:
    """A keyed hash of something that identifies a person (the e-mail typed at a failed
    login): equal inputs match across entries, the value itself cannot be read back or
    guessed without the key."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def _canonical(entry: AuditLog) -> bytes:
    fields = {
        "action": entry.action,
        "actor_id": entry.actor_id,
        "patient_id": entry.patient_id,
        "conversation_id": entry.conversation_id,
        "ip": entry.ip,
        "details": entry.details,
        "created_at": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: AuditLog) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


async def _lock_chain(session: AsyncSession) -> None:
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})


async def record(
    session: AsyncSession,
    actor: User | None,
    action: AuditAction,
    *,
    patient_id: int | None = None,
    conversation_id: int | None = None,
    ip: str | None = None,
    **details: object,
) -> AuditLog:
    """Append one entry in the caller's transaction (it is kept only if that commits).
    `actor` is None when nobody is logged in (a failed login) or the system acted;
    `details` must be JSON (ids, counts, field names — nothing personal)."""
    await _lock_chain(session)
    head = select(AuditLog.entry_hash).order_by(AuditLog.id.desc()).limit(1)
    entry = AuditLog(
        actor_id=actor.id if actor else None,
        action=str(action),
        patient_id=patient_id,
        conversation_id=conversation_id,
        ip=ip,
        # Hash exactly what the database will give back.
        details=json.loads(json.dumps(details)),
        created_at=utcnow(),
        prev_hash=(await session.execute(head)).scalar_one_or_none(),
    )
    entry.entry_hash = entry_hash(entry)
    session.add(entry)
    await session.flush()  # takes its id now, in chain order
    return entry


@dataclass(frozen=True)
class ChainReport:
    """`broken_id` is the first entry whose link or hash does not hold (None when the chain
    is whole); `unchained` counts entries written before the chain existed (migration 0012),
    which only the triggers protect."""

    checked: int
    unchained: int
    broken_id: int | None

    @property
    def intact(self) -> bool:
        return self.broken_id is None

    def view(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "checked": self.checked,
            "unchained": self.unchained,
            "broken_id": self.broken_id,
        }


async def verify_chain(session: AsyncSession) -> ChainReport:
    """Walk the log in id order, recomputing every hash and link."""
    checked = unchained = 0
    previous: str | None = None
    last_id = 0
    while True:
        batch = (
            (
                await session.execute(
                    select(AuditLog)
                    .where(AuditLog.id > last_id)
                    .order_by(AuditLog.id)
                    .limit(_VERIFY_BATCH)
                )
            )
            .scalars()
            .all()
        )
        if not batch:
            return ChainReport(checked, unchained, None)
        for entry in batch:
            checked += 1
            last_id = entry.id
            if entry.entry_hash is None and checked == unchained + 1:
                unchained += 1  # still before the first chained entry
                continue
            if entry.prev_hash != previous or entry.entry_hash != entry_hash(entry):
                return ChainReport(checked, unchained, entry.id)
            previous = entry.entry_hash
        session.expunge_all()  # a long log is walked in constant memory


@dataclass(frozen=True)
class Filters:
    """What an admin narrows the log to; `since` inclusive, `until` exclusive."""

    actor_id: int | None = None
    action: AuditAction | None = None
    patient_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions = []
        if self.actor_id is not None:
            conditions.append(AuditLog.actor_id == self.actor_id)
        if self.action is not None:
            conditions.append(AuditLog.action == str(self.action))
        if self.patient_id is not None:
            conditions.append(AuditLog.patient_id == self.patient_id)
        if self.since is not None:
            conditions.append(AuditLog.created_at >= self.since)
        if self.until is not None:
            conditions.append(AuditLog.created_at < self.until)
        return conditions


@dataclass(frozen=True)
class Listed:
    """One entry with the names of its actor and patient (None when absent or erased)."""

    entry: AuditLog
    actor_name: str | None
    patient_name: str | None


async def search(
    session: AsyncSession, filters: Filters, *, offset: int, limit: int
) -> tuple[list[Listed], int]:
    """A page of matching entries, newest first, and how many match in all."""
    actor, patient = aliased(User), aliased(User)
    conditions = filters.conditions()
    query = (
        select(AuditLog, actor.name, patient.name)
        .outerjoin(actor, actor.id == AuditLog.actor_id)
        .outerjoin(patient, patient.id == AuditLog.patient_id)
        .where(*conditions)
        .order_by(AuditLog.id.desc())
        .offset(offset)
        .limit(limit)
    )
    rows = [Listed(entry, a, p) for entry, a, p in await session.execute(query)]
    total = (await session.execute(select(func.count(AuditLog.id)).where(*conditions))).scalar()
    return rows, int(total or 0)
