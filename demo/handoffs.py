"""The handoff scenario library as demo data: every scenario played through the raw-event
path (`scenario_ingest`, no HTTP), spread over the last two weeks so each ends in the
recent past, with the handoff sweep run at each sweep step.

A second run adds nothing: the delivery ids are the raw events' dedupe keys, and every
scenario ends settled (tests/handoffs/test_handoff_scenarios.py checks it), so sweeping again at
the same or later instants finds nothing new about it.

Scenarios with a weekday (`starts`) land on the same weekday and local time in a recent
week (local to their calendar, so opening hours mean the same), in a week without a
daylight-saving change during the scenario; their calendar's holidays move with them.
Their settings overrides apply while they are played, then the settings are put back.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from conversations.conf import auditor_settings
from conversations.models import RawEvent
from handoffs.sweep import handoffs_sweep

from .scenarios import (
    SCENARIOS,
    Payload,
    Scenario,
    scenario_ingest,
    scenario_play,
    scenario_policies_ensure,
    scenario_start,
)

# Every scenario ends at least this long before now (so nothing of it is in the future),
# and starts within this many days (the demo shows the last two weeks).
MARGIN = timedelta(hours=1)
SPREAD_DAYS = 14


def _zone(scenario: Scenario) -> ZoneInfo:
    calendar = scenario.settings.get("SLA_CALENDAR") or {}
    return ZoneInfo(calendar.get("timezone", "UTC"))


def demo_start(scenario: Scenario, index: int, now: datetime) -> datetime:
    """When the index-th scenario starts in the demo: spread over the last two weeks,
    ending by now - MARGIN; a scenario with a weekday keeps its weekday and local time."""
    length = timedelta(minutes=scenario.minutes)
    latest = now - MARGIN - length
    if scenario.starts is None:
        spread = timedelta(days=SPREAD_DAYS) * (1 - index / max(len(SCENARIOS), 1))
        return min(now - spread, latest)
    zone = _zone(scenario)
    local = scenario_start(scenario).astimezone(zone)
    day = latest.astimezone(zone).date()
    day -= timedelta(days=(day.weekday() - local.weekday()) % 7)
    for _ in range(SPREAD_DAYS // 7 + 3):
        start = datetime.combine(day, time(local.hour, local.minute), tzinfo=zone)
        end = start + length
        # A clock change inside the scenario would move its business hours by an hour.
        if start <= latest and start.utcoffset() == end.astimezone(zone).utcoffset():
            return start.astimezone(UTC)
        day -= timedelta(days=7)
    raise ValueError(f"no week for {scenario.key} before {now}")


def _settings_moved(scenario: Scenario, days: int) -> Payload:
    """The scenario's overrides with its calendar's holidays moved by `days`."""
    overrides = dict(scenario.settings)
    calendar = overrides.get("SLA_CALENDAR")
    if calendar and calendar.get("holidays"):
        holidays = [
            (date.fromisoformat(d) + timedelta(days=days)).isoformat() for d in calendar["holidays"]
        ]
        overrides["SLA_CALENDAR"] = {**calendar, "holidays": holidays}
    return overrides


@contextmanager
def _overridden(overrides: Payload) -> Iterator[None]:
    """HANDOFF_AUDITOR with the scenario's overrides while it is played."""
    if not overrides:
        yield
        return
    missing = object()
    saved: Any = getattr(settings, "HANDOFF_AUDITOR", missing)
    settings.HANDOFF_AUDITOR = {**(saved if saved is not missing else {}), **overrides}
    auditor_settings.reload()
    try:
        yield
    finally:
        if saved is missing:
            del settings.HANDOFF_AUDITOR
        else:
            settings.HANDOFF_AUDITOR = saved
        auditor_settings.reload()


def demo_handoff_scenarios_seed(*, now: datetime | None = None) -> tuple[int, list[str]]:
    """Play every scenario; returns (raw events added, dedupe keys that failed)."""
    now = now or timezone.now()
    added, failed = 0, []

    def deliver(events: list[Payload], delivery_id: str, at: datetime) -> None:
        nonlocal added
        result = scenario_ingest(events, delivery_id, at)
        added += not result.duplicate
        if result.raw_event.status == RawEvent.Status.FAILED:
            failed.append(result.raw_event.dedupe_key)

    def sweep(at: datetime) -> None:
        handoffs_sweep(now=at)

    for index, scenario in enumerate(SCENARIOS):
        start = demo_start(scenario, index, now)
        zone = _zone(scenario)
        moved = (
            start.astimezone(zone).date() - scenario_start(scenario).astimezone(zone).date()
        ).days
        with _overridden(_settings_moved(scenario, moved)):
            scenario_policies_ensure(scenario)
            scenario_play(scenario, start=start, deliver=deliver, sweep=sweep)
    return added, failed
