"""The project's own signed JSON events (`POST /hooks/events/`): web chat, the AI agent
platform and the helpdesk.

Signed per the Standard Webhooks spec (headers webhook-id, webhook-timestamp,
webhook-signature), verified with the `standardwebhooks` package against every configured
secret; timestamps more than 5 minutes off are refused (replay protection). The webhook-id
is the idempotency key. The body is one event or a batch (a JSON array).

Each event type has a JSON Schema in channels/schemas/; the types supported so far are
the keys of BUILDERS. A batch with any invalid event (schema violation, unknown type, a
time without an offset) is refused whole with a 400 listing each problem with its JSON
path, and nothing is stored. A valid batch is stored as one raw event per event (its exact
text in the signed body, dedupe key `webhook:<id>:<index>`; a single event:
`webhook:<id>`), in one statement, so the applier applies and fails each on its own: one
event that cannot be applied does not take the rest of its batch with it.
"""

import binascii
import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import fastjsonschema
from django.http import HttpRequest, JsonResponse
from django.utils.dateparse import parse_datetime
from jsonschema import Draft202012Validator
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from conversations.applier import raw_events_refresh
from conversations.conf import auditor_settings
from conversations.events import (
    AIStepEvent,
    ConversationRef,
    IdentifyEvent,
    LifecycleEvent,
    MessageEvent,
    NormalizationError,
    NormalizedEvent,
    OutcomeEvent,
    StatusEvent,
)
from conversations.models import RawEvent
from conversations.raw_events import StoreResult

from .base import (
    RawEventSpec,
    WebhookError,
    WebhookForbidden,
    WebhookUnsupportedMediaType,
    WebhookView,
    thread_key,
)
from .email import message_ids

PROVIDER = "events"
SCHEMA_DIR = Path(__file__).with_name("schemas")


