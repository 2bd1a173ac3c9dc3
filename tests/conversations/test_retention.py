"""Retention: `manage.py purge_retention` empties old content and deletes old raw events,
and keeps every row and figure the dashboards and metrics count."""

import io
import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command

from conversations.models import AIStep, Conversation, Flag, Message, RawEvent
from handoffs.models import Handoff
from handoffs.selectors import handoff_metrics
from scoring.models import Score, ScoreDaily
from scoring.services import messages_score, scores_daily_refresh
from tests.support.events import SECRET, post
from tests.support.roles import user_in
from tests.support.signing import events_fixture

pytestmark = pytest.mark.django_db(transaction=True)

OLD = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
NEW = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
LEAK = "<thinking>The customer at 4 Rue Lepic sounds angry; offer a refund.</thinking> Bonjour !"


@pytest.fixture(autouse=True)
def events_secret(settings, twilio_tokens):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}


def journey(client, *, day: str, tag: str) -> Conversation:
    """The web fixture journey on `day` under ids of its own, plus an AI reply that leaks
    its reasoning (a flag quoting text, and tone scores quoting words) before the handoff."""
    events = json.loads(
        events_fixture("web_full_journey").decode()
        .replace("2026-11-21", day).replace("conv-88", f"conv-{tag}").replace("wc_88", f"wc_{tag}")
        .replace("step-88", f"step-{tag}")
    )
    events.insert(5, {
        "type": "message.created", "timestamp": f"{day}T15:00:05Z",
        "data": {"channel": "web", "direction": "outbound",
                 "author": {"kind": "ai", "id": "support-bot", "name": "Ava (AI)"},
                 "conversation": {"external_id": f"conv-{tag}", "business_address":
                                  "widget:brisa-home", "customer_address": "visitor-88"},
                 "provider_message_id": f"wc_{tag}_leak", "body": LEAK},
    })
    at = datetime.fromisoformat(f"{day}T15:20:00+00:00")
    with time_machine.travel(at, tick=False):
        response = post(client, json.dumps(events).encode(), msg_id=f"journey-{tag}")
        assert response.status_code == 200, response.content
        conversation = Conversation.objects.get(keys__key=f"events:conv-{tag}")
        messages_score(message_ids=list(conversation.messages.values_list("id", flat=True)))
        scores_daily_refresh(day=at.date())
    return conversation


def quoted(message: Message) -> list[str]:
    """The words the message's tone scores quote from it."""
    found: list[str] = []

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "text" and isinstance(item, str):
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(list(Score.objects.filter(message=message).values_list("explanations", flat=True)))
    return found


def snapshot() -> dict:
    """What must not change: counts, every score value, the daily aggregates, the metrics."""
    return {
        "conversations": list(Conversation.objects.order_by("id").values_list(
            "id", "status", "message_count", "last_activity_at")),
        "messages": list(Message.objects.order_by("id").values_list(
            "id", "sent_at", "status", "author_kind", "num_segments")),
        "ai_steps": list(AIStep.objects.order_by("id").values_list(
            "id", "response_model", "prompt_version", "input_tokens", "cost", "latency_ms",
            "tool_name", "system_prompt_hash")),
        "handoffs": list(Handoff.objects.order_by("id").values_list(
            "id", "state", "requested_at")),
        "flags": list(Flag.objects.order_by("id").values_list(
            "id", "kind", "status", "updated_at")),
        "scores": list(Score.objects.order_by("id").values_list("id", "name", "value")),
        "daily": list(ScoreDaily.objects.order_by("id").values_list("id", "count", "mean")),
        "metrics": handoff_metrics(since=OLD.replace(month=1), until=NEW.replace(month=12),
                                   group_by="channel", now=NEW),
    }


def purge(**options) -> str:
    out = io.StringIO()
    with time_machine.travel(NEW.replace(hour=16), tick=False):
        call_command("purge_retention", "--no-progress", stdout=out, **options)
    return out.getvalue()


