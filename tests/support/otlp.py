"""OTLP test helpers: export spans with the real OpenTelemetry SDK and its OTLP/HTTP
exporter, and build export bodies by hand with the opentelemetry-proto messages."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

PATH = "/hooks/otlp/v1/traces"


def sdk_spans(turn: Callable[[Any], None], *, service: str = "support-agent") -> list[Any]:
    """The finished spans of `turn(tracer)`, traced by the real SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    turn(provider.get_tracer("support-agent", "1.0"))
    provider.shutdown()
    return list(memory.get_finished_spans())


def sdk_export(base_url: str, token: str, spans: list[Any], *,
               gzip_body: bool = False) -> SpanExportResult:
    """Export `spans` in one request with the SDK's OTLP/HTTP (protobuf) exporter."""
    exporter = OTLPSpanExporter(
        endpoint=base_url + PATH, headers={"Authorization": f"Bearer {token}"},
        compression=Compression.Gzip if gzip_body else Compression.NoCompression, timeout=10)
    try:
        return exporter.export(spans)
    finally:
        exporter.shutdown()


def agent_turn(conversation_id: str, *, tool_fails: bool = False) -> Callable[[Any], None]:
    """One AI turn as instrumented agents trace it (GenAI conventions 1.37+): agent →
    chat → tool → retrieval → chat."""

    def turn(tracer: Any) -> None:
        with tracer.start_as_current_span("invoke_agent Brisa", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "Brisa",
                "gen_ai.provider.name": "openai",
                "gen_ai.conversation.id": conversation_id}):
            with tracer.start_as_current_span("chat gpt-4o", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.request.temperature": 0.2,
                    "gen_ai.usage.input_tokens": 812, "gen_ai.usage.output_tokens": 41,
                    "gen_ai.response.finish_reasons": ["tool_calls"],
                    "gen_ai.system_instructions":
                        '[{"type": "text", "content": "You are Brisa, a support agent."}]',
                    "gen_ai.input.messages":
                        '[{"role": "user", "parts": [{"type": "text", '
                        '"content": "Where is my order 4411?"}]}]'}):
                pass
            with tracer.start_as_current_span("execute_tool order_status", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "order_status",
                    "gen_ai.tool.call.arguments": '{"order": "4411"}',
                    "gen_ai.tool.call.result": '{"status": "lost in transit"}'}) as tool:
                if tool_fails:
                    tool.set_status(StatusCode.ERROR, "carrier API timed out")
                    tool.set_attribute("error.type", "TimeoutError")
            with tracer.start_as_current_span("retrieval kb", attributes={
                    "gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb"}):
                pass
            with tracer.start_as_current_span("chat gpt-4o", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 60,
                    "gen_ai.response.finish_reasons": ["stop"],
                    "gen_ai.output.messages":
                        '[{"role": "assistant", "parts": [{"type": "text", "content": '
                        '"Your parcel is lost; I am passing you to a colleague."}], '
                        '"finish_reason": "stop"}]'}):
                pass

    return turn


def kv(key: str, value: Any) -> KeyValue:
    any_value = AnyValue()
    if isinstance(value, bool):
        any_value.bool_value = value
    elif isinstance(value, int):
        any_value.int_value = value
    elif isinstance(value, float):
        any_value.double_value = value
    elif isinstance(value, list):
        any_value.array_value.values.extend(AnyValue(string_value=str(v)) for v in value)
    else:
        any_value.string_value = str(value)
    return KeyValue(key=key, value=any_value)


def span(trace: int, span_id: int, name: str, attrs: dict[str, Any], *, parent: int = 0,
         start_ns: int = 1_764_000_000_000_000_000, duration_ms: int = 100,
         error: str = "") -> Span:
    message = Span(
        trace_id=trace.to_bytes(16, "big"), span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"", name=name,
        start_time_unix_nano=start_ns, end_time_unix_nano=start_ns + duration_ms * 1_000_000,
        attributes=[kv(k, v) for k, v in attrs.items()])
    if error:
        message.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=error))
    return message


def export(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource={"attributes": [kv(k, v) for k, v in (resource or {}).items()]},
        scope_spans=[ScopeSpans(scope={"name": "test"}, spans=list(spans))])])


def post(client, body: bytes, token: str, *, content_type="application/x-protobuf",
         gzip_body=False, **headers: str):
    if gzip_body:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return client.post(PATH, body, content_type=content_type,
                       headers={"Authorization": f"Bearer {token}", **headers})


def answer(response) -> ExportTraceServiceResponse:
    message = ExportTraceServiceResponse()
    message.ParseFromString(response.content)
    return message
