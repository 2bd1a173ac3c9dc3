"""The applier: webhooks only store, the applier applies pending raw events in batches,
isolates a broken event, survives a crash, and N appliers give one applier's result."""

import json
import random
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection

from channels import events as events_adapter
from conversations import applier
from conversations.applier import raw_events_apply
from conversations.models import Conversation, ConversationEvent, Flag, Message, RawEvent
from handoffs.models import Handoff, HandoffTransition
from tests.support.events import SECRET, message, post


@pytest.fixture(autouse=True)
def events_secret(settings, twilio_tokens):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}


@pytest.fixture
def stored_only(settings):
    """Webhooks store and wake nobody: the test drives the applier itself."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "APPLIER_WAKE": "none"}


def body(events: list[dict]) -> bytes:
    return json.dumps(events).encode()


@pytest.mark.django_db
def test_a_webhook_only_stores_and_the_applier_applies(client, stored_only):
    events = [message("s1", "visitor-1", at="2026-11-22T10:00:00Z"),
              message("s2", "visitor-2", at="2026-11-22T10:00:01Z")]
    response = post(client, body(events), msg_id="store-only")
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "pending" and answer["duplicate"] is False
    assert len(answer["raw_events"]) == 2
    assert Message.objects.count() == 0
    assert set(RawEvent.objects.values_list("status", flat=True)) == {"pending"}

    counts = raw_events_apply()
    assert (counts.processed, counts.failed, counts.batches) == (2, 0, 1)
    assert sorted(Message.objects.values_list("provider_message_id", flat=True)) == ["s1", "s2"]
    assert set(RawEvent.objects.values_list("status", flat=True)) == {"processed"}
    # Rows name the raw event each came from, though the batch was applied at once.
    for pk, pmid in RawEvent.objects.values_list("pk", "body"):
        assert Message.objects.get(raw_event_id=pk).provider_message_id in pmid
    assert raw_events_apply().batches == 0  # nothing pending: nothing done


@pytest.mark.django_db
def test_one_bad_event_fails_alone_and_reprocessing_after_the_fix_records_it(
        client, monkeypatch):
    """The poison batch: a NUL in one message of three. Before the fix (simulated by
    turning off the adapter's cleaning) that message cannot be stored; it fails alone and
    the other two are recorded. After the fix, reprocess_events records the third."""
    monkeypatch.setattr(events_adapter, "storable", lambda event: event)
    poisoned = message("p2", "visitor-2", at="2026-11-22T10:00:01Z")
    poisoned["data"]["body"] = "half an emoji \ud83d and a NUL \x00 here"
    events = [message("p1", "visitor-1", at="2026-11-22T10:00:00Z"), poisoned,
              message("p3", "visitor-3", at="2026-11-22T10:00:02Z")]
    response = post(client, body(events), msg_id="poison")
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "partial"
    assert [f["event"] for f in answer["failed"]] == [1]
    assert sorted(Message.objects.values_list("provider_message_id", flat=True)) == ["p1", "p3"]
    bad = RawEvent.objects.get(status="failed")
    assert bad.pk == answer["raw_events"][1] and bad.error

    monkeypatch.undo()
    call_command("reprocess_events", "--no-progress")
    bad.refresh_from_db()
    assert bad.status == "processed" and bad.error == ""
    third = Message.objects.get(provider_message_id="p2")
    assert third.body == "half an emoji \ufffd and a NUL \ufffd here"
    assert Message.objects.count() == 3


@pytest.mark.django_db
def test_a_lone_surrogate_or_nul_is_stored_replaced_not_failed(client):
    poisoned = message("u1", "visitor-1", at="2026-11-22T10:00:00Z")
    poisoned["data"]["body"] = "\ud83d\ude00 fine, \ud83d lone, \x00 nul"
    poisoned["data"]["author"]["name"] = "Ana \ud83d"
    assert post(client, body([poisoned]), msg_id="lone").json()["status"] == "processed"
    stored = Message.objects.get()
    assert stored.body == "\U0001f600 fine, \ufffd lone, \ufffd nul"
    assert stored.participant.display_name == "Ana \ufffd"


@pytest.mark.django_db
def test_a_crashed_applier_loses_nothing(client, stored_only, monkeypatch):
    """An applier that dies mid-batch (its transaction rolled back) leaves every event
    pending and no row behind; the next applier applies each once."""
    events = [message(f"c{i}", f"visitor-{i}", at=f"2026-11-22T10:00:0{i}Z") for i in range(4)]
    post(client, body(events), msg_id="crash")
    real = applier.events_apply
    calls = Counter()

    def dies_after_writing(*, events, raw_event=None):
        real(events=events, raw_event=raw_event)
        calls["applied"] += 1
        raise SystemExit("killed")  # not an Exception: nothing catches it on the way out

    monkeypatch.setattr(applier, "events_apply", dies_after_writing)
    with pytest.raises(SystemExit):
        raw_events_apply()
    assert calls["applied"] == 1
    assert Message.objects.count() == 0
    assert set(RawEvent.objects.values_list("status", flat=True)) == {"pending"}
    monkeypatch.undo()
    assert raw_events_apply().processed == 4
    assert Message.objects.count() == 4


@pytest.mark.django_db
def test_batch_size_caps_each_transaction(client, stored_only, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "APPLIER_BATCH_SIZE": 3}
    events = [message(f"b{i}", "visitor-1", at=f"2026-11-22T10:00:{i:02d}Z") for i in range(7)]
    post(client, body(events), msg_id="capped")
    sizes: list[int] = []
    raw_events_apply(on_batch=lambda c: sizes.append(c.applied))
    assert sizes == [3, 3, 1]
    assert list(Message.objects.order_by("sent_at").values_list(
        "provider_message_id", flat=True)) == [f"b{i}" for i in range(7)]


@pytest.mark.django_db
def test_apply_events_command_drains_what_is_pending(client, stored_only):
    post(client, body([message("m1", "visitor-1", at="2026-11-22T10:00:00Z")]), msg_id="cmd")
    out = __import__("io").StringIO()
    call_command("apply_events", "--no-progress", stdout=out)
    assert "1 processed, 0 failed" in out.getvalue()
    assert Message.objects.get().provider_message_id == "m1"


# --- several appliers at once ----------------------------------------------------------

CUSTOMERS = [f"visitor-{i}" for i in range(12)]


def journey_batches(seed: int) -> list[list[dict]]:
    """Requests of a few events each, over a dozen customers: messages from both sides,
    handoff requests, human replies, closes and the customer's next thread."""
    rng = random.Random(seed)
    requests: list[list[dict]] = []
    clock = 0
    for round_ in range(6):
        batch: list[dict] = []
        for customer in rng.sample(CUSTOMERS, 6):
            clock += 1
            at = f"2026-11-22T10:{clock // 60:02d}:{clock % 60:02d}Z"
            ref = {"channel": "web", "business_address": "widget:brisa-home",
                   "customer_address": customer}
            kind = rng.choice(["customer", "ai", "handoff", "human", "close"])
            if kind == "handoff":
                batch.append({"type": "handoff.requested", "id": f"h-{round_}-{customer}",
                              "timestamp": at, "data": {"conversation": ref,
                                                        "requested_by": "ai"}})
            elif kind == "close":
                batch.append({"type": "conversation.closed", "id": f"x-{round_}-{customer}",
                              "timestamp": at, "data": {"conversation": ref}})
            else:
                direction = "inbound" if kind == "customer" else "outbound"
                batch.append(message(f"m-{round_}-{customer}", customer, kind=kind,
                                     direction=direction, at=at))
        requests.append(batch)
    return requests


def snapshot() -> dict:
    """What a user sees, without ids: each customer's threads in order with their
    messages, and every handoff's path and flags."""
    seen: dict = {}
    for conversation in Conversation.objects.order_by("customer_address", "started_at"):
        seen.setdefault(conversation.customer_address, []).append((
            conversation.status,
            list(conversation.messages.order_by("sent_at").values_list(
                "provider_message_id", "author_kind")),
            sorted(ConversationEvent.objects.filter(conversation=conversation).values_list(
                "external_id", flat=True)),
            [(h.state, list(HandoffTransition.objects.filter(handoff=h).order_by(
                "occurred_at", "to_state").values_list("to_state", flat=True)))
             for h in Handoff.objects.filter(conversation=conversation).order_by("requested_at")],
            sorted(Flag.objects.filter(conversation=conversation).values_list("kind", "status")),
        ))
    return seen


def wipe() -> None:
    for model in (Flag, HandoffTransition, Handoff, Message, ConversationEvent, Conversation,
                  RawEvent):
        model.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_several_appliers_at_once_give_one_applier_s_result(client, stored_only, settings):
    if connection.vendor != "postgresql":
        pytest.fail("make test runs on PostgreSQL")
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "APPLIER_BATCH_SIZE": 5,
                                "APPLIER_PARTITIONS_PER_BATCH": 3}
    requests = journey_batches(seed=7)

    def deliver() -> None:
        for index, events in enumerate(requests):
            assert post(client, body(events), msg_id=f"multi-{index}").status_code == 200

    deliver()
    assert raw_events_apply().failed == 0
    alone = snapshot()
    assert sum(len(t[1]) for threads in alone.values() for t in threads) > 10
    wipe()

    deliver()
    results: list = []

    def run() -> None:
        try:
            results.append(raw_events_apply(idle_seconds=0.2))
        finally:
            connection.close()

    appliers = [threading.Thread(target=run) for _ in range(3)]
    for thread in appliers:
        thread.start()
    for thread in appliers:
        thread.join(60)
    assert len(results) == 3
    assert sum(r.processed for r in results) == RawEvent.objects.count()
    assert sum(r.failed for r in results) == 0
    assert sum(1 for r in results if r.batches) >= 2, "the appliers shared the work"
    assert snapshot() == alone


