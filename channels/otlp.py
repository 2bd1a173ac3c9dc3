"""OpenTelemetry traces in: OTLP/HTTP at `POST /hooks/otlp/v1/traces` (docs/otlp.md).

The request: a bearer token of a sender (channels.tokens; 401 without a valid one), a body
in either OTLP encoding (`application/x-protobuf`, `application/json`), optionally gzip
(`Content-Encoding: gzip`), at most OTLP_MAX_BODY_BYTES once unzipped (413). It is decoded
with the `opentelemetry-proto` messages (400 if it does not decode) and stored as **one raw
event per span**, dedupe key `span:<trace id>:<span id>`:

- a re-sent export (the SDK retries on 503 and timeouts; a collector may re-batch spans
  differently) stores nothing new, whatever batch the span comes back in;
- the applier applies and fails each span on its own, as the events endpoint's batches;
- spans of one conversation share an applier partition (`external:<conversation id>`,
  the events endpoint's key for the same conversation) and are applied in arrival order.

Each raw event holds the span as JSON (ids in hex, attributes as a flat object) with its
resource's attributes and scope, and the conversation id another span of the same trace
in the same export named, if the span names none itself. Nothing is mapped in the
request: the applier's normalizer (`OTLPTracesView.normalize`, channels.otlp_mapping)
turns AI spans into `AIStepEvent`s on the one ingest path; other spans become nothing but
stay in their raw event.

The answer is the OTLP one: `ExportTraceServiceResponse` in the request's encoding, with
`partial_success.rejected_spans` counting spans refused (ids missing or malformed).
Storage trouble answers 503 + Retry-After (the base view), which OTLP exporters retry.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from conversations.conf import auditor_settings
from conversations.events import AIStepEvent, ConversationRef, NormalizationError
from conversations.json_text import json_loads
from conversations.models import Channel, RawEvent
from conversations.raw_events import StoreResult

from .base import RawEventSpec, WebhookError, WebhookUnsupportedMediaType, WebhookView
from .otlp_mapping import (
    BUSINESS_ADDRESS,
    CUSTOMER_ADDRESS,
    MESSAGE_ID,
    MESSAGE_PROVIDER,
    conversation_of,
    nanos_time,
    operation_of,
    step_fields,
)
from .tokens import otlp_token_sender

PROVIDER = "otlp"
KIND = "span"
PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPE = "application/json"
_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)
CHANNELS = frozenset(Channel.values)  # Channel.values builds its list on every use


class WebhookUnauthorized(WebhookError):
    status = 401
    code = "unauthorized"

    def response(self) -> HttpResponse:
        response = super().response()
        response["WWW-Authenticate"] = 'Bearer realm="otlp"'
        return response


class WebhookTooLarge(WebhookError):
    status = 413
    code = "too_large"


class BearerTokenValidator:
    """Mixin: `Authorization: Bearer <token>` naming an active sender token."""

    sender: str = ""

    def validate_request(self, request: HttpRequest) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise WebhookUnauthorized("missing `Authorization: Bearer <token>` header")
        sender = otlp_token_sender(token=token.strip())
        if sender is None:
            raise WebhookUnauthorized("bearer token refused (unknown or revoked)")
        self.sender = sender


# --- decoding -----------------------------------------------------------------------------


def gunzip(body: bytes, limit: int) -> bytes:
    """The unzipped body; 413 past `limit` bytes (a small bomb stops there), 400 if broken."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise WebhookError(f"body is not valid gzip: {exc}", code="undecodable") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise WebhookTooLarge(f"body is larger than {limit} bytes once unzipped")
    if not inflater.eof:
        raise WebhookError("gzip body is truncated", code="undecodable")
    return out


