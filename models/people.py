"""Users (patients and staff), their profiles and the channel identities that point to them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import relationship

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

    id = Column(Integer, primary_key=True)
    name = Column(String(160))
    email = Column(String(254), unique=True)  # normalised lower-case; None for unknown patients
    phone_e164 = Column(String(20), index=True)
    cpf = Column(String(11), unique=True)  # 11 bare digits
    password_hash = Column(String(255))
    role = Column(enum_type(Role), nullable=False, default=Role.PATIENT)
    is_active = Column(Boolean, nullable=False, default=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    updated_at = Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)
    # Set when this patient was merged into another (kept, deactivated): replies addressed to
    # the old id, e.g. by the conversation that proved the merge, follow it.
    merged_into_id = Column(Integer, ForeignKey("users.id"))

    patient_profile = relationship("PatientProfile", uselist=False, back_populates="user")
    attendant_profile = relationship("AttendantProfile", uselist=False, back_populates="user")

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


class PatientProfile(Base):
    __tablename__ = "patient_profiles"

    user_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    preferred_channel = Column(String(24))
    # 55 + DDD + last 8 digits: matches WhatsApp ids that lack the mobile ninth digit.
    phone_match_key = Column(String(16), index=True)
    lgpd_consent_at = Column(UTCDateTime)
    reminders_opt_in = Column(Boolean, nullable=False, default=True)
    birth_date = Column(String(10))

    user = relationship("User", back_populates="patient_profile")


class AttendantProfile(Base):
    __tablename__ = "attendant_profiles"

    user_id = Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    presence = Column(enum_type(Presence), nullable=False, default=Presence.OFFLINE)
    capacity = Column(Integer, nullable=False, default=5)
    presence_changed_at = Column(UTCDateTime, nullable=False, default=utcnow)
    # Ties in auto-distribution go to whoever has waited longest since their last assignment.
    last_assigned_at = Column(UTCDateTime)
    # Refreshed while the attendant has the workspace open; a stale one means they left.
    last_seen_at = Column(UTCDateTime)
    # Bumped on every assignment so concurrent writers cannot both take the last free slot.
    version = Column(Integer, nullable=False, default=0)

    user = relationship("User", back_populates="attendant_profile")


class ChannelIdentity(Base):
    """How one patient is known on one channel (a phone on WhatsApp, a chat id on Telegram...)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id = Column(Integer, primary_key=True)
    channel = Column(String(24), nullable=False)
    external_id = Column(String(255), nullable=False)
    patient_id = Column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    display_name = Column(String(160))
    details = Column(JSON, nullable=False, default=dict)
    # E.164 phone the provider proved this person has (WhatsApp wa_id, Twilio's From, a
    # Telegram contact shared by its owner): where one-time codes may be sent. Never a phone
    # someone typed.
    verified_phone = Column(String(20), index=True)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    # Start of the provider's customer-service window (e.g. WhatsApp 24 h).
    last_inbound_at = Column(UTCDateTime)

    patient = relationship("User")


class ClaimStatus(StrEnum):
    PENDING = "pending"  # created by the assistant; the code is not sent yet
    SENT = "sent"
    LINKED = "linked"
    REFUSED = "refused"  # too many wrong codes
    EXPIRED = "expired"
    FAILED = "failed"  # the code could not be delivered


OPEN_CLAIM_STATUSES = (ClaimStatus.PENDING, ClaimStatus.SENT)


class IdentityClaim(Base):
    """A patient on a channel without a phone (Messenger, Instagram, the widget) typed the CPF
    or phone of another patient: a one-time code sent to that patient's verified channel
    must come back before the two are joined (messaging/verification.py)."""

    __tablename__ = "identity_claims"

    id = Column(Integer, primary_key=True)
    # Not named patient_id: merging patients must not move a claim to the other side.
    claimant_id = Column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    owner_id = Column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    destination_id = Column(
        Integer, ForeignKey("channel_identities.id", ondelete="CASCADE"), nullable=False
    )
    claimed = Column(String(8), nullable=False)  # "cpf" or "phone"; the value is not kept
    status = Column(enum_type(ClaimStatus), nullable=False, default=ClaimStatus.PENDING)
    code_hash = Column(String(64))  # HMAC-SHA256 of the code; the code itself is never stored
    wrong_attempts = Column(Integer, nullable=False, default=0)
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    expires_at = Column(UTCDateTime, nullable=False)


class LoginSession(Base):
    """A logged-in browser (staff or patient). Only the SHA-256 of the cookie token is stored."""

    __tablename__ = "login_sessions"

    token_hash = Column(String(64), primary_key=True)
    user_id = Column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at = Column(UTCDateTime, nullable=False, default=utcnow)
    expires_at = Column(UTCDateTime, nullable=False)
