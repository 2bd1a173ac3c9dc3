"""Answer-quality rates on the dashboards (issue 16): per channel, AI model and prompt
version, from the daily rollup, against figures worked out by hand (denominators are the
conversations the AI or the release took part in; a flag on an AI reply counts for the
releases that produced it; no rate passes 100%); each rate links to the inbox's
conversations; GET /api/metrics/quality/ and the CSV columns."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from audit.dashboard_selectors import Period
from audit.models import QualityDaily
from audit.quality_figures import quality_figures
from audit.rollups import rollup_day_build, rollups_refresh
from conversations.models import AIStep, AuthorKind, Conversation, Direction, Flag, Message
from tests.support.events import SECRET
from tests.support.roles import token_for

pytestmark = pytest.mark.django_db

D1, D2 = date(2026, 11, 20), date(2026, 11, 21)
NOW = datetime(2026, 11, 21, 15, 0, tzinfo=UTC)
BOTH = Period(days=2, first=D1, last=D2)
K = Flag.Kind


def _at(day: date, minutes: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC) + timedelta(
        minutes=minutes)


def _conversation(name: str, channel: str, day: date) -> Conversation:
    return Conversation.objects.create(
        channel=channel, business_address="biz", customer_address=f"cust-{name}",
        status="open", started_at=_at(day), last_activity_at=_at(day, 30))


def _message(conv: Conversation, name: str, author: str = AuthorKind.AI) -> Message:
    return Message.objects.create(
        conversation=conv, author_kind=author, body=f"text {name}", provider="test",
        provider_message_id=name, sent_at=conv.started_at + timedelta(minutes=1),
        direction=Direction.OUTBOUND if author == AuthorKind.AI else Direction.INBOUND)


def _step(conv: Conversation, name: str, model: str, prompt: str,
          message: Message | None = None) -> None:
    AIStep.objects.create(conversation=conv, external_id=name, operation="chat",
                          occurred_at=conv.started_at, request_model=model,
                          prompt_version=prompt, message=message)


def _flag(conv: Conversation, kind: str, subject: Message | None = None,
          status: str = Flag.Status.OPEN) -> None:
    Flag.objects.create(
        conversation=conv, kind=kind, severity="high", status=status,
        subject_type="message" if subject else "conversation",
        subject_id=subject.pk if subject else conv.pk, raised_at=conv.started_at,
        evidence={})


@pytest.fixture
def data() -> dict[str, Conversation]:
    """c1 web D1: two AI replies by models A (v1) and B (v1); ungrounded on both, a loop
    on B's. c2 web D1: an AI reply by A (v2) whose tool_failure was dismissed, a prompt
    injection on the customer's message. c3 web D2: an AI reply, no step, no flag.
    c4 sms D1: no AI at all, a prompt injection (no denominator: not counted).
    c5 sms D2: a step by A without a message, a guardrail on the conversation."""
    c1, c2, c3 = (_conversation(n, "web", d) for n, d in (("1", D1), ("2", D1), ("3", D2)))
    c4, c5 = _conversation("4", "sms", D1), _conversation("5", "sms", D2)
    m1, m2 = _message(c1, "m1"), _message(c1, "m2")
    _step(c1, "s1", "model-a", "v1", m1)
    _step(c1, "s2", "model-b", "v1", m2)
    _flag(c1, K.UNGROUNDED_ANSWER, m1)
    _flag(c1, K.UNGROUNDED_ANSWER, m2)
    _flag(c1, K.AI_LOOP, m2)
    m3, m4 = _message(c2, "m3"), _message(c2, "m4", AuthorKind.CUSTOMER)
    _step(c2, "s3", "model-a", "v2", m3)
    _flag(c2, K.TOOL_FAILURE, m3, status=Flag.Status.FALSE_POSITIVE)
    _flag(c2, K.PROMPT_INJECTION, m4)
    _message(c3, "m5")
    _flag(c4, K.PROMPT_INJECTION, _message(c4, "m6", AuthorKind.CUSTOMER))
    _step(c5, "s5", "model-a", "")
    _flag(c5, K.GUARDRAIL_TRIPPED)
    for day in (D1, D2):
        rollup_day_build(day)
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5}


def _rates(figures, dimension: str) -> dict[str, tuple[int, dict[str, tuple[int, float]]]]:
    return {g.key: (g.conversations, {k.kind: (k.flagged, round(k.rate, 4))
                                      for k in g.kinds if k.flagged})
            for g in figures.groups[dimension]}


def test_rates_match_the_hand_computed_figures(data):
    figures = quality_figures(period=BOTH)
    third = round(1 / 3, 4)
    assert _rates(figures, "channel") == {
        "web": (3, {"ungrounded_answer": (1, third), "ai_loop": (1, third),
                    "tool_failure": (1, third), "prompt_injection": (1, third)}),
        "sms": (1, {"guardrail_tripped": (1, 1.0)}),
    }
    assert _rates(figures, "model") == {
        "model-a": (3, {"ungrounded_answer": (1, third), "tool_failure": (1, third),
                        "prompt_injection": (1, third), "guardrail_tripped": (1, third)}),
        "model-b": (1, {"ungrounded_answer": (1, 1.0), "ai_loop": (1, 1.0)}),
    }
    assert _rates(figures, "prompt") == {
        "v1": (1, {"ungrounded_answer": (1, 1.0), "ai_loop": (1, 1.0)}),
        "v2": (1, {"tool_failure": (1, 1.0), "prompt_injection": (1, 1.0)}),
    }
    assert figures.kinds == ["ungrounded_answer", "tool_failure", "guardrail_tripped",
                             "prompt_injection", "ai_loop"]
    for groups in figures.groups.values():
        for group in groups:
            assert all(0 <= k.flagged <= group.conversations for k in group.kinds)


def test_a_channel_and_a_single_day(data):
    sms = quality_figures(period=Period(days=2, first=D1, last=D2, channel="sms"))
    assert _rates(sms, "channel") == {"sms": (1, {"guardrail_tripped": (1, 1.0)})}
    assert _rates(sms, "model") == {"model-a": (1, {"guardrail_tripped": (1, 1.0)})}
    assert _rates(sms, "prompt") == {}
    day2 = quality_figures(period=Period(days=1, first=D2, last=D2))
    assert _rates(day2, "channel") == {"web": (1, {}), "sms": (1, {"guardrail_tripped": (
        1, 1.0)})}


def test_figures_come_from_the_rollup_until_the_day_is_rebuilt(data):
    _flag(data["c3"], K.WEAK_RETRIEVAL)  # not through ingest: the day is not marked
    assert _rates(quality_figures(period=BOTH), "channel")["web"][1].get(
        "weak_retrieval") is None
    rollup_day_build(D2)
    assert _rates(quality_figures(period=BOTH), "channel")["web"][1]["weak_retrieval"] == (
        1, round(1 / 3, 4))
    assert QualityDaily.objects.filter(day=D1, dimension="channel").count() == 1  # web only


def test_each_rate_links_to_the_inbox_of_its_conversations(data, as_role):
    figures = quality_figures(period=BOTH)
    manager = as_role("manager")
    [model_a] = [g for g in figures.groups["model"] if g.key == "model-a"]
    for kind, expected in (("ungrounded_answer", {data["c1"].pk}),
                           ("guardrail_tripped", {data["c5"].pk})):
        link = next(k.link for k in model_a.kinds if k.kind == kind)
        assert "dates=started" in link and "model=model-a" in link
        page = manager.get(link).content.decode()
        shown = {int(c.pk) for c in Conversation.objects.all()
                 if f'data-conversation="{c.pk}"' in page}
        assert shown == expected, kind


def test_the_dashboards_page_shows_the_rates(data, as_role):
    with time_machine.travel(NOW, tick=False):
        page = as_role("viewer").get("/dashboards/?days=7").content.decode()
    assert "Answer quality by channel" in page and "Answer quality by AI model" in page
    assert "Answer quality by prompt version" in page
    assert "Answer not supported by sources" in page  # the kind in words
    assert "33%" in page and "1 of 3" in page


def test_the_api_gives_the_rates(data):
    client = Client(headers={"Authorization": f"Token {token_for('viewer')}"})
    body = client.get("/api/metrics/quality/?since=2026-11-20&until=2026-11-21").json()
    assert body["since"] == "2026-11-20" and body["channel"] is None
    web = next(r for r in body["by_channel"] if r["key"] == "web")
    assert web["conversations"] == 3
    assert web["kinds"]["ungrounded_answer"] == {"flagged": 1, "rate": pytest.approx(1 / 3)}
    assert web["kinds"]["weak_retrieval"] == {"flagged": 0, "rate": 0.0}
    model_b = next(r for r in body["by_model"] if r["key"] == "model-b")
    assert model_b["kinds"]["ai_loop"] == {"flagged": 1, "rate": 1.0}
    assert [r["key"] for r in body["by_prompt"]] == ["v1", "v2"]
    sms = client.get("/api/metrics/quality/?since=2026-11-20&until=2026-11-21"
                     "&channel=sms").json()
    assert [r["key"] for r in sms["by_channel"]] == ["sms"]
    bad = client.get("/api/metrics/quality/?since=2026-11-22&until=2026-11-20")
    assert bad.status_code == 400 and "until" in bad.json()
    assert client.get("/api/metrics/quality/?channel=fax").status_code == 400


def test_the_csv_lists_quality_flags_by_kind_and_in_words(data, as_role):
    response = as_role("manager").get("/export.csv?channel=web")
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(
        b"".join(response.streaming_content).decode()))}
    c1, c2, c3 = (rows[data[n].pk] for n in ("c1", "c2", "c3"))
    assert c1["quality_flags"] == "ai_loop:1; ungrounded_answer:2"
    assert c1["quality_flags_in_words"].count("Answer not supported by sources:") == 2
    assert "AI repeating itself:" in c1["quality_flags_in_words"]
    assert c2["quality_flags"] == "prompt_injection:1; tool_failure:1"
    assert "(false positive)" in c2["quality_flags_in_words"]
    assert c3["quality_flags"] == "" and c3["quality_flags_in_words"] == ""


def test_refresh_builds_the_days_ingest_marked(data):
    from conversations.services import dashboard_days_mark

    QualityDaily.objects.all().delete()
    dashboard_days_mark(conversation_ids=[data["c1"].pk])
    rollups_refresh()
    assert set(QualityDaily.objects.values_list("day", flat=True)) == {D1}


def test_a_flag_raised_through_ingest_reaches_the_rates_after_the_refresh(client, settings):
    """The apply path marks the day of the conversation a quality flag was raised in; the
    refresh (beat, every minute) builds it; the rates read it."""
    from tests.conversations.test_quality_ingest import KB, say, send, step

    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    reply = ("Returns are free within 30 days of delivery. We will also send you a $25 gift "
             "card for the trouble.")
    send(client, [
        say("e2e-c1", "Can I return my lamp?", "2026-11-22T10:00:00Z"),
        step("e2e-r", "2026-11-22T10:00:01Z", "retrieval", retrieval={"query": "lamp"},
             retrieved_documents=[{"id": "kb", "score": 0.82, "text": KB}]),
        step("e2e-c", "2026-11-22T10:00:02Z", output={"text": reply}, request_model="gpt-x",
             prompt={"name": "support", "version": "v7"},
             message={"provider_message_id": "e2e-a1"}),
        say("e2e-a1", reply, "2026-11-22T10:00:03Z", kind="ai"),
    ], "e2e")
    assert Flag.objects.filter(kind=K.UNGROUNDED_ANSWER).count() == 1
    rollups_refresh()
    day = Period(days=1, first=date(2026, 11, 22), last=date(2026, 11, 22))
    figures = quality_figures(period=day)
    assert _rates(figures, "channel") == {"web": (1, {"ungrounded_answer": (1, 1.0)})}
    assert _rates(figures, "model") == {"gpt-x": (1, {"ungrounded_answer": (1, 1.0)})}
    assert _rates(figures, "prompt") == {"v7": (1, {"ungrounded_answer": (1, 1.0)})}
