"""The clinic's own facts (address, hours, convênios, prices...) that the bot answers from."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Integer, String

from models.base import Base, UTCDateTime, utcnow


class ClinicProfile(Base):
    """A single row the admin edits; FAQ answers are rendered from it without retraining."""

    __tablename__ = "clinic_profile"

    id = Column(Integer, primary_key=True)
    name = Column(String(160), nullable=False)
    data = Column(JSON, nullable=False, default=dict)
    updated_at = Column(UTCDateTime, nullable=False, default=utcnow, onupdate=utcnow)
