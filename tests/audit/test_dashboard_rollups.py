"""The dashboards' daily rollups: the rollup-backed dashboard equals the figures computed
from the facts (audit.dashboard_selectors.dashboard_direct, the selectors the page used
before) on a varied data set, for every period and channel the page offers, also after
late events change past days; each path that changes the facts marks its days; the
rebuild command is idempotent."""

import dataclasses
import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.dashboard_selectors import PERIODS, dashboard, dashboard_direct, dashboard_period
from audit.models import ConversationDaily, DashboardDay, HandoffDaily, ReleaseDaily
from audit.rollups import rollups_rebuild, rollups_refresh
from conversations.models import (
    AIStep,
    AuthorKind,
    Channel,
    Conversation,
    DashboardDirtyDay,
    Direction,
    Message,
    Outcome,
)
from handoffs.models import Handoff, Wait
from handoffs.rebuild import handoffs_rebuild
from handoffs.sweep import handoffs_sweep
from tests.support.events import PATH, SECRET
from tests.support.signing import events_headers

pytestmark = pytest.mark.django_db

TODAY = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
CHANNELS = [c for c, _ in Channel.choices]
MODELS = [("gpt-4.1", "gpt-4.1-2025"), ("gpt-4.1-mini", ""), ("claude-sonnet-4", "claude-x")]
TERMINAL = ["resolved", "abandoned", "returned"]
ACTIVE = ["requested", "queued", "assigned", "engaged"]


def _varied(rng: random.Random, n: int = 160) -> list[Conversation]:
    """Conversations over 100 days on every channel: AI messages or steps or neither, steps
    of several models and prompt versions (some without), outcomes (the latest CSAT wins),
    up to three handoffs each requested on later days (every end state, dropped, stalled,
    reached or not), SLA waits met, breached, open past or before their deadline."""
    made = []
    for i in range(n):
        start = TODAY - timedelta(days=rng.randrange(0, 100), hours=rng.random() * 14)
        channel = rng.choice(CHANNELS)
        conv = Conversation.objects.create(
            channel=channel, business_address="biz", customer_address=f"cust-{i}",
            status="closed", started_at=start, last_activity_at=start + timedelta(hours=2))
        made.append(conv)
        if rng.random() < 0.4:
            Message.objects.create(
                conversation=conv, direction=Direction.OUTBOUND, author_kind=AuthorKind.AI,
                body="Hello", provider="test", provider_message_id=f"m-{i}",
                sent_at=start + timedelta(minutes=1))
        for s in range(rng.choice([0, 0, 1, 2, 3])):
            request, answered = rng.choice(MODELS)
            AIStep.objects.create(
                conversation=conv, external_id=f"s-{i}-{s}", operation="chat",
                occurred_at=start + timedelta(minutes=2 + s), request_model=request,
                response_model=answered, prompt_version=rng.choice(["v1", "v2", ""]),
                cost=None if rng.random() < 0.1 else Decimal(f"{rng.random() / 50:.6f}"))
        for o in range(rng.choice([0, 1, 1, 2])):
            Outcome.objects.create(
                conversation=conv, external_id=f"o-{i}-{o}",
                occurred_at=start + timedelta(hours=1, minutes=o * rng.choice([-5, 5])),
                csat=rng.choice([None, 1, 2, 3, 4, 5]), resolved=rng.choice([None, True, False]))
        count = rng.choice([0, 0, 1, 1, 2, 3])
        at = start
        for number in range(1, count + 1):
            at = min(at + timedelta(days=rng.choice([0, 0, 1, 2]), minutes=10), TODAY)
            _handoff(rng, conv, number, at, last=number == count)
    return made


def _handoff(rng: random.Random, conv: Conversation, number: int, at: datetime,
             *, last: bool) -> Handoff:
    state = rng.choice(TERMINAL + (ACTIVE if last else []))
    reached = state in ("resolved", "engaged") or (state == "returned" and rng.random() < 0.5)
    tth = 30 + rng.random() * 3000 if reached else None
    handoff = Handoff.objects.create(
        conversation=conv, number=number, channel=conv.channel, state=state,
        state_entered_at=at, requested_at=at, requested_by="ai",
        engaged_at=at + timedelta(seconds=tth) if tth else None, time_to_human=tth,
        time_to_human_business=tth / 2 if tth and rng.random() < 0.7 else None,
        dropped_at=at + timedelta(minutes=30) if state == "abandoned" or (
            state in ACTIVE and rng.random() < 0.3) else None,
        stalled_count=rng.choice([0, 0, 1, 2]))
    for kind in rng.sample(["requested", "queued", "assigned", "reply"], rng.randrange(0, 3)):
        allowed = rng.choice([None, 300.0, 3600.0])
        deadline = at + timedelta(seconds=allowed) if allowed else None
        ended = rng.random() < 0.6
        Wait.objects.create(
            handoff=handoff, kind=kind, started_at=at, allowed_seconds=allowed,
            deadline_at=deadline, ended_at=at + timedelta(seconds=200) if ended else None,
            met=rng.choice([True, False]) if ended and allowed else None)
    return handoff


