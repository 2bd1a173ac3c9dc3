"""Playing a scenario of the library (demo/scenarios.py) through POST /hooks/events/ with
the clock under control."""

import hashlib
import json

import time_machine

from conversations.models import Conversation
from demo.scenarios import (
    Scenario,
    scenario_conversation,
    scenario_play,
    scenario_policies_ensure,
    scenario_start,
)
from handoffs.sweep import handoffs_sweep
from tests.support.events import PATH, SECRET
from tests.support.signing import events_headers


def play(client, settings, scenario: Scenario, *, group: int = 1,
         again: str = "") -> tuple[Conversation, object]:
    """Play a scenario through the endpoint; `group` > 1 sends up to that many consecutive
    deliveries as one batch (at the last one's time), as a busy sender would; `again`
    prefixes every webhook-id (the same deliveries sent once more under new ids)."""
    settings.HANDOFF_AUDITOR = {
        **settings.HANDOFF_AUDITOR,
        "EVENTS_SECRETS": [SECRET],
        **scenario.settings,
    }
    scenario_policies_ensure(scenario)
    start = scenario_start(scenario)
    pending: list = []
    with time_machine.travel(start, tick=False) as clock:

        def post(events, delivery_id, at):
            clock.move_to(at)
            body = json.dumps(events).encode()
            response = client.post(
                PATH,
                body,
                content_type="application/json",
                headers=events_headers(body, SECRET, msg_id=again + delivery_id),
            )
            assert response.status_code == 200, response.content
            assert response.json()["status"] == "processed", response.json()

        def flush():
            if pending:
                events = [e for batch, _, _ in pending for e in batch]
                ids = "+".join(d for _, d, _ in pending)
                post(events, f"grouped-{hashlib.sha1(ids.encode()).hexdigest()}", pending[-1][2])
                pending.clear()

        def deliver(events, delivery_id, at):
            if group == 1:
                return post(events, delivery_id, at)
            pending.append((events, delivery_id, at))
            if len(pending) == group:
                flush()

        def sweep(at):
            flush()
            clock.move_to(at)
            handoffs_sweep()

        last = scenario_play(scenario, start=start, deliver=deliver, sweep=sweep)
        flush()
    return scenario_conversation(scenario), last