@pytest.mark.django_db(transaction=True)
def test_a_report_applied_beside_its_inbound_message_by_another_applier_is_joined(
        client, stored_only):
    """Two appliers, two partitions: the report's (its message id) and the message's (its
    thread). The report is written while the message's batch is still open, and commits
    first, so neither sees the other inside its transaction; the message's batch, which
    commits last, must join the waiting report after its commit — for an inbound message
    as for an outbound one."""
    if connection.vendor != "postgresql":
        pytest.fail("make test runs on PostgreSQL")
    from django.db import transaction

    from conversations.models import MessageStatusEvent
    from conversations.services import events_apply

    created = message("in-1", "visitor-9", at="2026-11-22T10:00:00Z")
    report = {"type": "message.status", "data": {
        "provider_message_id": "in-1", "status": "read", "occurred_at": "2026-11-22T10:00:05Z"}}
    assert post(client, body([created]), msg_id="join-message").status_code == 200
    assert post(client, body([report]), msg_id="join-report").status_code == 200
    raw_message, raw_report = RawEvent.objects.order_by("pk")
    assert raw_message.partition != raw_report.partition
    message_applied, report_committed = threading.Event(), threading.Event()
    problems: list[BaseException] = []

    def apply(raw: RawEvent, before=None, after=None) -> None:
        try:
            if before:
                assert before.wait(30)
            with transaction.atomic():
                events_apply(events=applier._normalized(raw))
                if after:
                    after()
        except BaseException as exc:  # noqa: BLE001 - reported below
            problems.append(exc)
        finally:
            connection.close()

    message_side = threading.Thread(target=apply, args=(raw_message,), kwargs={
        "after": lambda: (message_applied.set(), report_committed.wait(30))})
    report_side = threading.Thread(target=apply, args=(raw_report,), kwargs={
        "before": message_applied})
    message_side.start()
    report_side.start()
    report_side.join(60)
    report_committed.set()
    message_side.join(60)
    assert not problems, problems
    stored = MessageStatusEvent.objects.get(provider_message_id="in-1")
    kept = Message.objects.get(provider_message_id="in-1")
    assert stored.message_id == kept.pk
    assert kept.status == "read"