def _plain(board) -> dict:
    """A board as comparable data: floats rounded (PostgreSQL's PERCENTILE_CONT and numpy's
    interpolation may differ in the last bit), the freshness line left out."""
    board = dataclasses.replace(board, freshness=None)

    def clean(value):
        if isinstance(value, float):
            return round(value, 9)
        if isinstance(value, Decimal):
            return value.normalize()
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    data = clean(dataclasses.asdict(board))
    # Computed properties are figures too (rates, costs per conversation).
    data["rates"] = clean([(m.key, m.handoff_rate, m.dropped_rate, m.returned_rate)
                           for m in [board.total, *board.by_channel, *board.by_day]])
    data["costs_per"] = clean([(c.key, c.cost_per_conversation, c.cost_per_resolved)
                               for c in [board.costs, *board.costs_by_channel]])
    return data


def _assert_same_everywhere(now: datetime) -> int:
    """Rollups against the facts for every period and channel the page offers; returns how
    many handoffs the boards counted (so a test knows it compared something)."""
    seen = 0
    for days in PERIODS:
        for channel in ["", *CHANNELS]:
            period = dashboard_period(days=days, channel=channel, today=now.date())
            rolled = dashboard(period=period, now=now)
            direct = dashboard_direct(period=period, now=now)
            assert _plain(rolled) == _plain(direct), (days, channel)
            seen += rolled.total.handoffs
    return seen


@pytest.fixture
def varied():
    with time_machine.travel(TODAY, tick=False):
        made = _varied(random.Random(20261122))  # written directly: no marks
        rollups_rebuild()
        yield made


def test_rollups_equal_the_direct_figures_on_varied_data(varied):
    assert _assert_same_everywhere(TODAY) > 50
    # The data set exercises what makes rollups hard: a conversation with handoffs on
    # several days, open waits past and before their deadline, every CSAT bucket.
    assert HandoffDaily.objects.exclude(shared={}).exists()
    board = dashboard(period=dashboard_period(days=90, today=TODAY.date()), now=TODAY)
    assert {b.key for b in board.csat} == {"none", "resolved", "abandoned", "returned", "open"}
    assert all(b.rated for b in board.csat)
    assert board.total.conversations_with_handoff < board.total.handoffs
    assert board.models and board.prompts and board.total.sla
    # Later, open waits pass their deadlines: breached without any rebuild.
    later = TODAY + timedelta(hours=2)
    before = sum(f.breached for f in board.total.sla.values())
    after = dashboard(period=dashboard_period(days=90, today=TODAY.date()), now=later)
    assert sum(f.breached for f in after.total.sla.values()) > before
    assert _plain(after) == _plain(dashboard_direct(
        period=dashboard_period(days=90, today=TODAY.date()), now=later))


def _deliver(client: Client, events: list[dict], delivery_id: str, settings) -> None:
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    body = json.dumps(events).encode()
    response = client.post(PATH, body, content_type="application/json",
                           headers=events_headers(body, SECRET, msg_id=delivery_id))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "processed", response.json()


def _ref(conv: Conversation) -> dict[str, str]:
    return {"channel": conv.channel, "business_address": conv.business_address,
            "customer_address": conv.customer_address}


def _message(conv_ref: dict[str, str], kind: str, key: str, at: datetime) -> dict:
    return {"type": "message.created", "id": key, "timestamp": at.isoformat(), "data": {
        "channel": conv_ref["channel"], "direction": "inbound" if kind == "customer" else
        "outbound", "author": {"kind": kind, "id": f"{kind}-1"}, "body": f"{kind} says hi",
        "provider_message_id": key, "conversation": {
            "business_address": conv_ref["business_address"],
            "customer_address": conv_ref["customer_address"]}}}


