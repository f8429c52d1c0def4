"""Reporting periods: a year (``2026``), a quarter (``2026-Q3``) or a month (``2026-07``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

PERIOD_HELP = "a year (2026), a quarter (2026-Q3) or a month (2026-07)"


@dataclass(frozen=True)
class Period:
    label: str
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC

    def weeks(self) -> list[date]:
        """The Mondays starting each week that overlaps the period, in order."""
        first = self.start.date() - timedelta(days=self.start.weekday())
        last = (self.end - timedelta(microseconds=1)).date()
        out = []
        day = first
        while day <= last:
            out.append(day)
            day += timedelta(days=7)
        return out

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def parse_period(text: str) -> Period:
    """Parse ``text`` or raise ``ValueError`` saying what is expected."""
    value = (text or "").strip().upper()
    if m := _YEAR.match(value):
        year = int(m.group(1))
        return Period(value, _utc(year, 1), _utc(year + 1, 1))
    if m := _QUARTER.match(value):
        year, quarter = int(m.group(1)), int(m.group(2))
        first_month = 3 * (quarter - 1) + 1
        end = _utc(year + 1, 1) if quarter == 4 else _utc(year, first_month + 3)
        return Period(value, _utc(year, first_month), end)
    if m := _MONTH.match(value):
        year, month = int(m.group(1)), int(m.group(2))
        end = _utc(year + 1, 1) if month == 12 else _utc(year, month + 1)
        return Period(value, _utc(year, month), end)
    raise ValueError(f"period {text!r} is not {PERIOD_HELP}")


def current_quarter(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now.year}-Q{(now.month - 1) // 3 + 1}"


def _utc(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)