_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids(item: dict[str, Any]) -> None:
    """OTLP/JSON writes trace and span ids in hex, where protobuf's JSON mapping expects
    base64 (the one difference the spec makes)."""
    for name in _ID_FIELDS:
        value = item.get(name)
        if isinstance(value, str) and value:
            try:
                item[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError as exc:
                raise WebhookError(f"{name} {value[:40]!r} is not hex",
                                   code="undecodable") from exc


def request_decode(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    if content_type in PROTOBUF_TYPES:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise WebhookError(f"body is not an OTLP protobuf export: {exc}",
                               code="undecodable") from exc
        return message
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("the body is not a JSON object")
        for resource in _items(payload, "resourceSpans", "resource_spans"):
            for scope in _items(resource, "scopeSpans", "scope_spans"):
                for span in _items(scope, "spans"):
                    _hex_ids(span)
                    for link in _items(span, "links"):
                        _hex_ids(link)
        json_format.ParseDict(payload, message, ignore_unknown_fields=True)
    except WebhookError:
        raise
    except (ValueError, RecursionError, TypeError, AttributeError,
            json_format.ParseError) as exc:
        raise WebhookError(f"body is not an OTLP JSON export: {exc}",
                           code="undecodable") from exc
    return message


def _items(obj: Any, *names: str) -> list[Any]:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else None
        if isinstance(value, list):
            return [v for v in value if isinstance(v, dict)]
    return []


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as plain JSON."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)


def attributes(items: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in items}


def span_document(span: Any) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(), "name": span.name, "kind": span.kind,
        "start_ns": span.start_time_unix_nano, "end_ns": span.end_time_unix_nano,
        "attributes": attributes(span.attributes),
        "events": [{"name": e.name, "time_ns": e.time_unix_nano,
                    "attributes": attributes(e.attributes)} for e in span.events],
        "links": [{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
                   "attributes": attributes(link.attributes)} for link in span.links],
        "status": {"code": span.status.code, "message": span.status.message},
    }


def _span_problem(span: Any) -> str:
    if len(span.trace_id) != 16 or span.trace_id == _ZERO_TRACE:
        return "trace_id must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or span.span_id == _ZERO_SPAN:
        return "span_id must be 8 bytes, not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "parent_span_id must be 8 bytes or empty"
    return ""


# --- the view -----------------------------------------------------------------------------


class OTLPTracesView(BearerTokenValidator, WebhookView):
    provider = PROVIDER
    kind = KIND

    rejected: int = 0
    rejected_reason: str = ""
    answer_json: bool = False

    def check_body(self, request: HttpRequest) -> None:
        try:
            size = len(request.body)
        except RequestDataTooBig as exc:
            raise WebhookTooLarge(str(exc)) from exc
        limit = auditor_settings.OTLP_MAX_BODY_BYTES
        if size > limit:
            raise WebhookTooLarge(f"body is larger than {limit} bytes")

    def raw_event_specs(self, request: HttpRequest) -> list[RawEventSpec]:
        content_type = (request.content_type or "").lower()
        if content_type not in (*PROTOBUF_TYPES, JSON_TYPE):
            raise WebhookUnsupportedMediaType(
                f"expected application/x-protobuf or application/json, got "
                f"{content_type or 'nothing'}")
        self.answer_json = content_type == JSON_TYPE
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        body = request.body
        if encoding == "gzip":
            body = gunzip(body, auditor_settings.OTLP_MAX_BODY_BYTES)
        elif encoding not in ("", "identity"):
            raise WebhookUnsupportedMediaType(f"Content-Encoding {encoding!r}: only gzip")
        export = request_decode(body, content_type)
        return self.specs(export, request)

    def specs(self, export: ExportTraceServiceRequest, request: HttpRequest) -> list[RawEventSpec]:
        names = auditor_settings.OTLP_CONVERSATION_ATTRIBUTES
        docs: list[dict[str, Any]] = []
        conversations: dict[str, str] = {}  # trace id -> the conversation a span named
        problems: list[str] = []
        for resource_spans in export.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                scope = {"name": scope_spans.scope.name, "version": scope_spans.scope.version}
                for span in scope_spans.spans:
                    problem = _span_problem(span)
                    if problem:
                        problems.append(f"span {span.name[:60]!r}: {problem}")
                        continue
                    doc = span_document(span)
                    conversation = conversation_of(doc["attributes"], resource, names)
                    if conversation:
                        conversations.setdefault(doc["trace_id"], conversation)
                    docs.append({"resource": resource, "scope": scope, "span": doc})
        self.rejected = len(problems)
        self.rejected_reason = "; ".join(problems[:5])
        common = {"kind": self.kind, "content_type": "application/json",
                  "headers": {"sender": self.sender, **self.relevant_headers(request)},
                  "url": request.build_absolute_uri()}
        specs = []
        seen: set[str] = set()
        for doc in docs:
            span = doc["span"]
            key = f"span:{span['trace_id']}:{span['span_id']}"
            if key in seen:  # the same span twice in one export: the first is kept
                continue
            seen.add(key)
            conversation = conversations.get(span["trace_id"], "")
            if conversation:
                doc["trace"] = {"conversation_id": conversation}
            partition = (f"external:{conversation}" if conversation
                         else f"trace:{span['trace_id']}")
            specs.append(RawEventSpec(
                dedupe_key=key, body=orjson.dumps(doc).decode("utf-8"),
                partition_key=partition, **common))
        return specs

    def success_response(self, request: HttpRequest, stored: StoreResult) -> HttpResponse:
        answer = ExportTraceServiceResponse()
        if self.rejected:
            answer.partial_success.rejected_spans = self.rejected
            answer.partial_success.error_message = self.rejected_reason
        if self.answer_json:
            return HttpResponse(json_format.MessageToJson(answer, indent=None),
                                content_type=JSON_TYPE)
        return HttpResponse(answer.SerializeToString(), content_type=PROTOBUF_TYPES[0])

    @classmethod
    def normalize(cls, raw_event: RawEvent) -> list[AIStepEvent]:
        try:
            doc = json_loads(raw_event.body)
            span = doc["span"]
            attrs = span["attributes"]
        except (ValueError, KeyError, TypeError) as exc:
            raise NormalizationError(f"not a stored span: {exc}") from exc
        operation = operation_of(attrs)
        if operation is None:  # not an AI span: kept in its raw event only
            return []
        resource = doc.get("resource", {})
        conversation = (conversation_of(attrs, resource,
                                        auditor_settings.OTLP_CONVERSATION_ATTRIBUTES)
                        or doc.get("trace", {}).get("conversation_id", ""))
        name = auditor_settings.OTLP_CHANNEL_ATTRIBUTE
        channel = str(attrs.get(name) or resource.get(name)
                      or auditor_settings.OTLP_DEFAULT_CHANNEL)
        if channel not in CHANNELS:
            raise NormalizationError(f"{name} {channel!r} is not one of "
                                     f"{', '.join(Channel.values)}")
        ref = ConversationRef(
            channel=channel, external_id=conversation[:240], trace_id=span["trace_id"],
            customer_address=str(attrs.get(CUSTOMER_ADDRESS, ""))[:255],
            business_address=str(attrs.get(BUSINESS_ADDRESS, ""))[:255])
        fields = step_fields(span, operation)
        fields.update(trace_id=span["trace_id"], span_id=span["span_id"],
                      parent_span_id=span["parent_span_id"])
        return [AIStepEvent(
            conversation=ref, external_id=f"otlp:{span['trace_id']}:{span['span_id']}",
            occurred_at=nanos_time(span["start_ns"]), operation=operation, fields=fields,
            message_provider=str(attrs.get(MESSAGE_PROVIDER, ""))[:32],
            message_provider_id=str(attrs.get(MESSAGE_ID, ""))[:255],
        )]


WEBHOOK_VIEWS: tuple[type[WebhookView], ...] = (OTLPTracesView,)

