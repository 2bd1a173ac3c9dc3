"""Concurrent events for one handoff, over real HTTP against PostgreSQL: they are applied
one after the other (the conversation's row lock), whatever order they race in, so the
handoff ends in the same place, with one log entry per event and nothing lost."""

import json
import random
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from conversations.models import ConversationKey
from handoffs.models import Handoff, HandoffTransition
from tests.support.concurrency import all_at_once, overlapping
from tests.support.events import PATH, SECRET
from tests.support.signing import events_headers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def events_secret(settings, twilio_tokens):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}


def send(base_url: str, events: list[dict], delivery_id: str):
    body = json.dumps(events).encode()
    headers = {"Content-Type": "application/json",
               **events_headers(body, SECRET, msg_id=delivery_id)}
    return lambda: requests.post(base_url + PATH, data=body, headers=headers, timeout=60)


def test_racing_handoff_events_are_serialized(live_server):
    overlaps = []
    for round_ in range(3):
        key = f"race-{round_}-{random.randrange(10**6)}"
        ref = {"channel": "web", "external_id": key, "business_address": "widget:race",
               "customer_address": f"visitor-{key}"}
        t0 = timezone.now() - timedelta(minutes=5)

        def at(seconds: float, t0=t0) -> str:
            return (t0 + timedelta(seconds=seconds)).isoformat()

        first = send(live_server.url, [{"type": "message.created", "timestamp": at(0), "data": {
            "channel": "web", "direction": "inbound", "conversation": ref, "body": "help",
            "author": {"kind": "customer", "id": ref["customer_address"]},
            "provider_message_id": f"{key}-m0"}}], f"{key}-d0")()
        assert first.status_code == 200, first.text
        events = [
            *[{"type": "handoff.requested", "id": f"{key}-req{i}", "timestamp": at(1 + i),
               "data": {"conversation": ref, "requested_by": "ai"}} for i in range(3)],
            {"type": "handoff.queued", "id": f"{key}-q", "timestamp": at(10),
             "data": {"conversation": ref, "queue": "tier1"}},
            {"type": "handoff.assigned", "id": f"{key}-a", "timestamp": at(20),
             "data": {"conversation": ref, "agent": {"id": "nora", "name": "Nora"}}},
            {"type": "message.created", "timestamp": at(30), "data": {
                "channel": "web", "direction": "outbound", "conversation": ref,
                "body": "Hi, Nora here", "author": {"kind": "human", "id": "nora"},
                "provider_message_id": f"{key}-m1"}},
            {"type": "message.created", "timestamp": at(40), "data": {
                "channel": "web", "direction": "inbound", "conversation": ref,
                "body": "thanks", "author": {"kind": "customer", "id": ref["customer_address"]},
                "provider_message_id": f"{key}-m2"}},
        ]
        random.shuffle(events)
        calls = [send(live_server.url, [e], f"{key}-d{i + 1}") for i, e in enumerate(events)]
        timings = all_at_once(calls)
        overlaps.append(overlapping(timings))
        assert [t.result.status_code for t in timings] == [200] * len(events), [
            t.result.text for t in timings]

        conversation = ConversationKey.objects.get(key=f"events:{key}").conversation
        handoff = Handoff.objects.get(conversation=conversation)
        assert handoff.state == "engaged"
        assert handoff.agent_id == "nora"
        assert handoff.requested_at == t0 + timedelta(seconds=1)  # the earliest request
        assert handoff.engaged_at == t0 + timedelta(seconds=30)
        assert handoff.time_to_human == 29
        # Every handoff event and the engaging reply is logged once, applied or not.
        log = HandoffTransition.objects.filter(handoff=handoff)
        assert log.count() == 6
        assert log.filter(applied=True, to_state="engaged").count() == 1
        # The customer's message after the reply opened one reply wait, still open, even
        # when it arrived before the handoff did.
        (reply,) = handoff.waits.filter(kind="reply")
        assert reply.started_at == t0 + timedelta(seconds=40) and reply.ended_at is None
    # The deliveries really raced in every round.
    assert min(overlaps) >= 3, overlaps
