"""Arrival order changes nothing: every scenario of the library, its deliveries sent in a
shuffled order by four senders at once, ends with the same handoffs, waits and flags as
the same deliveries sent one after another in time order.

Both runs deliver everything first and sweep once at the end (the scenarios' own sweep
steps are moments of the in-order story, which a shuffled arrival has no equivalent of).
Deliveries that arrive while another sender's batch holds their partition are applied by
the drain that follows (`raw_events_apply`), as the beat safety net would."""

import json
import random
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from conversations.applier import raw_events_apply
from conversations.models import Conversation, Flag, RawEvent
from demo.scenario_runner import _flag_details
from demo.scenarios import (
    SCENARIOS,
    scenario_conversation,
    scenario_play,
    scenario_policies_ensure,
    scenario_start,
)
from handoffs.models import Handoff, Wait
from handoffs.sweep import handoffs_sweep
from tests.support.events import PATH, SECRET
from tests.support.signing import events_headers


def _senders() -> int:
    """Four senders at once on PostgreSQL; SQLite takes one writer at a time, so there the
    shuffled deliveries come from one sender."""
    return 4 if connection.vendor == "postgresql" else 1


def _deliveries(scenario) -> tuple[list[tuple[list, str]], object]:
    """The scenario's deliveries (events, webhook id), in time order, and its last instant."""
    deliveries: list[tuple[list, str]] = []
    start = scenario_start(scenario)
    last = scenario_play(
        scenario, start=start,
        deliver=lambda events, delivery_id, at: deliveries.append((events, delivery_id)),
        sweep=lambda at: None,
    )
    return deliveries, last


def _post(client: Client, events: list, delivery_id: str) -> None:
    body = json.dumps(events).encode()
    response = client.post(PATH, body, content_type="application/json",
                           headers=events_headers(body, SECRET, msg_id=delivery_id))
    assert response.status_code == 200, response.content


def _outcome(conversation: Conversation) -> dict[str, list]:
    """What ingest and the machine made of the scenario, in terms that do not depend on the
    order rows were written in (no ids, no wall-clock times of the apply)."""
    handoffs = {h.pk: h.number for h in Handoff.objects.filter(conversation=conversation)}
    return {
        # Every message in its thread: one that arrives after a close it predates still
        # belongs to the closed conversation.
        "threads": sorted(
            (c.status, c.closed_at, sorted(c.messages.values_list("provider_message_id",
                                                                  flat=True)))
            for c in Conversation.objects.all()
        ),
        "handoffs": list(
            Handoff.objects.filter(conversation=conversation).order_by("number").values_list(
                "number", "state", "requested_at", "queued_at", "assigned_at", "engaged_at",
                "ended_at", "time_to_human", "dropped_reasons", "stalled_count",
                "ai_replies_after_request",
            )
        ),
        "waits": sorted(
            (handoffs[w.handoff_id], w.kind, w.started_at, w.ended_at, w.met)
            for w in Wait.objects.filter(handoff__conversation=conversation)
        ),
        "flags": sorted(
            (f.kind, f.status, f.subject_type, handoffs.get(f.subject_id) if
             f.subject_type == "handoff" else None, sorted(_flag_details(f)))
            # Every finding: the handoff machine's and the answer-quality checks' (a reply
            # overtaken by a late message is judged again, docs/answer-quality.md).
            for f in Flag.objects.filter(conversation=conversation)
        ),
    }


def _reset() -> None:
    Conversation.objects.all().delete()
    RawEvent.objects.all().delete()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.key)
def test_shuffled_parallel_deliveries_end_as_in_order_ones(settings, scenario):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET],
                                **scenario.settings}
    scenario_policies_ensure(scenario)
    deliveries, last = _deliveries(scenario)
    start = scenario_start(scenario)

    # In time order, each delivery at its own moment, one sweep at the end.
    with time_machine.travel(start, tick=False) as clock:
        client = Client()
        scenario_play(
            scenario, start=start,
            deliver=lambda events, delivery_id, at: (clock.move_to(at),
                                                     _post(client, events, delivery_id)),
            sweep=lambda at: None,
        )
        clock.move_to(last + timedelta(seconds=1))
        raw_events_apply()
        handoffs_sweep()
    expected = _outcome(scenario_conversation(scenario))
    _reset()

    # Shuffled, four senders at once, all after the fact; then the drain and one sweep.
    order = list(deliveries)
    random.Random(scenario.key).shuffle(order)
    errors: list[BaseException] = []

    def sender(share: list[tuple[list, str]]) -> None:
        try:
            client = Client()
            for events, delivery_id in share:
                _post(client, events, delivery_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the test's thread
            errors.append(exc)
        finally:
            connection.close()

    with time_machine.travel(last + timedelta(seconds=1), tick=False):
        senders = _senders()
        threads = [threading.Thread(target=sender, args=(order[i::senders],))
                   for i in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        raw_events_apply()
        handoffs_sweep()
    assert RawEvent.objects.filter(status="pending").count() == 0
    assert _outcome(scenario_conversation(scenario)) == expected
