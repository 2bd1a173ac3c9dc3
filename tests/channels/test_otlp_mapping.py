"""Span attributes onto AI step columns, across the conventions and their versions
(channels.otlp_mapping; pure Python, no database)."""

import pytest

from channels.otlp_mapping import operation_of, step_fields


def _span(attrs, events=(), status=None, start=1_000_000_000, end=1_250_000_000):
    return {"name": "s", "attributes": attrs, "events": list(events),
            "status": status or {"code": 0, "message": ""}, "start_ns": start, "end_ns": end}


@pytest.mark.parametrize(("attrs", "operation"), [
    ({"gen_ai.operation.name": "chat"}, "chat"),
    ({"gen_ai.operation.name": "text_completion"}, "chat"),
    ({"gen_ai.operation.name": "generate_content"}, "chat"),
    ({"gen_ai.operation.name": "execute_tool"}, "execute_tool"),
    ({"gen_ai.operation.name": "embeddings"}, "embeddings"),
    ({"gen_ai.operation.name": "invoke_agent"}, "invoke_agent"),
    ({"gen_ai.operation.name": "create_agent"}, "invoke_agent"),
    ({"gen_ai.operation.name": "retrieval"}, "retrieval"),
    ({"gen_ai.operation.name": "something_new"}, None),
    ({"openinference.span.kind": "LLM"}, "chat"),
    ({"openinference.span.kind": "TOOL"}, "execute_tool"),
    ({"openinference.span.kind": "RETRIEVER"}, "retrieval"),
    ({"openinference.span.kind": "AGENT"}, "invoke_agent"),
    ({"openinference.span.kind": "EMBEDDING"}, "embeddings"),
    ({"openinference.span.kind": "CHAIN"}, None),
    ({"traceloop.span.kind": "tool"}, "execute_tool"),
    ({"llm.request.type": "chat"}, "chat"),
    # Before gen_ai.operation.name existed: a system and a model make an LLM call.
    ({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4"}, "chat"),
    ({"http.request.method": "GET"}, None),
    ({}, None),
])
def test_the_operation_of_a_span(attrs, operation):
    assert operation_of(attrs) == operation


def test_current_semconv_chat():
    fields = step_fields(_span({
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4", "gen_ai.response.model": "claude-sonnet-4-x",
        "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.cache_read.input_tokens": 100,
        "gen_ai.response.finish_reasons": ["stop", "length"],
        "gen_ai.request.max_tokens": 512, "gen_ai.request.temperature": 0.5,
        "gen_ai.agent.name": "Brisa",
        "gen_ai.system_instructions": [{"type": "text", "content": "Be kind."}],
        "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", '
                                 '"content": "Hi"}]}]',
        "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "tool_call", '
                                  '"name": "lookup", "arguments": {"q": 1}}], '
                                  '"finish_reason": "tool_call"}]',
    }), "chat")
    assert fields["provider_name"] == "anthropic"
    assert (fields["request_model"], fields["response_model"]) == (
        "claude-sonnet-4", "claude-sonnet-4-x")
    assert (fields["input_tokens"], fields["output_tokens"], fields["cached_tokens"]) == (
        120, 30, 100)
    assert fields["finish_reason"] == "stop,length"
    assert fields["parameters"] == {"max_tokens": 512, "temperature": 0.5}
    assert fields["system_prompt"] == "Be kind." and fields["agent_name"] == "Brisa"
    assert fields["input_messages"] == [{"role": "user", "content": "Hi"}]
    assert fields["output_messages"] == [{"role": "assistant", "content": '→ lookup({"q": 1})',
                                          "finish_reason": "tool_call"}]
    assert fields["latency_ms"] == 250


def test_older_semconv_names_give_the_same_columns():
    """gen_ai.system (before gen_ai.provider.name), prompt/completion tokens (before 1.27),
    messages as span events (before 1.37)."""
    events = [
        {"name": "gen_ai.system.message", "attributes": {"content": "Be kind."}},
        {"name": "gen_ai.user.message", "attributes": {"content": "Hi"}},
        {"name": "gen_ai.choice", "attributes": {
            "finish_reason": "stop", "message": '{"content": "Hello!"}'}},
    ]
    fields = step_fields(_span({
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4",
        "gen_ai.usage.prompt_tokens": 12, "gen_ai.usage.completion_tokens": 3,
    }, events), "chat")
    assert fields["provider_name"] == "openai"
    assert (fields["input_tokens"], fields["output_tokens"]) == (12, 3)
    assert fields["response_model"] == "gpt-4"  # none reported: the requested one
    assert fields["system_prompt"] == "Be kind."
    assert fields["input_messages"] == [{"role": "system", "content": "Be kind."},
                                        {"role": "user", "content": "Hi"}]
    assert fields["output_messages"] == [
        {"role": "assistant", "content": "Hello!", "finish_reason": "stop"}]
    assert fields["finish_reason"] == "stop"


def test_the_newest_name_wins_when_both_are_sent():
    fields = step_fields(_span({
        "gen_ai.provider.name": "aws.bedrock", "gen_ai.system": "aws_bedrock",
        "gen_ai.usage.input_tokens": 7, "gen_ai.usage.prompt_tokens": 9}), "chat")
    assert fields["provider_name"] == "aws.bedrock" and fields["input_tokens"] == 7


def test_openllmetry_indexed_prompts_and_completions():
    fields = step_fields(_span({
        "llm.request.type": "chat", "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Refund?",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Sure.",
        "gen_ai.completion.0.finish_reason": "stop",
        "llm.usage.prompt_tokens": 20, "llm.usage.completion_tokens": 2}), "chat")
    assert [m["role"] for m in fields["input_messages"]] == ["system", "user"]
    assert fields["system_prompt"] == "Be brief."
    assert fields["output_messages"][0]["content"] == "Sure."
    assert fields["finish_reason"] == "stop"
    assert (fields["input_tokens"], fields["output_tokens"]) == (20, 2)


def test_openinference_llm_tool_and_retriever_spans():
    llm = step_fields(_span({
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o", "llm.provider": "openai",
        "llm.token_count.prompt": 50, "llm.token_count.completion": 8,
        "llm.token_count.prompt_details.cache_read": 40,
        "llm.invocation_parameters": '{"temperature": 0.1}',
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Cancel my order",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Done.",
        "llm.prompt_template.version": "v7", "session.id": "s-1"}), "chat")
    assert (llm["request_model"], llm["provider_name"]) == ("gpt-4o", "openai")
    assert (llm["input_tokens"], llm["output_tokens"], llm["cached_tokens"]) == (50, 8, 40)
    assert llm["parameters"] == {"temperature": 0.1} and llm["prompt_version"] == "v7"
    assert llm["input_messages"] == [{"role": "user", "content": "Cancel my order"}]
    assert llm["output_messages"] == [{"role": "assistant", "content": "Done."}]

    tool = step_fields(_span({
        "openinference.span.kind": "TOOL", "tool.name": "cancel_order",
        "input.value": '{"order": 12}', "output.value": "cancelled"},
        status={"code": 2, "message": "order already shipped"}), "execute_tool")
    assert tool["tool_name"] == "cancel_order" and tool["tool_arguments"] == {"order": 12}
    assert tool["tool_result"] == "cancelled"
    assert tool["tool_error"] == "order already shipped" and tool["error_type"] == "error"

    retriever = step_fields(_span({
        "openinference.span.kind": "RETRIEVER",
        "retrieval.documents.0.document.id": "kb-12",
        "retrieval.documents.0.document.score": 0.82,
        "retrieval.documents.0.document.metadata": '{"title": "Refunds"}',
        "retrieval.documents.1.document.id": "kb-40"}), "retrieval")
    assert retriever["retrieved_documents"] == [
        {"id": "kb-12", "title": "Refunds", "source": "", "score": 0.82},
        {"id": "kb-40", "title": "", "source": "", "score": None}]


def test_an_exception_event_names_the_error():
    fields = step_fields(_span({"gen_ai.operation.name": "execute_tool",
                                "gen_ai.tool.name": "refund"}, events=[
        {"name": "exception", "attributes": {"exception.type": "ValueError",
                                             "exception.message": "amount too high"}}],
        status={"code": 2, "message": ""}), "execute_tool")
    assert (fields["error_type"], fields["tool_error"]) == ("ValueError", "amount too high")


def test_values_no_column_can_hold_are_dropped_or_cleaned():
    fields = step_fields(_span({
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 2**40,
        "gen_ai.usage.output_tokens": -3, "gen_ai.request.model": "m\x00" + "x" * 400,
        "gen_ai.input.messages": '[{"role": "user", "content": "a\\u0000b"}]'}), "chat")
    assert fields["input_tokens"] is None and fields["output_tokens"] is None
    assert len(fields["request_model"]) == 255 and "\x00" not in fields["request_model"]
    assert fields["input_messages"] == [{"role": "user", "content": "a\ufffdb"}]
