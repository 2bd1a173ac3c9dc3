"""The declared transition table, the diagram that documents it, and business time."""

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from handoffs.business_time import Calendar, CalendarError, business_add, business_seconds
from handoffs.machine import OPENING, ORDER, TERMINAL, TRANSITIONS, State, Trigger, next_state

DOC = Path(__file__).resolve().parents[2] / "docs" / "handoffs.md"
MADRID = ZoneInfo("Europe/Madrid")
WEEKDAYS_9_18 = Calendar.from_dict({
    "timezone": "Europe/Madrid",
    "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-08"],
})


def diagram_edges() -> set[tuple[str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("```mermaid", 1)[1].split("```", 1)[0]
    edges = set()
    for line in block.splitlines():
        found = re.fullmatch(r"\s*(\[\*\]|\w+) --> (\[\*\]|\w+)(?: : (\w+))?\s*", line)
        if found:
            edges.add((found[1], found[2], found[3] or ""))
    return edges


def test_the_diagram_in_the_docs_is_the_transition_table():
    table = {(str(a), str(b), str(t)) for (a, t), b in TRANSITIONS.items()}
    table |= {("[*]", str(s), str(t)) for t, s in OPENING.items()}
    table |= {(str(s), "[*]", "") for s in TERMINAL}
    assert diagram_edges() == table


def test_no_transition_moves_backwards_or_leaves_an_end():
    for (state, _), target in TRANSITIONS.items():
        assert state not in TERMINAL
        assert ORDER[target] >= ORDER[state]
    for state in TERMINAL:
        for trigger in Trigger:
            target, why = next_state(state, trigger)
            assert target is None and "already ended" in why


@pytest.mark.parametrize(("state", "trigger", "expected"), [
    (State.REQUESTED, Trigger.ENGAGE, State.ENGAGED),  # skipped queue and assignment
    (State.QUEUED, Trigger.CLOSE, State.ABANDONED),
    (State.ENGAGED, Trigger.CLOSE, State.RESOLVED),
    (State.ASSIGNED, Trigger.ASSIGN, State.ASSIGNED),  # reassignment
    (State.ASSIGNED, Trigger.QUEUE, None),
    (State.ENGAGED, Trigger.REQUEST, None),
    (State.QUEUED, Trigger.QUEUE, None),
])
def test_next_state(state, trigger, expected):
    target, why = next_state(state, trigger)
    assert target == expected
    assert bool(why) == (expected is None)


def madrid(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)


def test_a_weekend_request_is_due_on_monday_morning():
    saturday = madrid(2026, 11, 21, 11, 0)
    assert business_add(saturday, 3600, WEEKDAYS_9_18) == madrid(2026, 11, 23, 10, 0)
    # Friday 17:30 + 1 h: half an hour on Friday, half on Monday.
    assert business_add(madrid(2026, 11, 20, 17, 30), 3600, WEEKDAYS_9_18) == madrid(
        2026, 11, 23, 9, 30)


def test_holidays_are_skipped():
    monday = madrid(2026, 12, 7, 17, 30)  # Tuesday the 8th is a holiday
    assert business_add(monday, 3600, WEEKDAYS_9_18) == madrid(2026, 12, 9, 9, 30)
    spain = Calendar.from_dict({**{"timezone": "Europe/Madrid", "holidays_country": "ES"},
                                "weekly": {"thu": [["09:00", "18:00"]],
                                           "fri": [["09:00", "18:00"]]}})
    # 1 January 2026 is a Thursday and a public holiday in Spain.
    assert business_add(madrid(2026, 1, 1, 8, 0), 60, spain) == madrid(2026, 1, 2, 9, 1)


def test_local_opening_hours_survive_daylight_saving():
    # Spain moves to summer time on Sunday 29 March 2026: Monday opens at 07:00 UTC.
    due = business_add(madrid(2026, 3, 27, 17, 30), 3600, WEEKDAYS_9_18)
    assert due == madrid(2026, 3, 30, 9, 30)
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 7, 30, tzinfo=UTC)


def test_business_seconds_count_only_opening_hours():
    assert business_seconds(madrid(2026, 11, 20, 17, 0), madrid(2026, 11, 23, 10, 0),
                            WEEKDAYS_9_18) == 7200
    assert business_seconds(madrid(2026, 11, 21, 0, 0), madrid(2026, 11, 22, 23, 0),
                            WEEKDAYS_9_18) == 0
    start = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert business_seconds(start, datetime(2026, 11, 22, 10, 0, tzinfo=UTC), None) == 86400


@pytest.mark.parametrize("bad", [
    {"timezone": "Mars/Olympus", "weekly": {"mon": [["09:00", "18:00"]]}},
    {"weekly": {"mon": [["18:00", "09:00"]]}},
    {"weekly": {"funday": [["09:00", "18:00"]]}},
    {"weekly": {}},
    {"weekly": {"mon": [["9am", "6pm"]]}},
])
def test_a_broken_calendar_is_refused_with_a_reason(bad):
    with pytest.raises(CalendarError):
        Calendar.from_dict(bad).validate()
