"""The scenario library, played through POST /hooks/events/ with the clock under control
(time-machine): each journey ends with the flags it must raise and none it must not, its
handoff states and checks, every flag carries its evidence, and a later sweep adds
nothing (the story is complete)."""

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from conversations.applier import raw_events_reprocess
from conversations.models import Flag, RawEvent
from demo.scenarios import (
    KINDS,
    SCENARIOS,
    Check,
    Expect,
    scenario_customer,
    scenario_verify,
)
from handoffs.models import Handoff, HandoffTransition, HumanAsk, Wait
from handoffs.sweep import handoffs_sweep
from tests.support.scenarios import play


def derived_rows() -> dict[str, list[tuple]]:
    """What the machine wrote, field by field."""
    return {
        model.__name__: list(model.objects.order_by("pk").values_list())
        for model in (Handoff, HandoffTransition, Wait, HumanAsk, Flag)
    }


@pytest.mark.django_db
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.key)
def test_scenario(client, settings, scenario):
    conversation, last = play(client, settings, scenario)
    assert scenario_verify(scenario, conversation) == []

    # Settled: weeks later the sweep finds nothing more to say about it.
    flags = list(Flag.objects.values_list("pk", "status", "evidence").order_by("pk"))
    later = handoffs_sweep(now=last + timedelta(days=40))
    assert (later.stalled, later.window_expired) == (0, 0)
    assert list(Flag.objects.values_list("pk", "status", "evidence").order_by("pk")) == flags

    # Raw events are the source of truth: applying them all again changes nothing.
    rows = derived_rows()
    raw_events_reprocess(raw_events=RawEvent.objects.order_by("received_at", "pk"))
    assert derived_rows() == rows
    assert scenario_verify(scenario, conversation) == []


def test_the_library_covers_every_channel_and_flag_kind():
    channels = Counter(s.channel for s in SCENARIOS)
    assert set(channels) == {"whatsapp", "sms", "email", "web"}
    assert min(channels.values()) >= 5 and len(SCENARIOS) >= 32
    raised = {e.kind for s in SCENARIOS for e in s.must}
    assert raised == set(KINDS)
    assert {e.detail for s in SCENARIOS for e in s.must} >= {
        "requested",
        "queued",
        "assigned",
        "reply",
        "closed_before_human",
        "resolved_before_human",
        "whatsapp_window_expired",
        "ai_kept_answering",
    }
    assert len({s.key for s in SCENARIOS}) == len(SCENARIOS)
    # Two scenarios on one customer's thread would share a conversation.
    threads = {(s.channel, scenario_customer(s)) for s in SCENARIOS}
    assert len(threads) == len(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.key)
def test_scenarios_say_what_they_promise_for_every_flag_kind(scenario):
    # So the demo can count what the library promises: each kind is either raised or ruled
    # out as a whole.
    for kind in KINDS:
        assert any(e.kind == kind for e in scenario.must) or any(
            e.kind == kind and not e.detail for e in scenario.must_not
        ), f"{scenario.key} says nothing about {kind}"
    # A calendar is about local hours: such a scenario must say when it starts.
    assert scenario.starts is not None or "SLA_CALENDAR" not in scenario.settings
    steps = [s.at for s in scenario.steps]
    assert steps == sorted(steps), "steps are listed in delivery order"


@pytest.mark.django_db
def test_verify_reports_every_promise_that_does_not_hold(client, settings):
    scenario = next(s for s in SCENARIOS if s.key == "sms-late-assigned")
    conversation, _ = play(client, settings, scenario)
    wrong = replace(
        scenario,
        must=(Expect("handoff_missed"), Expect("handoff_stalled", "queued")),
        must_not=(Expect("handoff_stalled", "assigned"),),
        states=("engaged",),
        checks=(
            Check("flag:handoff_stalled", "status", "open"),
            Check("flag:handoff_stalled", "note", "nobody", op="contains"),
            Check("handoff:2", "state", "resolved"),
            Check("wait:1:reply", "met", True),
            Check("message:99", "status", "read"),
            Check("handoff:1", "no_such_field", 1),
        ),
    )
    problems = scenario_verify(wrong, conversation)
    assert len(problems) == 2 + 1 + 1 + 6, problems
