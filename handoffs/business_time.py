"""Business time: SLA waits that count only the hours humans work.

A `Calendar` is a timezone, weekly opening hours and holidays (explicit dates and,
optionally, a country's public holidays from the `holidays` package, which ships its
data). `business_add` finds when a wait of N business seconds started at some instant
ends; `business_seconds` measures the business time between two instants. Both walk the
local days between the two instants, so a weekend or a holiday costs one step each, and
daylight-saving changes are those of the zone (local opening hours stay local).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with no opening hours in this many days is misconfigured; stop looking.
MAX_DAYS = 800


class CalendarError(ValueError):
    """The calendar cannot be used (unknown timezone, bad hours, never open)."""


def _parse_time(value: str) -> time:
    if value in ("24:00", "24:00:00"):
        return time.max
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise CalendarError(f"bad time {value!r}: use HH:MM") from exc


@dataclass(frozen=True)
class Calendar:
    """Opening hours: `weekly` maps "mon".."sun" to [["09:00", "18:00"], ...] in `timezone`."""

    timezone: str = "UTC"
    weekly: dict[str, list[list[str]]] = field(default_factory=dict)
    holidays: tuple[str, ...] = ()
    holidays_country: str = ""
    holidays_subdivision: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Calendar":
        return cls(
            timezone=data.get("timezone", "UTC"),
            weekly={k.lower()[:3]: v for k, v in (data.get("weekly") or {}).items()},
            holidays=tuple(data.get("holidays") or ()),
            holidays_country=data.get("holidays_country", ""),
            holidays_subdivision=data.get("holidays_subdivision", ""),
        )

    @cached_property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except Exception as exc:  # noqa: BLE001 - ZoneInfo raises several kinds
            raise CalendarError(f"unknown timezone {self.timezone!r}") from exc

    @cached_property
    def _hours(self) -> dict[int, list[tuple[time, time]]]:
        hours: dict[int, list[tuple[time, time]]] = {}
        for name, spans in self.weekly.items():
            if name not in WEEKDAYS:
                raise CalendarError(f"unknown weekday {name!r}: use mon..sun")
            parsed = []
            for span in spans:
                start, end = _parse_time(span[0]), _parse_time(span[1])
                if end <= start:
                    raise CalendarError(f"{name}: {span[0]}-{span[1]} ends before it starts")
                parsed.append((start, end))
            hours[WEEKDAYS.index(name)] = sorted(parsed)
        if not any(hours.values()):
            raise CalendarError("the calendar has no opening hours")
        return hours

    @cached_property
    def _closed_dates(self) -> frozenset[date]:
        return frozenset(date.fromisoformat(d) for d in self.holidays)

    @cached_property
    def _country(self) -> holidays_lib.HolidayBase | None:
        if not self.holidays_country:
            return None
        try:
            return holidays_lib.country_holidays(
                self.holidays_country, subdiv=self.holidays_subdivision or None
            )
        except NotImplementedError as exc:
            raise CalendarError(f"unknown holiday country {self.holidays_country!r}") from exc

    def is_holiday(self, day: date) -> bool:
        return day in self._closed_dates or (self._country is not None and day in self._country)

    def validate(self) -> None:
        self.zone, self._hours, self._closed_dates, self._country  # noqa: B018

    def open_intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening intervals (aware, in UTC) from the local day of `start` onwards."""
        zone = self.zone
        day = start.astimezone(zone).date()
        for _ in range(MAX_DAYS):
            if not self.is_holiday(day):
                for open_at, close_at in self._hours.get(day.weekday(), ()):
                    begin = datetime.combine(day, open_at, tzinfo=zone)
                    end = (
                        datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                        if close_at == time.max
                        else datetime.combine(day, close_at, tzinfo=zone)
                    )
                    yield begin, end
            day += timedelta(days=1)
        raise CalendarError(f"no opening hours within {MAX_DAYS} days of {start:%Y-%m-%d}")


def business_add(start: datetime, seconds: float, calendar: Calendar | None) -> datetime:
    """When a wait of `seconds` of business time that began at `start` runs out.
    Without a calendar every second counts."""
    if calendar is None:
        return start + timedelta(seconds=seconds)
    remaining = timedelta(seconds=seconds)
    for begin, end in calendar.open_intervals(start):
        if end <= start:
            continue
        begin = max(begin, start)
        if begin + remaining <= end:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable: open_intervals raises first")  # pragma: no cover


def business_seconds(start: datetime, end: datetime, calendar: Calendar | None) -> float:
    """Business time between two instants, in seconds (0 when end is not after start)."""
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds()
    total = timedelta(0)
    for begin, close in calendar.open_intervals(start):
        if begin >= end:
            break
        lo, hi = max(begin, start), min(close, end)
        if hi > lo:
            total += hi - lo
    return total.total_seconds()
