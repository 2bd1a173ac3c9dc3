"""OTLP/HTTP traces in, end to end: the real OpenTelemetry SDK traces an AI turn and its
OTLP/HTTP exporter sends it to a live server (protobuf, plain and gzip; and the same spans
as OTLP/JSON); the AI steps, their tree and their conversation are found in the database."""

import json

import pytest
import requests
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from channels.tokens import otlp_token_issue, otlp_tokens_revoke
from conversations.models import AIStep, Conversation, RawEvent
from tests.support import events as ev
from tests.support.otlp import PATH, agent_turn, sdk_export, sdk_spans

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token():
    return otlp_token_issue(sender="support-agent")


def _steps(conversation_id: str):
    conversation = Conversation.objects.get(keys__key=f"events:{conversation_id}")
    return conversation, list(AIStep.objects.filter(conversation=conversation)
                              .order_by("occurred_at", "id"))


def _otlp_json(spans) -> str:
    """The spans as OTLP/JSON (hex ids, lowerCamelCase), as a JSON exporter sends them."""
    def value(v):
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        if isinstance(v, tuple | list):
            return {"arrayValue": {"values": [value(x) for x in v]}}
        return {"stringValue": str(v)}

    return json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{
        "scope": {"name": "support-agent"}, "spans": [{
            "traceId": f"{s.context.trace_id:032x}", "spanId": f"{s.context.span_id:016x}",
            "parentSpanId": f"{s.parent.span_id:016x}" if s.parent else "",
            "name": s.name, "kind": 1, "startTimeUnixNano": str(s.start_time),
            "endTimeUnixNano": str(s.end_time),
            "attributes": [{"key": k, "value": value(v)} for k, v in s.attributes.items()],
            "status": {"code": s.status.status_code.value, "message": s.status.description or ""},
        } for s in spans]}]}]})


@pytest.mark.parametrize("gzip_body", [False, True], ids=["plain", "gzip"])
def test_an_sdk_export_becomes_ai_steps_with_their_tree(live_server, token, gzip_body):
    spans = sdk_spans(agent_turn("chat-77"))
    assert sdk_export(live_server.url, token, spans, gzip_body=gzip_body) == \
        SpanExportResult.SUCCESS

    conversation, steps = _steps("chat-77")
    assert conversation.channel == "web"
    assert [s.operation for s in steps] == [
        "invoke_agent", "chat", "execute_tool", "retrieval", "chat"]
    agent, first, tool, retrieval, last = steps
    assert len({s.trace_id for s in steps}) == 1 and len(agent.trace_id) == 32
    assert agent.parent_span_id == ""
    assert {s.parent_span_id for s in steps[1:]} == {agent.span_id}
    assert first.request_model == "gpt-4o" and first.response_model == "gpt-4o-2024-08-06"
    assert (first.input_tokens, first.output_tokens) == (812, 41)
    assert first.finish_reason == "tool_calls"
    assert first.provider_name == "openai" and first.parameters == {"temperature": 0.2}
    assert first.system_prompt == "You are Brisa, a support agent."
    assert first.input_messages == [{"role": "user", "content": "Where is my order 4411?"}]
    assert tool.tool_name == "order_status" and tool.tool_arguments == {"order": "4411"}
    assert tool.tool_result == {"status": "lost in transit"} and tool.error_type == ""
    assert retrieval.span_name == "retrieval kb"
    assert last.output_messages[0]["content"].startswith("Your parcel is lost")
    assert agent.agent_name == "Brisa" and agent.latency_ms is not None
    stored = RawEvent.objects.filter(provider="otlp")
    assert stored.count() == 5 and set(stored.values_list("status", flat=True)) == {"processed"}


def test_re_export_and_the_same_spans_as_json_store_nothing_twice(live_server, token):
    spans = sdk_spans(agent_turn("chat-88", tool_fails=True))
    assert sdk_export(live_server.url, token, spans) == SpanExportResult.SUCCESS
    assert sdk_export(live_server.url, token, spans, gzip_body=True) == SpanExportResult.SUCCESS
    answer = requests.post(live_server.url + PATH, data=_otlp_json(spans), timeout=10,
                           headers={"Content-Type": "application/json",
                                    "Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    parsed = json_format.Parse(answer.text, ExportTraceServiceResponse())
    assert parsed.partial_success.rejected_spans == 0

    assert RawEvent.objects.filter(provider="otlp").count() == 5
    _, steps = _steps("chat-88")
    assert len(steps) == 5
    tool = next(s for s in steps if s.operation == "execute_tool")
    assert tool.error_type == "TimeoutError" and tool.tool_error == "carrier API timed out"


def test_the_json_encoding_alone_gives_the_same_steps(live_server, token):
    spans = sdk_spans(agent_turn("chat-55"))
    answer = requests.post(live_server.url + PATH, data=_otlp_json(spans), timeout=10,
                           headers={"Content-Type": "application/json",
                                    "Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    _, steps = _steps("chat-55")
    assert [s.operation for s in steps] == [
        "invoke_agent", "chat", "execute_tool", "retrieval", "chat"]
    assert steps[1].input_tokens == 812 and steps[1].finish_reason == "tool_calls"
    assert {s.parent_span_id for s in steps[1:]} == {steps[0].span_id}


def test_spans_join_the_conversation_the_events_endpoint_opened(live_server, token, client,
                                                                settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [ev.SECRET]}
    body = json.dumps(ev.message("m-1", "visitor-9", at="2026-12-05T10:00:00Z",
                                 external_id="chat-99")).encode()
    assert ev.post(client, body, msg_id="msg_otlp_1").status_code == 200
    opened = Conversation.objects.get(keys__key="events:chat-99")

    sdk_export(live_server.url, token, sdk_spans(agent_turn("chat-99")))

    conversation, steps = _steps("chat-99")
    assert conversation.pk == opened.pk and conversation.customer_address == "visitor-9"
    assert len(steps) == 5


def test_a_bad_or_revoked_token_is_refused_and_nothing_is_stored(live_server, token):
    spans = sdk_spans(agent_turn("chat-1"))
    assert sdk_export(live_server.url, "hat_not-a-token", spans) == SpanExportResult.FAILURE
    otlp_tokens_revoke(sender="support-agent")
    assert sdk_export(live_server.url, token, spans) == SpanExportResult.FAILURE
    assert not RawEvent.objects.filter(provider="otlp").exists()
    answer = requests.post(live_server.url + PATH, data=b"", timeout=10, headers={
        "Content-Type": "application/x-protobuf", "Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
