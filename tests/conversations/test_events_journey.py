"""AI steps, handoff and conversation events and outcomes through POST /hooks/events/, and
the journey selector that puts them in one timeline."""

import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from conversations.models import (
    AIStep,
    Conversation,
    ConversationEvent,
    ConversationKey,
    Message,
    Outcome,
)
from conversations.selectors import conversation_journey
from tests.support.events import SECRET, post
from tests.support.signing import events_fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def events_secret(settings, twilio_tokens):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}


def send_journey(client):
    response = post(client, events_fixture("web_full_journey"), msg_id="journey-88")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "processed", response.json()
    return Conversation.objects.get(keys__key="events:conv-88")


def test_a_whole_journey_is_stored_and_linked(client):
    conversation = send_journey(client)
    assert conversation.status == "closed"
    assert conversation.message_count == 3

    chat = AIStep.objects.get(external_id="step-88-3")
    assert chat.message.provider_message_id == "wc_88_2"  # reported before its message
    assert (chat.request_model, chat.response_model) == ("gpt-4.1", "gpt-4.1-2025-04-14")
    assert (chat.prompt_name, chat.prompt_version) == ("support-fr", "v12")
    assert (chat.input_tokens, chat.output_tokens, chat.cached_tokens) == (1834, 96, 1024)
    assert chat.cost == Decimal("0.004412") and chat.latency_ms == 1421
    assert chat.guardrails == [{"name": "pii", "passed": True}]
    tool = AIStep.objects.get(external_id="step-88-2")
    assert tool.tool_name == "order_lookup" and tool.tool_error == "timeout after 5000 ms"
    assert tool.tool_arguments == {"order_id": "5521"}
    retrieval = AIStep.objects.get(external_id="step-88-1")
    assert [d["score"] for d in retrieval.retrieved_documents] == [0.82, 0.31]

    events = list(conversation.events.order_by("occurred_at").values_list(
        "type", "actor_kind", "actor_id"))
    assert events == [
        ("handoff.requested", "customer", ""),
        ("handoff.queued", "", ""),
        ("handoff.assigned", "human", "camille.martin"),
        ("conversation.resolved", "human", "camille.martin"),
        ("conversation.closed", "", ""),
    ]
    assert conversation.events.get(type="handoff.queued").data == {"queue": "tier2-fr"}
    outcome = Outcome.objects.get()
    assert (outcome.csat, outcome.resolved, outcome.converted) == (4, True, None)


def test_journey_selector_orders_everything_in_constant_queries(client,
                                                                django_assert_num_queries):
    conversation = send_journey(client)
    with django_assert_num_queries(6):
        journey = conversation_journey(conversation=conversation)
        kinds = [(item.kind, getattr(item.obj, "type", "")) for item in journey]
        # The prefetched status histories are usable without more queries.
        [list(item.obj.status_list) for item in journey if item.kind == "message"]
    assert kinds == [
        ("message", ""), ("ai_step", ""), ("ai_step", ""), ("ai_step", ""), ("message", ""),
        # the AI answered after its tool failed (answer quality: tool_failure)
        ("flag", ""),
        ("event", "handoff.requested"), ("event", "handoff.queued"),
        ("event", "handoff.assigned"), ("message", ""), ("event", "conversation.resolved"),
        ("outcome", ""), ("event", "conversation.closed"),
    ]


def test_after_close_the_customer_starts_a_new_conversation(client):
    closed = send_journey(client)
    again = json.loads(events_fixture("web_chat_customer"))
    again["data"]["conversation"] = {"business_address": "widget:brisa-home",
                                     "customer_address": "visitor-88"}
    post(client, json.dumps(again).encode(), msg_id="later")
    newer = Message.objects.get(provider_message_id=again["data"]["provider_message_id"])
    assert newer.conversation_id != closed.pk
    assert newer.conversation.status == "open"


def test_events_may_name_a_conversation_before_any_message(client):
    event = {"type": "handoff.requested", "id": "h1", "data": {
        "conversation": {"channel": "whatsapp", "external_id": "wa-thread-7"},
        "requested_by": "ai", "reason": "refund over limit"}}
    assert post(client, json.dumps(event).encode()).status_code == 200
    conversation = Conversation.objects.get()
    assert conversation.channel == "whatsapp"
    assert ConversationKey.objects.get().key == "events:wa-thread-7"
    assert ConversationEvent.objects.get().actor_kind == "ai"


def test_resent_events_change_nothing_and_reprocessing_is_stable(client):
    send_journey(client)
    body = json.loads(events_fixture("web_full_journey"))
    post(client, json.dumps(body).encode(), msg_id="journey-88-resent")  # new webhook-id

    def snapshot():
        return (
            sorted(AIStep.objects.values_list("external_id", "message__provider_message_id")),
            sorted(ConversationEvent.objects.values_list("external_id", "type")),
            sorted(Outcome.objects.values_list("external_id", "csat")),
            sorted(Conversation.objects.values_list("status", "message_count")),
            Message.objects.count(),
        )

    first = snapshot()
    assert (len(first[0]), len(first[1]), len(first[2]), first[4]) == (3, 5, 1, 3)
    call_command("reprocess_events", "--all", "--no-progress")
    call_command("reprocess_events", "--all", "--no-progress")
    assert snapshot() == first


def test_lifecycle_schema_violations_are_reported_by_path(client):
    bad = [
        {"type": "handoff.assigned", "id": "x", "data": {
            "conversation": {"channel": "web", "external_id": "c"}, "agent": {"name": "no id"}}},
        {"type": "outcome.recorded", "id": "y", "data": {
            "conversation": {"channel": "web", "external_id": "c"}, "csat": 9}},
        {"type": "ai.step", "data": {"conversation": {"channel": "web"}, "operation": "dance"}},
    ]
    response = post(client, json.dumps(bad).encode())
    assert response.status_code == 400
    paths = {(p["event"], p["path"]) for p in response.json()["problems"]}
    assert {(0, "data.agent"), (1, "data.csat"), (2, "(event)"), (2, "data.operation"),
            (2, "data.conversation")} <= paths