def _open_thread(client: Client, settings, at: datetime, who: str) -> Conversation:
    """A WhatsApp thread started `at` through the webhook, with an AI reply."""
    ref = {"channel": "whatsapp", "business_address": "+14155550100", "customer_address": who}
    with time_machine.travel(at, tick=False):
        _deliver(client, [_message(ref, "customer", f"in-{who}", at),
                          _message(ref, "ai", f"ai-{who}", at)], f"open-{who}", settings)
    return Conversation.objects.get(customer_address=who)


def test_late_events_change_a_past_day_and_the_refresh_follows(varied, client, settings):
    old = TODAY - timedelta(days=12)
    conv = _open_thread(client, settings, old, "+34600000001")
    with time_machine.travel(TODAY, tick=False):
        rollups_refresh()
        assert not DashboardDirtyDay.objects.exists()
        assert _assert_same_everywhere(TODAY)
        # Twelve days later: a cost, a rating and a handoff for that old conversation.
        _deliver(client, [
            {"type": "ai.step", "id": "late-step", "timestamp": TODAY.isoformat(), "data": {
                "conversation": _ref(conv), "operation": "chat", "request_model": "gpt-late",
                "prompt": {"name": "support", "version": "v9"}, "cost": 0.5}},
            {"type": "outcome.recorded", "id": "late-outcome", "timestamp": TODAY.isoformat(),
             "data": {"conversation": _ref(conv), "csat": 5, "resolved": True}},
            {"type": "handoff.requested", "id": "late-handoff", "timestamp": TODAY.isoformat(),
             "data": {"conversation": _ref(conv), "requested_by": "customer"}},
        ], "late", settings)
        marked = set(DashboardDirtyDay.objects.values_list("day", flat=True))
        assert {old.date(), TODAY.date()} <= marked
        stale = dashboard(period=dashboard_period(days=30, today=TODAY.date()), now=TODAY)
        assert stale.freshness.pending == len(marked)
        assert "gpt-late" not in {r.key for r in stale.models}
        rollups_refresh()
        fresh = dashboard(period=dashboard_period(days=30, today=TODAY.date()), now=TODAY)
        assert fresh.freshness.pending == 0 and fresh.freshness.built_at == TODAY
        assert "gpt-late" in {r.key for r in fresh.models}
        assert _assert_same_everywhere(TODAY)


def test_ingest_marks_the_start_days_of_the_conversations_it_touched(client, settings):
    first = TODAY - timedelta(days=5)
    conv = _open_thread(client, settings, first, "+34600000002")
    assert set(DashboardDirtyDay.objects.values_list("day", flat=True)) == {first.date()}
    DashboardDirtyDay.objects.all().delete()
    # A single event (the per-event path) days later marks the conversation's start day.
    with time_machine.travel(TODAY, tick=False):
        _deliver(client, [{"type": "outcome.recorded", "id": "o-single",
                           "timestamp": TODAY.isoformat(),
                           "data": {"conversation": _ref(conv), "csat": 2}}], "single", settings)
    assert set(DashboardDirtyDay.objects.values_list("day", flat=True)) == {first.date()}


def test_the_handoff_machine_marks_the_days_of_every_handoff_of_the_conversation(
        client, settings):
    start = TODAY - timedelta(days=6)
    conv = _open_thread(client, settings, start, "+34600000003")
    request = start + timedelta(days=2)
    with time_machine.travel(request, tick=False):
        _deliver(client, [{"type": "handoff.requested", "id": "h1",
                           "timestamp": request.isoformat(),
                           "data": {"conversation": _ref(conv), "requested_by": "ai"}}], "h1",
                 settings)
    DashboardDirtyDay.objects.all().delete()
    # A human replies two days after the request: the start day (ingest), the request day
    # (the handoff changed) and nothing else.
    reply = request + timedelta(days=2)
    with time_machine.travel(reply, tick=False):
        _deliver(client, [_message(_ref(conv), "human", "human-1", reply)], "human", settings)
    assert Handoff.objects.get(conversation=conv).engaged_at is not None
    assert set(DashboardDirtyDay.objects.values_list("day", flat=True)) == {
        start.date(), request.date()}


