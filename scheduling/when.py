"""Dates and times as Brazilian patients write them ("amanhã às 14h", "sexta de manhã")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TimeWindow:
    """A span of clinic-local time (aware datetimes in America/Sao_Paulo); an exact time
    has start == end."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeWindow needs timezone-aware datetimes")
        if self.end < self.start:
            raise ValueError("TimeWindow ends before it starts")

    @property
    def is_exact(self) -> bool:
        return self.start == self.end