def test_purge_empties_old_content_and_keeps_every_figure(client):
    old = journey(client, day="2026-06-01", tag="old")
    new = journey(client, day="2026-11-21", tag="new")
    leak_old = Message.objects.get(provider_message_id="wc_old_leak")
    assert Flag.objects.filter(conversation=old, kind="reasoning_leak").exists()
    assert "Rue Lepic" in json.dumps(list(Flag.objects.filter(conversation=old).values("evidence")))
    assert "angry" in quoted(leak_old)  # the tone explanations quote its words
    before = snapshot()

    out = purge(days=90)

    assert out.startswith("purged content older than 2026-08-23 16:00 UTC")
    # Old: bodies, subjects and quoted text gone; the rows stay and say when.
    for message in Message.objects.filter(conversation=old):
        assert (message.body, message.body_new, message.subject) == ("", "", "")
        assert message.purged_at is not None
        assert message.raw_event_id is None
    tool = AIStep.objects.get(external_id="step-old-2")
    assert (tool.tool_arguments, tool.tool_error, tool.tool_name) == (None, "", "order_lookup")
    assert "Rue Lepic" not in json.dumps(list(Flag.objects.filter(conversation=old)
                                              .values("evidence")))
    spans = quoted(leak_old)
    assert spans and set(spans) == {""}  # the spans and the figures stay, the words go
    assert not RawEvent.objects.filter(dedupe_key__contains="journey-old").exists()
    # New: untouched.
    assert Message.objects.get(provider_message_id="wc_new_leak").body == LEAK
    assert "angry" in quoted(Message.objects.get(provider_message_id="wc_new_leak"))
    assert not Message.objects.filter(conversation=new, purged_at__isnull=False).exists()
    assert RawEvent.objects.filter(dedupe_key__contains="journey-new").exists()
    assert "Rue Lepic" in json.dumps(list(Flag.objects.filter(conversation=new).values("evidence")))
    # Every figure the dashboards and metrics count is the same.
    assert snapshot() == before

    # Idempotent: a second run finds nothing left to purge.
    again = purge(days=90)
    assert "0 messages" in again and "0 raw events" in again
    assert snapshot() == before


def test_rebuilding_and_rescoring_leave_purged_conversations_alone(client):
    """Replaying a purged conversation through the handoff machine would not find its asks
    again and would delete its findings; rescoring empty text would overwrite real scores."""
    old = journey(client, day="2026-06-01", tag="old")
    purge(days=90)
    before = snapshot()
    out = io.StringIO()
    with time_machine.travel(NEW.replace(hour=17), tick=False):
        call_command("rebuild_handoffs", "--no-progress", stdout=out)
        call_command("rescore", stdout=io.StringIO())
    said = out.getvalue()
    assert "rebuilt 0 conversations (1 left as they were: text purged by retention)" in said
    assert snapshot() == before
    assert Handoff.objects.filter(conversation=old).exists()


def test_replay_says_why_a_body_is_blank(client):
    old = journey(client, day="2026-06-01", tag="old")
    purge(days=90)
    client.force_login(user_in("manager", "lead"))
    page = client.get(f"/conversations/{old.pk}/").content.decode()
    assert "Text removed by the retention policy on 2026-11-21" in page
    assert "Rue Lepic" not in page


def test_dry_run_counts_and_changes_nothing(client):
    journey(client, day="2026-06-01", tag="old")
    def state():
        return list(Message.objects.values_list("body", flat=True)), RawEvent.objects.count()

    before = state()
    out = purge(days=90, dry_run=True)
    assert "would purge content older than 2026-08-23" in out
    assert "messages: 4" in out and "raw_events: 1" in out
    assert state() == before


def test_without_a_retention_period_the_command_refuses(settings):
    with pytest.raises(CommandError, match="RETENTION_DAYS"):
        call_command("purge_retention", "--no-progress")
    with pytest.raises(CommandError, match="at least 1 day"):
        call_command("purge_retention", "--no-progress", days=0)


def test_the_setting_is_the_default_period(client, settings):
    journey(client, day="2026-06-01", tag="old")
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "RETENTION_DAYS": 365}
    assert "0 messages" in purge()
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "RETENTION_DAYS": 30}
    assert "4 messages" in purge()
