"""OpenTelemetry spans into AI steps: the vocabulary of the GenAI semantic conventions
(`gen_ai.*`, current and older releases), OpenInference (`openinference.span.kind`,
`llm.*`, `tool.*`, `retrieval.*`) and OpenLLMetry (`traceloop.*`, `llm.request.type`),
mapped onto the AIStep columns. Pure Python: a stored span (channels.otlp) in, an
AIStepEvent (or nothing) out.

Version differences handled here, each by a list of names tried in order (newest first):
the provider (`gen_ai.provider.name` since semconv 1.37, `gen_ai.system` before), tokens
(`gen_ai.usage.input_tokens` / `output_tokens`, `prompt_tokens` / `completion_tokens`
before 1.27), messages (`gen_ai.input.messages` / `gen_ai.output.messages` /
`gen_ai.system_instructions` attributes since 1.37, span events `gen_ai.*.message` and
`gen_ai.choice` before, indexed `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` in
OpenLLMetry), tool calls (`gen_ai.tool.call.arguments` / `result` since 1.37).
Spans that are none of these (HTTP, database, a CHAIN) map to nothing: they stay in
their raw event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from conversations.json_text import json_loads

# Operation names as the conventions spell them -> AIStep.Operation.
GEN_AI_OPERATIONS = {
    "chat": "chat", "text_completion": "chat", "generate_content": "chat",
    "completion": "chat", "execute_tool": "execute_tool", "embeddings": "embeddings",
    "embedding": "embeddings", "invoke_agent": "invoke_agent", "create_agent": "invoke_agent",
    "retrieval": "retrieval", "retrieve": "retrieval",
}
OPENINFERENCE_KINDS = {
    "LLM": "chat", "TOOL": "execute_tool", "RETRIEVER": "retrieval", "RERANKER": "retrieval",
    "AGENT": "invoke_agent", "EMBEDDING": "embeddings",
}
TRACELOOP_KINDS = {"agent": "invoke_agent", "tool": "execute_tool"}

PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model", "llm.model_name",
                 "embedding.model_name")
RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model", "llm.model_name")
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                "llm.token_count.prompt", "llm.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                 "llm.token_count.completion", "llm.usage.completion_tokens")
CACHED_TOKENS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                 "llm.token_count.prompt_details.cache_read")
AGENT_NAME = ("gen_ai.agent.name", "agent.name")
TOOL_NAME = ("gen_ai.tool.name", "tool.name", "tool_call.function.name")
TOOL_ARGUMENTS = ("gen_ai.tool.call.arguments", "tool_call.function.arguments")
TOOL_RESULT = ("gen_ai.tool.call.result",)
FINISH_REASONS = ("gen_ai.response.finish_reasons", "llm.response.finish_reason")
PROMPT_NAME = ("gen_ai.prompt.name", "llm.prompt_template.name")
PROMPT_VERSION = ("gen_ai.prompt.version", "llm.prompt_template.version")
PARAMETERS = ("temperature", "max_tokens", "top_p", "top_k", "frequency_penalty",
              "presence_penalty", "stop_sequences", "seed", "choice.count",
              "encoding_formats")
# Links a step to the message it produced (the message's provider and provider id).
MESSAGE_PROVIDER = "handoff_auditor.message.provider"
MESSAGE_ID = "handoff_auditor.message.provider_message_id"
CUSTOMER_ADDRESS = "handoff_auditor.customer_address"
BUSINESS_ADDRESS = "handoff_auditor.business_address"

STATUS_ERROR = 2
MAX_INT = 2**31 - 1  # the token columns


def _first(attrs: dict[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        value = attrs.get(name)
        if value not in (None, "", []):
            return value
    return None


def _text(value: Any, limit: int = 255) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _clean(text)[:limit]


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def _count(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= MAX_INT else None


def _json(value: Any) -> Any:
    """Attributes the conventions define as JSON arrive as a string (most SDKs) or, since
    complex attributes, structured; both are taken."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("[", "{", '"'):
            try:
                return json_loads(stripped)
            except ValueError:
                return value
    return value


def _scrub(value: Any) -> Any:
    """NUL cannot be stored in a text or jsonb column. Most steps have none: one C-speed
    look at the value as JSON (orjson writes NUL as \\u0000) spares the walk."""
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return value
    except TypeError:  # not JSON as orjson sees it (an integer past 64 bits): walk it
        pass
    return _scrub_walk(value)


def _scrub_walk(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, list):
        return [_scrub_walk(v) for v in value]
    if isinstance(value, dict):
        return {_clean(str(k)): _scrub_walk(v) for k, v in value.items()}
    return value


def operation_of(attrs: dict[str, Any]) -> str | None:
    """The AIStep operation a span stands for, or None (not an AI span)."""
    name = attrs.get("gen_ai.operation.name")
    if isinstance(name, str) and name:
        return GEN_AI_OPERATIONS.get(name.lower())
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind:
        return OPENINFERENCE_KINDS.get(kind.upper())
    kind = attrs.get("traceloop.span.kind")
    if isinstance(kind, str) and kind.lower() in TRACELOOP_KINDS:
        return TRACELOOP_KINDS[kind.lower()]
    request_type = attrs.get("llm.request.type")
    if isinstance(request_type, str) and request_type:
        return GEN_AI_OPERATIONS.get(request_type.lower())
    if _first(attrs, PROVIDER) and _first(attrs, REQUEST_MODEL):  # before operation.name
        return "chat"
    return None


def _indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """`prefix.0.role`, `prefix.0.content`, ... as [{"role", "content"}, ...]."""
    items: dict[int, dict[str, Any]] = {}
    dotted = prefix + "."
    for key, value in attrs.items():
        if not key.startswith(dotted):
            continue
        index, _, rest = key[len(dotted):].partition(".")
        if index.isdigit() and rest:
            items.setdefault(int(index), {})[rest.removeprefix("message.")] = value
    return [items[i] for i in sorted(items)]


def _parts_text(parts: Any) -> str:
    """The text of a message's content: a string, or semconv 1.37 parts."""
    if isinstance(parts, str):
        return parts
    if not isinstance(parts, list):
        return "" if parts is None else json.dumps(parts, ensure_ascii=False)
    out = []
    for part in parts:
        if not isinstance(part, dict):
            out.append(str(part))
        elif part.get("type") == "text" or "content" in part and "name" not in part:
            out.append(str(part.get("content", "")))
        elif part.get("type") == "tool_call":
            out.append(f"→ {part.get('name', '')}({_text(part.get('arguments'), 2000)})")
        elif part.get("type") == "tool_call_response":
            out.append(f"← {_text(part.get('response', part.get('result')), 2000)}")
        else:
            out.append(_text(part, 2000))
    return "\n".join(o for o in out if o)


def _messages(value: Any) -> list[dict[str, Any]]:
    """Messages in one shape: [{"role", "content"(text), "finish_reason"?}]."""
    value = _json(value)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return [{"role": "", "content": _text(value, 100_000)}] if value else []
    out = []
    for item in value:
        if not isinstance(item, dict):
            out.append({"role": "", "content": _text(item, 100_000)})
            continue
        content = item.get("parts", item.get("content", item.get("message", "")))
        if isinstance(content, dict):  # old gen_ai.choice: {"message": {"content": ...}}
            content = content.get("content", content)
        message = {"role": str(item.get("role", "")), "content": _parts_text(content)}
        if item.get("finish_reason"):
            message["finish_reason"] = str(item["finish_reason"])
        out.append(message)
    return out


def _event_messages(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                              list[dict[str, Any]]]:
    """Semconv before 1.37: one span event per message (gen_ai.system.message,
    gen_ai.user.message, gen_ai.assistant.message, gen_ai.tool.message; gen_ai.choice)."""
    given, produced = [], []
    for event in events:
        name = event.get("name", "")
        attrs = event.get("attributes", {})
        if name == "gen_ai.choice":
            body = _json(attrs.get("message", attrs.get("content", "")))
            content = body.get("content", "") if isinstance(body, dict) else body
            message = {"role": "assistant", "content": _parts_text(content)}
            if attrs.get("finish_reason"):
                message["finish_reason"] = str(attrs["finish_reason"])
            produced.append(message)
        elif name.startswith("gen_ai.") and name.endswith(".message"):
            role = name[len("gen_ai."):-len(".message")]
            given.append({"role": str(attrs.get("role", role)),
                          "content": _parts_text(_json(attrs.get("content", "")))})
    return given, produced


def _documents(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    docs = _json(attrs.get("gen_ai.retrieval.documents"))
    if isinstance(docs, list):
        items = [d for d in docs if isinstance(d, dict)]
    else:
        items = [{k.removeprefix("document."): v for k, v in d.items()}
                 for d in _indexed(attrs, "retrieval.documents")]
    out = []
    for d in items:
        meta = _json(d.get("metadata")) if d.get("metadata") else {}
        meta = meta if isinstance(meta, dict) else {}
        score = d.get("score")
        out.append({"id": _text(d.get("id")),
                    "title": _text(d.get("title") or meta.get("title")),
                    "source": _text(d.get("source") or meta.get("source")),
                    "score": score if isinstance(score, int | float) else None})
    return out


def _parameters(attrs: dict[str, Any]) -> dict[str, Any]:
    params = {name: attrs[f"gen_ai.request.{name}"] for name in PARAMETERS
              if f"gen_ai.request.{name}" in attrs}
    invocation = _json(attrs.get("llm.invocation_parameters"))
    if isinstance(invocation, dict):
        params.update({k: v for k, v in invocation.items() if k not in params})
    return params


def _error(span: dict[str, Any], attrs: dict[str, Any]) -> tuple[str, str]:
    """(error type, message) of a span that ended in error; ("", "") otherwise."""
    status = span.get("status") or {}
    failed = status.get("code") == STATUS_ERROR or bool(attrs.get("error.type"))
    if not failed:
        return "", ""
    message = status.get("message", "")
    for event in span.get("events", ()):
        if event.get("name") == "exception":
            ev = event.get("attributes", {})
            message = message or str(ev.get("exception.message", ""))
            attrs = {"error.type": ev.get("exception.type"), **attrs}
    kind = str(attrs.get("error.type") or "error")
    return kind[:255], message or kind


def nanos_time(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1e9, tz=UTC)


def conversation_of(attrs: dict[str, Any], resource: dict[str, Any],
                    names: Iterable[str]) -> str:
    """The conversation a span names through one of the configured attributes."""
    for source in (attrs, resource):
        for name in names:
            value = source.get(name)
            if value not in (None, ""):
                return str(value)
    return ""


def step_fields(span: dict[str, Any], operation: str) -> dict[str, Any]:
    """The AIStep columns of an AI span (everything but its conversation and ids)."""
    attrs: dict[str, Any] = span.get("attributes", {})
    openinference = "openinference.span.kind" in attrs
    given = _messages(attrs["gen_ai.input.messages"]) if "gen_ai.input.messages" in attrs \
        else []
    produced = (_messages(attrs["gen_ai.output.messages"])
                if "gen_ai.output.messages" in attrs else [])
    system = _parts_text(_json(attrs.get("gen_ai.system_instructions", "")))
    if not given and not produced:
        given, produced = _event_messages(span.get("events", []))
    if not given and not produced:
        given = _messages(_indexed(attrs, "gen_ai.prompt") or _indexed(
            attrs, "llm.input_messages"))
        produced = _messages(_indexed(attrs, "gen_ai.completion") or _indexed(
            attrs, "llm.output_messages"))
    if not system:
        system = "\n".join(m["content"] for m in given if m["role"] == "system")
    reasons = _first(attrs, FINISH_REASONS)
    if reasons is None:
        reasons = [m["finish_reason"] for m in produced if m.get("finish_reason")]
    if isinstance(reasons, list | tuple):
        reasons = ",".join(str(r) for r in reasons)
    tool_arguments = _json(_first(attrs, TOOL_ARGUMENTS))
    tool_result = _json(_first(attrs, TOOL_RESULT))
    if openinference and operation == "execute_tool":
        tool_arguments = tool_arguments if tool_arguments is not None else _json(
            attrs.get("input.value"))
        tool_result = tool_result if tool_result is not None else _json(
            attrs.get("output.value"))
    if operation in ("chat", "invoke_agent") and not given and attrs.get("input.value"):
        given = [{"role": "user", "content": _text(attrs["input.value"], 100_000)}]
    if operation in ("chat", "invoke_agent") and not produced and attrs.get("output.value"):
        produced = [{"role": "assistant", "content": _text(attrs["output.value"], 100_000)}]
    start, end = span.get("start_ns") or 0, span.get("end_ns") or 0
    error_type, error_message = _error(span, attrs)
    request_model = _text(_first(attrs, REQUEST_MODEL))
    return _scrub({
        "agent_name": _text(_first(attrs, AGENT_NAME)),
        "provider_name": _text(_first(attrs, PROVIDER), 64),
        "request_model": request_model,
        "response_model": _text(_first(attrs, RESPONSE_MODEL)) or request_model,
        "prompt_name": _text(_first(attrs, PROMPT_NAME)),
        "prompt_version": _text(_first(attrs, PROMPT_VERSION), 64),
        "parameters": _parameters(attrs),
        "input_tokens": _count(_first(attrs, INPUT_TOKENS)),
        "output_tokens": _count(_first(attrs, OUTPUT_TOKENS)),
        "cached_tokens": _count(_first(attrs, CACHED_TOKENS)),
        "latency_ms": _count(round((int(end) - int(start)) / 1e6)) if end and start else None,
        "finish_reason": _text(reasons, 64),
        "tool_name": _text(_first(attrs, TOOL_NAME)),
        "tool_arguments": tool_arguments,
        "tool_result": tool_result,
        "tool_error": error_message if operation == "execute_tool" else "",
        "retrieved_documents": _documents(attrs) if operation == "retrieval" else [],
        "system_prompt": system,
        "span_name": _text(span.get("name")),
        "input_messages": given or [],
        "output_messages": produced or None,
        "error_type": error_type,
    })
