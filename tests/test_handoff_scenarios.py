"""The scenario library, played through POST /hooks/events/ with the clock under control
(time-machine): each journey ends with the flags it must raise and none it must not, and
every flag carries its evidence."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit.handoff_scenarios import SCENARIOS, Scenario, scenario_play
from conversations.models import Conversation, ConversationKey, Flag
from handoffs.models import Handoff
from handoffs.services import handoffs_sweep
from tests.signing import events_headers
from tests.test_events_webhook import PATH, SECRET

pytestmark = pytest.mark.django_db

# A Monday; scenarios that care about the weekday say which one.
MONDAY = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)


def scenario_start(scenario: Scenario) -> datetime:
    if scenario.starts is None:
        return MONDAY
    weekday, hhmm = scenario.starts
    hour, minute = map(int, hhmm.split(":"))
    return (MONDAY + timedelta(days=weekday - 1)).replace(hour=hour, minute=minute)


def play(client, settings, scenario: Scenario) -> Conversation:
    settings.HANDOFF_AUDITOR = {
        **settings.HANDOFF_AUDITOR,
        "EVENTS_SECRETS": [SECRET],
        **scenario.settings,
    }
    start = scenario_start(scenario)
    with time_machine.travel(start, tick=False) as clock:

        def deliver(events, delivery_id, at):
            clock.move_to(at)
            body = json.dumps(events).encode()
            response = client.post(
                PATH,
                body,
                content_type="application/json",
                headers=events_headers(body, SECRET, msg_id=delivery_id),
            )
            assert response.status_code == 200, response.content
            assert response.json()["status"] == "processed", response.json()

        def sweep(at):
            clock.move_to(at)
            handoffs_sweep()

        scenario_play(scenario, start=start, deliver=deliver, sweep=sweep)
    return ConversationKey.objects.get(key=f"events:scn-{scenario.key}").conversation


def flag_details(flag: Flag) -> set[str]:
    return set(flag.evidence.get("reasons", [])) | set(flag.evidence.get("stalls", []))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.key)
def test_scenario(client, settings, scenario):
    conversation = play(client, settings, scenario)
    flags = list(Flag.objects.filter(conversation=conversation))
    for expect in scenario.must:
        matching = [
            f
            for f in flags
            if f.kind == expect.kind and (not expect.detail or expect.detail in flag_details(f))
        ]
        assert matching, (
            f"{scenario.key}: expected {expect}, got {[(f.kind, f.evidence) for f in flags]}"
        )
    for expect in scenario.must_not:
        matching = [
            f
            for f in flags
            if f.kind == expect.kind and (not expect.detail or expect.detail in flag_details(f))
        ]
        assert not matching, (
            f"{scenario.key}: unexpected {expect}: {[f.evidence for f in matching]}"
        )
    for flag in flags:
        assert flag.evidence, f"{flag.kind} without evidence"
    states = tuple(
        Handoff.objects.filter(conversation=conversation)
        .order_by("number")
        .values_list("state", flat=True)
    )
    assert states == scenario.states


def test_the_library_covers_every_channel_and_flag_kind():
    assert {s.channel for s in SCENARIOS} == {"whatsapp", "sms", "email", "web"}
    raised = {e.kind for s in SCENARIOS for e in s.must}
    assert raised == {"handoff_stalled", "handoff_dropped", "handoff_missed"}
    assert len({s.key for s in SCENARIOS}) == len(SCENARIOS)