def test_the_sweep_and_rebuild_handoffs_mark_the_days_they_change(client, settings):
    start = TODAY - timedelta(days=3)
    conv = _open_thread(client, settings, start, "+34600000004")
    with time_machine.travel(start, tick=False):
        _deliver(client, [{"type": "handoff.requested", "id": "h-sweep",
                           "timestamp": start.isoformat(),
                           "data": {"conversation": _ref(conv), "requested_by": "ai"}}],
                 "h-sweep", settings)
    handoff = Handoff.objects.get(conversation=conv)
    assert handoff.waits.filter(deadline_at__isnull=False).exists()
    DashboardDirtyDay.objects.all().delete()
    result = handoffs_sweep(now=TODAY)
    assert result.stalled >= 1
    assert set(DashboardDirtyDay.objects.values_list("day", flat=True)) == {start.date()}
    DashboardDirtyDay.objects.all().delete()
    handoffs_rebuild(conversation_ids=[conv.pk])
    assert set(DashboardDirtyDay.objects.values_list("day", flat=True)) == {start.date()}


def test_the_rebuild_command_is_idempotent(varied, capsys):
    def rows():
        return [sorted(model.objects.values_list(*[f.attname for f in model._meta.fields
                                                   if f.attname != "id"]), key=repr)
                for model in (ConversationDaily, ReleaseDaily, HandoffDaily)]

    refreshed = rows()
    with time_machine.travel(TODAY, tick=False):
        call_command("rebuild_dashboard_rollups")
        once = rows()
        DashboardDirtyDay.objects.create(day=TODAY.date(), marked_at=TODAY)
        call_command("rebuild_dashboard_rollups", "--days", "200")
    assert once == refreshed and rows() == once
    assert not DashboardDirtyDay.objects.exists()
    assert DashboardDay.objects.count() == 200
    assert "rebuilt 200 days" in capsys.readouterr().out
    with time_machine.travel(TODAY, tick=False):
        assert _assert_same_everywhere(TODAY)


@pytest.mark.parametrize("late", ["single event", "batch"])
def test_a_start_moved_back_across_midnight_leaves_no_count_on_the_old_day(
        client, settings, late):
    """A late message dated before a conversation's first one moves its start to the day
    before; a late handoff.requested moves the handoff's request day back. The day each
    left must be rebuilt too, or both days count them."""
    first = (TODAY - timedelta(days=3)).replace(hour=0, minute=1)
    before = first - timedelta(minutes=2)  # 23:59 the day before
    conv = _open_thread(client, settings, first, "+34600000009")
    ref = _ref(conv)
    with time_machine.travel(TODAY, tick=False):
        _deliver(client, [{"type": "handoff.queued", "id": "q-9", "timestamp": first.isoformat(),
                           "data": {"conversation": ref, "queue": "billing"}}], "q9", settings)
        rollups_refresh()
        assert _assert_same_everywhere(TODAY)
        events = [_message(ref, "customer", "late-9", before)]
        if late == "batch":
            events.append(_message(ref, "ai", "late-9-ai", before + timedelta(seconds=20)))
        events.append({"type": "handoff.requested", "id": "r-9", "timestamp": before.isoformat(),
                       "data": {"conversation": ref, "requested_by": "customer"}})
        if late == "single event":
            for i, event in enumerate(events):
                _deliver(client, [event], f"late-9-{i}", settings)
        else:
            _deliver(client, events, "late-9", settings)
        conv.refresh_from_db()
        assert conv.started_at == before
        assert {first.date(), before.date()} <= set(
            DashboardDirtyDay.objects.values_list("day", flat=True))
        rollups_refresh()
        assert _assert_same_everywhere(TODAY)


def test_one_ingest_writes_its_day_marks_in_one_statement(client, settings):
    """Ingest's marks and the handoff machine's (a takeover opens a handoff) go out together,
    in day order: two concurrent batches marking the same days cannot deadlock on them."""
    first = TODAY - timedelta(days=2)
    conv = _open_thread(client, settings, first, "+34600000010")
    ref = _ref(conv)
    with time_machine.travel(TODAY, tick=False), CaptureQueriesContext(connection) as seen:
        _deliver(client, [_message(ref, "customer", "c-10", TODAY - timedelta(minutes=2)),
                          _message(ref, "human", "h-10", TODAY - timedelta(minutes=1))],
                 "takeover-10", settings)
    assert Handoff.objects.filter(conversation=conv).exists()  # the machine took part
    table = DashboardDirtyDay._meta.db_table
    marks = [q["sql"] for q in seen.captured_queries
             if q["sql"].startswith(f'INSERT INTO "{table}"')]
    # One in the transaction (the after-commit one does not run inside the test's transaction).
    assert len(marks) == 1
    assert {first.date(), TODAY.date()} <= set(
        DashboardDirtyDay.objects.values_list("day", flat=True))
