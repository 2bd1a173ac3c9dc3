"""A customer journey with a traced AI turn, planted through the real webhooks: a web chat
whose AI turn is exported over OTLP/HTTP (an agent, two LLM calls, a tool that timed out, a
retrieval), then a handoff the AI asked for that was abandoned, and the same customer
(identified by phone) coming back on WhatsApp. Used by the browser tests of the replay's span
tree and the customer page."""

import json
from datetime import timedelta

from django.contrib.auth.models import Group, User
from django.utils import timezone

from audit.roles import roles_ensure
from channels.tokens import otlp_token_issue
from conversations.models import Conversation
from tests.support import events as ev
from tests.support.otlp import export, span
from tests.support.otlp import post as otlp_post
from tests.support.signing import twilio_fixture
from tests.support.twilio import TwilioClient

PHONE = "+5215512345678"  # the WhatsApp fixture's customer


def traced_journey_plant(client, settings) -> tuple[Conversation, Conversation]:
    """Plant the journey and a manager "manager-1" (password "correct horse"); return the
    web and the WhatsApp conversations."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [ev.SECRET]}
    start = timezone.now() - timedelta(seconds=30)
    ref = {"channel": "web", "external_id": "chat-b"}

    def send(events, msg_id):
        response = ev.post(client, json.dumps(events).encode(), msg_id=msg_id)
        assert response.status_code == 200, response.content

    send([ev.message("b-1", "visitor-b", at=start.isoformat(), external_id="chat-b"),
          {"type": "customer.identified", "id": "b-id", "data": {
              "conversation": ref, "customer": {"phone": PHONE, "name": "Lucía"}}}], "msg_b1")
    token = otlp_token_issue(sender="agent")
    t0 = int((start + timedelta(seconds=1)).timestamp() * 1e9)
    ms = 1_000_000
    conversation = {"gen_ai.conversation.id": "chat-b"}
    turn = export(
        span(5, 1, "invoke_agent Brisa", {"gen_ai.operation.name": "invoke_agent",
                                          "gen_ai.agent.name": "Brisa", **conversation},
             start_ns=t0, duration_ms=4200),
        span(5, 2, "chat gpt-4o", {"gen_ai.operation.name": "chat",
                                   "gen_ai.request.model": "gpt-4o",
                                   "gen_ai.usage.input_tokens": 812,
                                   "gen_ai.usage.output_tokens": 41,
                                   "gen_ai.response.finish_reasons": ["tool_calls"]},
             parent=1, start_ns=t0 + 50 * ms, duration_ms=1200),
        span(5, 3, "execute_tool order_status", {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "order_status",
            "gen_ai.tool.call.arguments": '{"order": "4411"}', "error.type": "TimeoutError"},
             parent=1, start_ns=t0 + 1300 * ms, duration_ms=1000, error="carrier API timed out"),
        span(5, 4, "retrieval kb", {"gen_ai.operation.name": "retrieval"},
             parent=1, start_ns=t0 + 2350 * ms, duration_ms=450),
        span(5, 5, "chat gpt-4o", {"gen_ai.operation.name": "chat",
                                   "gen_ai.request.model": "gpt-4o",
                                   "gen_ai.response.finish_reasons": ["stop"]},
             parent=1, start_ns=t0 + 2850 * ms, duration_ms=1250),
    )
    assert otlp_post(client, turn.SerializeToString(), token).status_code == 200
    after = start + timedelta(seconds=1, milliseconds=4200 + 2000)
    send([{"type": "handoff.requested", "id": "b-req", "timestamp": after.isoformat(),
           "data": {"conversation": ref, "requested_by": "ai"}},
          {"type": "conversation.closed", "id": "b-close",
           "timestamp": (after + timedelta(seconds=5)).isoformat(),
           "data": {"conversation": ref}}], "msg_b2")
    assert TwilioClient(client).message(twilio_fixture("inbound_whatsapp_media")
                                        ).status_code == 200
    roles_ensure()
    User.objects.create_user("manager-1", password="correct horse").groups.add(
        Group.objects.get(name="manager"))
    return Conversation.objects.get(channel="web"), Conversation.objects.get(channel="whatsapp")