def event_schema(event_type: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{event_type}.json").read_text(encoding="utf-8"))


@cache
def schema_validator(event_type: str) -> Draft202012Validator:
    """The authority on what is valid, and the one that lists every problem with its path."""
    return Draft202012Validator(event_schema(event_type))


@cache
def schema_accepts(event_type: str) -> Callable[[Any], Any]:
    """A compiled check of the same schema for the common case, a valid event: ~5 us per
    event against ~90 us for jsonschema's (which walks the schema anew each time). It only
    says yes or no: an event it refuses is checked again by `schema_validator`, which has
    the last word and finds every problem. The schemas use only keywords draft 7 shares
    with 2020-12; formats are not asserted (as jsonschema does not by default): times are
    checked by events_problems."""
    schema = event_schema(event_type)
    schema.pop("$schema", None)
    return fastjsonschema.compile(schema, use_formats=False)


class StandardWebhooksValidator:
    """Mixin: the request must carry a valid Standard Webhooks signature, made within 5 min."""

    def validate_request(self, request: HttpRequest) -> None:
        secrets = auditor_settings.EVENTS_SECRETS
        if not secrets:
            raise WebhookForbidden(
                "no events secret is configured (HANDOFF_AUDITOR_EVENTS_SECRETS)",
                code="not_configured",
            )
        headers = {name: request.headers.get(name, "") for name in (
            "webhook-id", "webhook-timestamp", "webhook-signature")}
        if not all(headers.values()):
            raise WebhookForbidden(
                "missing webhook-id, webhook-timestamp or webhook-signature header",
                code="missing_signature",
            )
        reason = "no matching signature"
        for secret in secrets:
            try:
                Webhook(secret).verify(request.body, headers, json_parse=False)
                return
            except WebhookVerificationError as exc:
                reason = str(exc)
            except (ValueError, binascii.Error, UnicodeDecodeError):
                # A malformed signature header or a body that is not UTF-8: not verifiable.
                reason = "malformed signature header or body"
        raise WebhookForbidden(f"webhook signature refused: {reason}", code="invalid_signature")


def _when(value: str | None, default: datetime, where: str) -> datetime:
    if not value:
        return default
    parsed = parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise NormalizationError(f"{where}: {value!r} is not an RFC 3339 time with an offset")
    return parsed


def _message_created(event: dict[str, Any], at: datetime, where: str) -> MessageEvent:
    data = event["data"]
    author = data["author"]
    provider_message_id = data.get("provider_message_id") or None
    return MessageEvent(
        channel=data["channel"],
        direction=data["direction"],
        author_kind=author["kind"],
        provider=data.get("provider") or PROVIDER,
        provider_message_id=provider_message_id,
        business_address=_address(data["channel"], data["conversation"]["business_address"]),
        customer_address=_address(data["channel"], data["conversation"]["customer_address"]),
        occurred_at=_when(data.get("sent_at"), at, f"{where} data.sent_at"),
        body=data.get("body", ""),
        author_id=author.get("id", ""),
        author_name=author.get("name", ""),
        media=[
            {"url": m.get("url", ""), "content_type": m.get("content_type", "")}
            for m in data.get("media", [])
        ],
        metadata=data.get("metadata", {}),
        conversation_external_id=data["conversation"].get("external_id", ""),
    )


def _message_status(event: dict[str, Any], at: datetime, where: str) -> StatusEvent:
    data = event["data"]
    return StatusEvent(
        provider=data.get("provider") or PROVIDER,
        provider_message_id=data["provider_message_id"],
        status=data["status"],
        provider_status=data["status"],
        occurred_at=_when(data.get("occurred_at"), at, f"{where} data.occurred_at"),
        error_code=data.get("error_code", ""),
        error_message=data.get("error_message", ""),
    )


def _address(channel: str, address: str) -> str:
    """WhatsApp addresses as Twilio writes them ("whatsapp:+1415...") name the same
    conversation as the bare number the Twilio webhooks store."""
    if channel == "whatsapp" and address[:9].lower() == "whatsapp:":
        return address[9:].strip()
    return address


def _ref(data: dict[str, Any]) -> ConversationRef:
    conversation = data["conversation"]
    channel = conversation["channel"]
    return ConversationRef(
        channel=channel,
        business_address=_address(channel, conversation.get("business_address", "")),
        customer_address=_address(channel, conversation.get("customer_address", "")),
        external_id=conversation.get("external_id", ""),
    )


def _ai_step(event: dict[str, Any], at: datetime, where: str) -> AIStepEvent:
    data = event["data"]
    usage, tool, prompt = data.get("usage", {}), data.get("tool", {}), data.get("prompt", {})
    produced = data.get("message", {})

    def whole(value: float | None) -> int | None:
        return None if value is None else round(value)

    fields = {
        "agent_name": data.get("agent", {}).get("name", ""),
        "provider_name": data.get("provider", ""),
        "request_model": data.get("request_model", ""),
        "response_model": data.get("response_model", ""),
        "prompt_name": prompt.get("name", ""),
        "prompt_version": prompt.get("version", ""),
        "parameters": data.get("parameters", {}),
        "input_tokens": usage.get("input_tokens"),
        "output_tokens": usage.get("output_tokens"),
        "cached_tokens": usage.get("cached_tokens"),
        "cost": None if data.get("cost") is None else str(data["cost"]),
        "latency_ms": whole(data.get("latency_ms")),
        "time_to_first_token_ms": whole(data.get("time_to_first_token_ms")),
        "finish_reason": data.get("finish_reason", ""),
        "tool_name": tool.get("name", ""),
        "tool_arguments": tool.get("arguments"),
        "tool_result": tool.get("result"),
        "tool_error": tool.get("error", ""),
        "retrieved_documents": data.get("retrieved_documents", []),
        "guardrails": data.get("guardrails", []),
        "system_prompt": data.get("system_prompt", ""),
        "system_prompt_hash": data.get("system_prompt_hash", ""),
        "trace_id": data.get("trace_id", "").lower(),
        "span_id": data.get("span_id", "").lower(),
        "parent_span_id": data.get("parent_span_id", "").lower(),
        "input_messages": [{"role": m["role"], "content": m.get("content", "")}
                           for m in data.get("input", {}).get("messages", [])],
        "input_messages_hash": data.get("input", {}).get("hash", ""),
        "output_text": data.get("output", {}).get("text", ""),
        "retrieval_query": data.get("retrieval", {}).get("query", ""),
        "tool_retries": tool.get("retries"),
        "tool_approval": tool.get("approval"),
    }
    message_provider = produced.get("provider", "")
    message_provider_id = produced.get("provider_message_id", "")
    if message_provider == "email" and message_provider_id:
        # E-mail messages are recorded under their Message-ID as "<id@host>"; the platform
        # may send it with or without the brackets.
        message_provider_id = (message_ids(message_provider_id) or [message_provider_id])[0]
    return AIStepEvent(
        conversation=_ref(data),
        external_id=event["id"],
        occurred_at=at,
        operation=data["operation"],
        fields=fields,
        message_provider=message_provider,
        message_provider_id=message_provider_id,
    )


def _lifecycle(event: dict[str, Any], at: datetime, where: str) -> LifecycleEvent:
    data = event["data"]
    agent = data.get("agent", {})
    requested_by = data.get("requested_by", "")
    actor_kind = {"ai": "ai", "customer": "customer", "rule": "system"}.get(requested_by, "")
    if agent:
        actor_kind = "human"
    return LifecycleEvent(
        conversation=_ref(data),
        external_id=event["id"],
        type=event["type"],
        occurred_at=at,
        actor_kind=actor_kind,
        actor_id=agent.get("id", ""),
        actor_name=agent.get("name", ""),
        data={**{k: v for k, v in data.items() if k not in {"conversation", "agent"}},
              **({"team": agent["team"]} if agent.get("team") else {})},
    )


def _outcome(event: dict[str, Any], at: datetime, where: str) -> OutcomeEvent:
    data = event["data"]
    fields = {name: data.get(name)
              for name in ("csat", "nps", "resolved", "converted", "escalated")}
    revenue = data.get("revenue")
    fields.update(verdict=data.get("verdict", ""), attributes=data.get("attributes", {}),
                  revenue_amount=Decimal(str(revenue["amount"])) if revenue else None,
                  revenue_currency=revenue["currency"] if revenue else "")
    return OutcomeEvent(
        conversation=_ref(data), external_id=event["id"], occurred_at=at, fields=fields
    )


def _identified(event: dict[str, Any], at: datetime, where: str) -> IdentifyEvent:
    customer = event["data"]["customer"]
    return IdentifyEvent(
        conversation=_ref(event["data"]), external_id=event["id"], occurred_at=at,
        phone=customer.get("phone", ""), email=customer.get("email", ""),
        customer_id=customer.get("id", ""), name=customer.get("name", ""))


BUILDERS = {
    "message.created": _message_created,
    "message.status": _message_status,
    "ai.step": _ai_step,
    "handoff.requested": _lifecycle,
    "handoff.queued": _lifecycle,
    "handoff.assigned": _lifecycle,
    "handoff.returned": _lifecycle,
    "conversation.resolved": _lifecycle,
    "conversation.closed": _lifecycle,
    "outcome.recorded": _outcome,
    "customer.identified": _identified,
}
TIME_FIELDS = ("timestamp", "data.sent_at", "data.occurred_at")


MAX_DEPTH = 32  # arrays and objects inside each other; the schemas need 5


class BodyRefused(ValueError):
    """JSON, but not a body we take (nested too deep, a number no column or jsonb holds)."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyRefused(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise BodyRefused(f"{name} is not a JSON number")


def _depth_check(payload: Any) -> None:
    stack = [(payload, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BodyRefused(f"nested deeper than {MAX_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


def body_parse(body: str) -> Any:
    """The JSON of a body: standard JSON only (no NaN or Infinity, no number that becomes
    one), at most MAX_DEPTH levels deep. Raises ValueError (BodyRefused: JSON we refuse)."""
    try:
        payload = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError as exc:
        raise BodyRefused(f"nested deeper than {MAX_DEPTH} levels") from exc
    if isinstance(payload, dict | list):
        _depth_check(payload)
    return payload


@lru_cache(maxsize=16)
def batch_checked(body: str) -> tuple[tuple[Any, ...], tuple[dict[str, Any], ...]]:
    """The events of a body and their problems. Cached: the view checks a batch and the
    normalizer, in the same request, gets the same body, so it is parsed and validated
    once. Callers must not mutate what it returns. Raises ValueError for non-JSON or JSON
    we refuse (body_parse)."""
    payload = body_parse(body)
    events = tuple(payload) if isinstance(payload, list) else (payload,)
    if not all(isinstance(e, dict) for e in events):
        return events, ()
    return events, tuple(events_problems(list(events)))


def events_problems(events: list[Any]) -> list[dict[str, Any]]:
    """Every problem in a batch, as {"event": index, "path": "data.channel", "message"}."""
    problems: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        event_type = event.get("type") if isinstance(event, dict) else None
        if event_type not in BUILDERS:
            problems.append({"event": index, "path": "type", "message":
                             f"{event_type!r} is not a supported event type "
                             f"({', '.join(sorted(BUILDERS))})"})
            continue
        try:
            schema_accepts(event_type)(event)
        except fastjsonschema.JsonSchemaException:
            for error in schema_validator(event_type).iter_errors(event):
                path = ".".join(str(p) for p in error.absolute_path) or "(event)"
                problems.append({"event": index, "path": path, "message": error.message})
        for dotted in TIME_FIELDS:
            value: Any = event
            for part in dotted.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str):
                parsed = parse_datetime(value) if value else None
                if parsed is None or parsed.tzinfo is None:
                    problems.append({"event": index, "path": dotted, "message":
                                     f"{value!r} is not an RFC 3339 time with an offset"})
    return problems


# JSON escapes of what no database text column can hold: NUL, and UTF-16 surrogates (a
# lone one, e.g. half an emoji cut by a sender, cannot be encoded as UTF-8).
_UNSTORABLE_ESCAPE = re.compile(r"\\u(0000|d[89a-f])", re.IGNORECASE)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable_text(text: str) -> str:
    if not _UNSTORABLE.search(text):
        return text
    # Pairs become their character again; a lone surrogate becomes U+FFFD.
    text = text.replace("\x00", "\ufffd")
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def storable(value: Any) -> Any:
    """A copy of a parsed event whose strings any database can store (NUL and lone
    surrogates replaced by U+FFFD, as Twilio's adapter does for NUL). Iterative: the
    schema bounds what is stored, not how deep a sender nests."""
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        parent, key, item = stack.pop()
        if isinstance(item, str):
            parent[key] = _storable_text(item)
        elif isinstance(item, dict):
            copy = {_storable_text(k): v for k, v in item.items()}
            parent[key] = copy
            stack.extend((copy, k, v) for k, v in copy.items())
        elif isinstance(item, list):
            copy_list = list(item)
            parent[key] = copy_list
            stack.extend((copy_list, i, v) for i, v in enumerate(copy_list))
    return root[0]


def array_items(body: str) -> list[str]:
    """The exact text of each item of a JSON array body, as the sender signed it."""
    decoder = json.JSONDecoder()
    items: list[str] = []
    at = body.index("[") + 1
    while True:
        while body[at] in " \t\r\n,":
            at += 1
        if body[at] == "]":
            return items
        _, end = decoder.raw_decode(body, at)
        items.append(body[at:end])
        at = end


def partition_key(event: dict[str, Any]) -> str:
    """Which conversation an event is about, as far as the event says: its external id, or
    its thread's addresses (see channels.base.thread_key); a status report, its message."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    conversation = data.get("conversation")
    if isinstance(conversation, dict):
        if conversation.get("external_id"):
            return f"external:{conversation['external_id']}"
        return thread_key(str(conversation.get("business_address", "")),
                          str(conversation.get("customer_address", "")))
    return f"message:{data.get('provider_message_id', '')}"


class EventsWebhookView(StandardWebhooksValidator, WebhookView):
    provider = PROVIDER
    kind = "events"

    def raw_event_specs(self, request: HttpRequest) -> list[RawEventSpec]:
        if request.content_type != "application/json":
            raise WebhookUnsupportedMediaType(
                f"expected application/json, got {request.content_type or 'nothing'}"
            )
        try:
            body = request.body.decode("utf-8")
            events, problems = batch_checked(body)
        except BodyRefused as exc:
            raise WebhookError(f"body refused: {exc}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookError(f"body is not JSON: {exc}") from exc
        if not events or not all(isinstance(e, dict) for e in events):
            raise WebhookError("body must be an event object or a non-empty array of them")
        limit = auditor_settings.EVENTS_MAX_BATCH
        if len(events) > limit:
            raise WebhookError(f"{len(events)} events in one batch; at most {limit}",
                               code="batch_too_large")
        if problems:
            raise WebhookError(
                f"{len(problems)} problem(s) in {len(events)} event(s); nothing was stored",
                code="invalid_events",
                extra={"problems": problems[:100]},
            )
        webhook_id = request.headers["webhook-id"]
        common = {"kind": self.kind, "content_type": request.content_type,
                  "headers": self.relevant_headers(request), "url": request.build_absolute_uri()}
        if body.lstrip().startswith("["):
            return [RawEventSpec(dedupe_key=f"webhook:{webhook_id}:{index}", body=text,
                                 partition_key=partition_key(event), **common)
                    for index, (event, text) in enumerate(zip(events, array_items(body),
                                                               strict=True))]
        return [RawEventSpec(dedupe_key=f"webhook:{webhook_id}", body=body,
                             partition_key=partition_key(events[0]), **common)]

    def success_response(self, request: HttpRequest, stored: StoreResult) -> JsonResponse:
        raws = stored.raw_events
        raw_events_refresh(raws)  # applied already where the applier runs inline
        statuses = {raw.status for raw in raws}
        if len(statuses) == 1:
            status = statuses.pop()
        else:
            status = "pending" if RawEvent.Status.PENDING in statuses else "partial"
        failed = [{"event": index, "raw_event": raw.pk, "error": raw.error}
                  for index, raw in enumerate(raws) if raw.status == RawEvent.Status.FAILED]
        return JsonResponse({
            "status": status,
            "duplicate": stored.all_duplicate,
            "raw_event": raws[0].pk,
            "raw_events": [raw.pk for raw in raws],
            **({"failed": failed, "error": failed[0]["error"]} if failed else {}),
        })

    @classmethod
    def normalize(cls, raw_event: RawEvent) -> list[NormalizedEvent]:
        events, problems = batch_checked(raw_event.body)
        if problems:  # stored before a schema change; reprocessing reports why
            first = problems[0]
            raise NormalizationError(
                f"event {first['event']} at {first['path']}: {first['message']}"
                + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
            )
        if _UNSTORABLE_ESCAPE.search(raw_event.body):
            events = tuple(storable(event) for event in events)
        normalized: list[NormalizedEvent] = []
        for index, event in enumerate(events):
            where = f"event {index}"
            at = _when(event.get("timestamp"), raw_event.received_at, f"{where} timestamp")
            normalized.append(BUILDERS[event["type"]](event, at, where))
        return normalized


WEBHOOK_VIEWS: tuple[type[WebhookView], ...] = (EventsWebhookView,)
