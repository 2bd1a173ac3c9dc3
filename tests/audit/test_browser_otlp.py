"""The span tree and the customer page in a real browser at 390 px: an AI turn exported
over OTLP/HTTP is drawn as a tree on a time axis with its failed tool
marked and the handoff decision that followed; the customer who came back on WhatsApp
after the dropped handoff has every conversation in one timeline."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import expect

from audit.roles import roles_ensure
from channels.tokens import otlp_token_issue
from conversations.models import Conversation
from tests.support import events as ev
from tests.support.browser import shot, sign_in
from tests.support.otlp import export, span
from tests.support.otlp import post as otlp_post
from tests.support.signing import twilio_fixture
from tests.support.twilio import TwilioClient

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PHONE = "+5215512345678"  # the WhatsApp fixture's customer


@pytest.fixture
def journey(client, settings):
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


def test_the_replay_draws_the_span_tree_at_390px(browser, live_server, journey):
    web, _ = journey
    page = sign_in(browser, live_server, "manager-1", width=390)
    page.goto(f"{live_server.url}/conversations/{web.pk}/")
    turn = page.locator(".k-ai_turn")
    expect(turn).to_have_count(1)
    expect(turn.locator(".span-row")).to_have_count(5)
    expect(turn.locator(".span-failed")).to_have_count(1)
    expect(turn.locator(".span-failed")).to_contain_text("carrier API timed out")
    expect(turn.locator(".span-row").first).to_contain_text("agent Brisa")
    decisions = turn.locator(".decision")
    expect(decisions.first).to_contain_text("Handoff requested by the AI, 2.0 s after the turn")
    expect(decisions.nth(1)).to_contain_text("Handoff abandoned, 7.0 s after the turn ended")
    expect(turn.locator(".axis span")).to_have_count(5)
    expect(turn.locator(".axis")).to_contain_text("4.2 s")
    expect(turn).to_contain_text("1 agent, 2 LLM calls, 1 tool, 1 retrieval in 4.2 s; 1 failed")
    # The tree: the agent at depth 0, the rest one level in.
    depths = [row.get_attribute("style") for row in turn.locator(".span-row").all()]
    assert depths == ["--depth:0"] + ["--depth:1"] * 4
    # Nothing wider than the phone.
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(
        e => e.getBoundingClientRect().right > 391).slice(0, 5).map(
        e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    assert width <= 390, (width, wide)
    turn.locator(".span-failed details summary").click()
    expect(turn.locator(".span-failed details")).to_contain_text("order_status")
    shot(page, "replay-span-tree-390")
    page.close()


def test_the_customer_page_has_every_channel_in_one_timeline_at_390px(browser, live_server,
                                                                       journey):
    web, whatsapp = journey
    assert web.customer_id == whatsapp.customer_id
    page = sign_in(browser, live_server, "manager-1", width=390)
    page.goto(f"{live_server.url}/customers/")
    expect(page.locator("#journey-metric")).to_contain_text("100%")
    page.click("text=Lucía")
    expect(page.locator("#lanes .span-row")).to_have_count(2)
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("Web chat")
    expect(timeline).to_contain_text("WhatsApp")
    expect(timeline).to_contain_text("came back on WhatsApp")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "customer-390")
    page.close()
