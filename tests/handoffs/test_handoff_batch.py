"""Handoffs a human is already on are applied set-based on PostgreSQL batches
(handoffs/batch.py); the per-row path is the reference. The same deliveries through both
must leave the same handoffs, transitions, waits, asks and flags: on the scenario library,
on random bench-like deliveries (out of order, duplicated, re-sent), and when concurrent
batches touch the same conversation."""

import json
import random
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.applier import raw_event_ingest
from conversations.models import Conversation, ConversationKey, Flag
from demo.scenarios import SCENARIOS
from handoffs import batch
from handoffs.models import Handoff, HandoffTransition, HumanAsk, Wait
from tests.support.concurrency import all_at_once, overlapping
from tests.support.events import PATH, SECRET
from tests.support.scenarios import play
from tests.support.signing import events_headers


class _Rollback(Exception):
    pass


def _sequences_restart() -> None:
    """The same ids in each run for the rows the ingest writes before the machine sees
    them (messages, events: their ids appear in evidence), whatever ran before."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT schemaname || '.' || sequencename FROM pg_sequences")
        for (name,) in cursor.fetchall():
            cursor.execute("SELECT setval(%s, 1000000, false)", [name])


def machine_rows() -> dict[str, list]:
    """What the machine wrote, field by field; its own ids replaced by natural keys (they
    depend on the order rows are inserted in, which is all the two paths may differ in)."""
    handoff_key = {
        pk: (conversation_id, number)
        for pk, conversation_id, number in Handoff.objects.values_list(
            "pk", "conversation_id", "number"
        )
    }

    def rows(model, *handoff_fields):
        out = []
        for row in model.objects.values():
            row.pop("id")
            for name in handoff_fields:
                row[name] = handoff_key.get(row[name], row[name])
            if model is Flag and row["subject_type"] == Flag.SubjectType.HANDOFF:
                row["subject_id"] = handoff_key[row["subject_id"]]
            out.append(row)
        return sorted(out, key=repr)

    return {
        "Handoff": rows(Handoff),
        "HandoffTransition": rows(HandoffTransition, "handoff_id"),
        "Wait": rows(Wait, "handoff_id"),
        "HumanAsk": rows(HumanAsk, "handoff_id"),
        "Flag": rows(Flag),
        "Conversation flag rank": sorted(
            Conversation.objects.values_list("pk", "open_flag_rank")
        ),
    }


@contextmanager
def set_based_counted():
    """How many conversations the set-based path applied meanwhile."""
    counts = Counter()
    originals = {(cls, name): getattr(cls, name) for cls, name in (
        (batch.EngagedBatch, "apply"), (batch.EngagedBatch, "takeover"),
        (batch.AsksBatch, "apply"))}

    def counted(cls, name, what):
        def method(self, *args, **kwargs):
            counts[what] += 1
            return originals[cls, name](self, *args, **kwargs)
        return method

    batch.EngagedBatch.apply = counted(batch.EngagedBatch, "apply", "conversations")
    batch.EngagedBatch.takeover = counted(batch.EngagedBatch, "takeover", "takeovers")
    batch.AsksBatch.apply = counted(batch.AsksBatch, "apply", "asks")
    try:
        yield counts
    finally:
        for (cls, name), method in originals.items():
            setattr(cls, name, method)


def both_ways(settings, run) -> tuple[dict, dict, Counter]:
    """`run()` set-based, then per row, each from the same start (rolled back between);
    and how many conversations the set-based path applied (engaged, takeovers, asks)."""
    results = []
    used = Counter()
    for set_based in (True, False):
        settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "JOURNEY_SET_BASED": set_based}
        try:
            with transaction.atomic():
                _sequences_restart()
                with set_based_counted() as counts:
                    run()
                results.append(machine_rows())
                used += counts
                raise _Rollback
        except _Rollback:
            pass
        if not set_based:
            assert not counts
    return results[0], results[1], used


@pytest.mark.django_db
def test_the_scenario_library_ends_the_same_set_based_and_row_by_row(client, settings):
    # As the library delivers them (mostly one event at a time, including its out-of-order
    # and duplicate deliveries), and with consecutive deliveries sent as one batch.
    used_by, base = set(), dict(settings.HANDOFF_AUDITOR)
    for group in (1, 2, 3, 5):
        for scenario in SCENARIOS:
            settings.HANDOFF_AUDITOR = base  # play() adds the scenario's own settings
            batched, reference, used = both_ways(
                settings, lambda s=scenario, g=group: play(client, settings, s, group=g)
            )
            assert batched == reference, (scenario.key, group)
            if used:
                used_by.add(scenario.key)
    # The library is about handoffs moving, which stays per row; its engaged stretches
    # (replies, late replies, re-sent deliveries) did go set-based. The random and
    # bench-like deliveries below are where that path does most of the work.
    assert {"sms-duplicate-deliveries", "web-on-time"} <= used_by, used_by


# --- random deliveries ----------------------------------------------------------------

START = datetime(2026, 11, 20, 9, tzinfo=UTC)
CUSTOMERS = [("web", "widget:brisa", "visitor-7"), ("whatsapp", "whatsapp:+3491", "+34600")]
BODIES = ["where is my order?", "Can I talk to a person?", "ok", "HUMAN please"]


TAKEOVER = [
    {"type": "message.created", "timestamp": START.isoformat(), "data": {
        "channel": channel, "conversation": {"business_address": business,
                                             "customer_address": customer},
        "author": author, "direction": "outbound", "provider_message_id": f"{customer}-{n}",
        "sent_at": START.isoformat(), "body": "Hello"}}
    for channel, business, customer in CUSTOMERS
    for n, author in (("ai0", {"kind": "ai", "id": "bot"}), ("h0", {"kind": "human", "id": "li"}))
]


@st.composite
def journey_event(draw: st.DrawFn) -> dict:
    channel, business, customer = draw(st.sampled_from(CUSTOMERS))
    conversation = {"business_address": business, "customer_address": customer}
    # Minutes apart, so reply waits (5-10 minutes allowed) end in time or late.
    at = (START + timedelta(minutes=draw(st.integers(0, 90)))).isoformat()
    kind = draw(st.sampled_from(
        ["customer"] * 4 + ["ai"] * 3 + ["human"] * 3
        + ["handoff.requested", "handoff.queued", "handoff.assigned", "handoff.returned",
           "conversation.resolved"]
    ))
    n = draw(st.integers(0, 11))
    if kind in ("customer", "ai", "human"):
        author = {"customer": {"kind": "customer", "id": customer},
                  "ai": {"kind": "ai", "id": "bot"},
                  "human": {"kind": "human", "id": draw(st.sampled_from(["ana", "li"]))}}[kind]
        return {"type": "message.created", "timestamp": at, "data": {
            "channel": channel, "conversation": conversation, "author": author,
            "direction": "inbound" if kind == "customer" else "outbound",
            "provider_message_id": f"{customer}-m{n}", "sent_at": at,
            "body": draw(st.sampled_from(BODIES)) if kind == "customer" else "Sure."}}
    data: dict = {"conversation": {"channel": channel, **conversation}}
    if kind == "handoff.requested":
        data["requested_by"] = "ai"
    if kind == "handoff.queued":
        data["queue"] = draw(st.sampled_from(["general", "vip"]))
    if kind == "handoff.assigned":
        data["agent"] = {"id": "ana", "name": "Ana"}
    return {"type": kind, "id": f"{customer}-{kind}-{n % 3}", "timestamp": at, "data": data}


def deliver(deliveries: list[tuple[str, list[dict]]]) -> None:
    for index, (webhook_id, events) in enumerate(deliveries):
        with time_machine.travel(START + timedelta(hours=2, seconds=index), tick=False):
            result = raw_event_ingest(
                provider="events", kind="events", dedupe_key=f"webhook:{webhook_id}",
                body=json.dumps(events), content_type="application/json")
        assert result.raw_event.status == "processed", result.raw_event.error


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(st.lists(journey_event(), min_size=1, max_size=12),
                        min_size=1, max_size=5),
       again=st.lists(st.integers(0, 4), max_size=2))
def test_random_deliveries_end_the_same_set_based_and_row_by_row(settings, batches, again):
    # Each batch its own delivery; some delivered again under a new webhook id (the same
    # events re-sent) and one under its own id (a duplicate delivery, stored once).
    # First a human takes each thread over, so most random batches meet an engaged handoff.
    deliveries = [("takeover", TAKEOVER)] + [(f"d{i}", events) for i, events in enumerate(batches)]
    deliveries += [(f"again{j}", batches[i % len(batches)]) for j, i in enumerate(again)]
    deliveries.append(deliveries[0])
    batched, reference, used = both_ways(settings, lambda: deliver(deliveries))
    assert batched == reference


@pytest.mark.django_db
def test_bench_like_deliveries_go_set_based_and_end_the_same(settings):
    """Many customers, each taken over by a human early, then long engaged stretches with
    late replies: the shape bench-events sends, where the set-based path does the work."""
    rng = random.Random(7)
    people = [("web" if i % 2 else "whatsapp", f"biz-{i % 2}", f"cust-{i}") for i in range(12)]
    deliveries, at = [], START
    for d in range(12):
        events = []
        for j in range(20):
            at += timedelta(seconds=rng.randrange(20, 400))
            channel, business, customer = rng.choice(people)
            kind = rng.choices(["customer", "ai", "human"], [6, 3, 1 if d else 3])[0]
            author = {"customer": {"kind": "customer", "id": customer},
                      "ai": {"kind": "ai", "id": "bot"},
                      "human": {"kind": "human", "id": "ana", "name": "Ana"}}[kind]
            events.append({"type": "message.created", "timestamp": at.isoformat(), "data": {
                "channel": channel, "author": author,
                "conversation": {"business_address": business, "customer_address": customer},
                "direction": "inbound" if kind == "customer" else "outbound",
                "provider_message_id": f"b{d}-{j}", "sent_at": at.isoformat(),
                "body": rng.choice(BODIES) if kind == "customer" else "On it."}})
        deliveries.append((f"bench{d}", events))
    batched, reference, used = both_ways(settings, lambda: deliver(deliveries))
    assert batched == reference
    assert used["conversations"] >= 50 and used["takeovers"] >= 6 and used["asks"] >= 10, used
    stalled = [f for f in batched["Flag"] if f["kind"] == "handoff_stalled"]
    assert stalled and all(f["status"] == "resolved" for f in stalled)
    assert any(f["kind"] == "handoff_missed" for f in batched["Flag"])
    assert {a["status"] for a in batched["HumanAsk"]} >= {"missed", "satisfied"}


# --- concurrency ----------------------------------------------------------------------


def _thread_events(key: str, start: datetime, offset: int) -> list[dict]:
    """Customer messages and human replies on one engaged thread, interleaved."""
    conversation = {"channel": "web", "external_id": key, "business_address": "widget:race",
                    "customer_address": f"visitor-{key}"}
    events = []
    for i in range(6):
        at = (start + timedelta(minutes=offset + 20 * i)).isoformat()
        human = i % 2 == 1
        events.append({"type": "message.created", "timestamp": at, "data": {
            "channel": "web", "conversation": conversation,
            "direction": "outbound" if human else "inbound",
            "author": {"kind": "human", "id": "nora"} if human
            else {"kind": "customer", "id": conversation["customer_address"]},
            "provider_message_id": f"{key}-{offset}-{i}", "sent_at": at,
            "body": "Nora here" if human else "still waiting"}})
    return events


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_on_one_engaged_handoff_lose_no_wait_and_count_every_stall(
    live_server, settings
):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    key = f"race-{random.randrange(10**9)}"
    start = datetime.now(tz=UTC) - timedelta(days=1)
    ref = {"channel": "web", "external_id": key, "business_address": "widget:race",
           "customer_address": f"visitor-{key}"}

    def post(events, delivery_id):
        body = json.dumps(events).encode()
        headers = {"Content-Type": "application/json",
                   **events_headers(body, SECRET, msg_id=delivery_id)}
        return lambda: requests.post(live_server.url + PATH, data=body, headers=headers,
                                     timeout=60)

    opening = [
        {"type": "message.created", "timestamp": start.isoformat(), "data": {
            "channel": "web", "conversation": ref, "direction": "outbound",
            "author": {"kind": "ai", "id": "bot"}, "provider_message_id": f"{key}-ai",
            "body": "Hi", "sent_at": start.isoformat()}},
        {"type": "message.created", "timestamp": (start + timedelta(minutes=1)).isoformat(),
         "data": {"channel": "web", "conversation": ref, "direction": "outbound",
                  "author": {"kind": "human", "id": "nora"}, "provider_message_id": f"{key}-h0",
                  "body": "Nora here", "sent_at": (start + timedelta(minutes=1)).isoformat()}},
    ]
    assert post(opening, f"{key}-open")().status_code == 200
    # Three batches, each its own stretch of the same engaged thread: every customer message
    # is answered 20 minutes later (web allows 5), so each batch ends 3 late reply waits.
    calls = [post(_thread_events(key, start + timedelta(hours=1), 200 * k), f"{key}-b{k}")
             for k in range(3)]
    timings = all_at_once(calls)
    assert [t.result.status_code for t in timings] == [200] * 3
    assert overlapping(timings) >= 2

    handoff = Handoff.objects.get(
        conversation=ConversationKey.objects.get(key=f"events:{key}").conversation)
    assert handoff.state == "engaged"
    waits = list(handoff.waits.filter(kind="reply").order_by("started_at"))
    assert len(waits) == 9 and all(w.ended_at is not None and w.met is False for w in waits)
    assert handoff.stalled_count == 9
    stalled = Flag.objects.filter(kind="handoff_stalled", subject_type="handoff",
                                  subject_id=handoff.pk)
    assert stalled.count() == 9 and not stalled.filter(status__in=Flag.ACTIVE_STATUSES).exists()
