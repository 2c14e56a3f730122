"""Users (patients and staff), their profiles and the channel identities that point to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, StrEnum, UTCDateTime, enum_type, utcnow


class Role(StrEnum):
    PATIENT = "patient"
    ATTENDANT = "attendant"
    MANAGER = "manager"
    ADMIN = "admin"


STAFF_ROLES = (Role.ATTENDANT, Role.MANAGER, Role.ADMIN)


class Presence(StrEnum):
    ONLINE = "online"
    PAUSED = "pausa"
    OFFLINE = "offline"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(160))
    # Normalised lower-case; None for unknown patients.
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    cpf: Mapped[str | None] = mapped_column(String(11), unique=True)  # 11 bare digits
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # When the owner of `email` proved it by a link sent there; until then the e-mail links
    # nothing (inbound mail, login) — typing an address proves nothing.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    role: Mapped[Role] = mapped_column(enum_type(Role), default=Role.PATIENT)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Set when this patient was merged into another (kept, deactivated): replies addressed to
    # the old id, e.g. by the conversation that proved the merge, follow it.
    merged_into_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    # Set when the patient's personal data was erased (on request or past the retention
    # period): the row stays only as the anonymised link of the appointments kept by law.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient_profile: Mapped[PatientProfile | None] = relationship(back_populates="user")
    attendant_profile: Mapped[AttendantProfile | None] = relationship(back_populates="user")

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class PatientProfile(Base):
    __tablename__ = "patient_profiles"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    preferred_channel: Mapped[str | None] = mapped_column(String(24))
    # 55 + DDD + last 8 digits: matches WhatsApp ids that lack the mobile ninth digit.
    phone_match_key: Mapped[str | None] = mapped_column(String(16), index=True)
    lgpd_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders_opt_in: Mapped[bool] = mapped_column(Boolean, default=True)
    birth_date: Mapped[str | None] = mapped_column(String(10))
    # What the reception wrote down about the patient (staff only; erased with the patient).
    notes: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(back_populates="patient_profile")


class Consent(Base):
    """One consent a patient gave for one purpose, to one version of its text, on one
    channel; withdrawn (never deleted) when the patient takes it back. Kept after an
    erasure: it is the clinic's proof that the processing was lawful (LGPD art. 8 §2)."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_patient_purpose", "patient_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(24))
    text_version: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(24))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_channel: Mapped[str | None] = mapped_column(String(24))


class PatientMerge(Base):
    """A manager joined two records of one person: everything of `source_id` moved to
    `target_id`, and the source was deactivated (`User.merged_into_id`). Not named
    patient_id: a later merge must not move this record to the other side."""

    __tablename__ = "patient_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    target_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id"))
    # What moved (counts per table) and the conflicts settled (ids and flags only).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttendantProfile(Base):
    __tablename__ = "attendant_profiles"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    presence: Mapped[Presence] = mapped_column(enum_type(Presence), default=Presence.OFFLINE)
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    presence_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Ties in auto-distribution go to whoever has waited longest since their last assignment.
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Refreshed while the attendant has the workspace open; a stale one means they left.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on every assignment so concurrent writers cannot both take the last free slot.
    version: Mapped[int] = mapped_column(Integer, default=0)

    user: Mapped[User] = relationship(back_populates="attendant_profile")


class ChannelIdentity(Base):
    """How one patient is known on one channel (a phone on WhatsApp, a chat id on Telegram...)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(24))
    external_id: Mapped[str] = mapped_column(String(255))
    patient_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    display_name: Mapped[str | None] = mapped_column(String(160))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # E.164 phone the provider proved this person has (WhatsApp wa_id, Twilio's From, a
    # Telegram contact shared by its owner): where one-time codes may be sent. Never a phone
    # someone typed.
    verified_phone: Mapped[str | None] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Start of the provider's customer-service window (e.g. WhatsApp 24 h).
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[User] = relationship()


class ClaimStatus(StrEnum):
    PENDING = "pending"  # created by the assistant; the code is not sent yet
    SENT = "sent"
    LINKED = "linked"
    REFUSED = "refused"  # too many wrong codes
    EXPIRED = "expired"
    FAILED = "failed"  # the code could not be delivered
    SKIPPED = "skipped"  # the claimant said "pular": the dialogue went on without the code


OPEN_CLAIM_STATUSES = (ClaimStatus.PENDING, ClaimStatus.SENT)


class ClaimKind(StrEnum):
    CPF = "cpf"  # a CPF typed in a conversation
    PHONE = "phone"  # a phone typed in a conversation
    OWN_PHONE = "own"  # the claimant's own typed phone, to be proved (portal)


class IdentityClaim(Base):
    """A patient on a channel without a phone (Messenger, Instagram, the widget) typed a CPF
    or phone: a one-time code sent to the verified channel of the patient who has it must
    come back before the two are joined. Typed data nobody has (or whose owner cannot be
    sent a code) gets a decoy claim, with no owner or destination and no code, so that the
    conversation cannot tell the two apart. A patient also proves their own typed phone with
    a code sent to it (messaging/verification.py)."""

    __tablename__ = "identity_claims"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Not named patient_id: merging patients must not move a claim to the other side.
    claimant_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Both None on a decoy claim.
    owner_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    destination_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("channel_identities.id", ondelete="CASCADE")
    )
    claimed: Mapped[str] = mapped_column(String(8))  # a ClaimKind; the value is not kept
    status: Mapped[ClaimStatus] = mapped_column(enum_type(ClaimStatus), default=ClaimStatus.PENDING)
    # HMAC-SHA256 of the code; the code itself is never stored.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    wrong_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginSession(Base):
    """A logged-in browser (staff or patient). Only the SHA-256 of the cookie token is stored."""

    __tablename__ = "login_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The last request made with it: an idle session ends (SESSION_IDLE_MINUTES).
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose, not a secret)


class AccountToken(Base):
    """A single-use link sent by e-mail (verify the address, reset the password). Only the
    SHA-256 of the token is stored; `used_at` is set when it is spent."""

    __tablename__ = "account_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[TokenPurpose] = mapped_column(enum_type(TokenPurpose))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SecondFactorPolicy(StrEnum):
    """Which staff must log in with a second factor (the admin's choice)."""

    MANAGERS = "managers"  # managers and admins (the default)
    ALL_STAFF = "all_staff"
    NOBODY = "nobody"


class SecurityPolicy(Base):
    """The clinic's account-security choices, one row the admin edits (absent: defaults)."""

    __tablename__ = "security_policy"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    second_factor: Mapped[SecondFactorPolicy] = mapped_column(
        enum_type(SecondFactorPolicy), default=SecondFactorPolicy.MANAGERS
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SecondFactor(Base):
    """A staff member's TOTP key (RFC 6238). Pending until a first code confirms it
    (`confirmed_at`); `last_step` is the time step of the last code accepted, so no code is
    ever accepted twice (RFC 6238 §5.2)."""

    __tablename__ = "second_factors"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The base32 key sealed with AES-GCM (accounts.second_factor.seal_secret).
    secret: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_step: Mapped[int | None] = mapped_column(Integer)


class RecoveryCode(Base):
    """A single-use code that stands in for the TOTP code (a lost phone). Only its SHA-256
    is stored; `used_at` is set when it is spent."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
