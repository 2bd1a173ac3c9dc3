"""Load, round 3: what the answer-quality checks need of the batch's conversations (their
last QUALITY_CONTEXT_MESSAGES messages and QUALITY_CONTEXT_STEPS AI steps), read only when
the batch has an AI message or an AI step. PostgreSQL probes the timeline indexes once per
conversation (LATERAL … LIMIT); SQLite numbers rows with a window function."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.db import connection

from .ingest_state import QualityContext, StoredMessage
from .json_text import json_loads
from .models import AIStep, Message
from .sql import Statements

STEP_COLUMNS = (
    "id", "external_id", "message_id", "message_provider", "message_provider_id",
    "occurred_at", "operation", "tool_name", "tool_error", "tool_retries", "tool_approval",
    "tool_result", "retrieved_documents", "retrieval_query", "guardrails", "finish_reason",
    "system_prompt", "input_messages", "trace_id",
)
_JSON = {"tool_approval", "tool_result", "retrieved_documents", "guardrails", "input_messages"}
_MESSAGE_COLUMNS = "id, author_kind, body, body_new, sent_at, provider, provider_message_id"
_STATEMENTS: dict[tuple[str, str, int], str] = {}


def _statement(name: str, limit: int) -> str:
    key = (connection.vendor, name, limit)
    if key in _STATEMENTS:
        return _STATEMENTS[key]
    table, columns, order = (
        (Message._meta.db_table, _MESSAGE_COLUMNS, "sent_at DESC, id DESC") if name == "messages"
        else (AIStep._meta.db_table, ", ".join(STEP_COLUMNS), "occurred_at DESC, id DESC"))
    if connection.vendor == "postgresql":
        sql = (f"SELECT k.k0, t.* FROM unnest(%b::bigint[]) AS k(k0) CROSS JOIN LATERAL "
               f"(SELECT {columns} FROM {table} WHERE conversation_id = k.k0 "
               f"ORDER BY {order} LIMIT {int(limit)}) AS t")
    else:
        sql = (f"SELECT conversation_id, {columns} FROM (SELECT conversation_id, {columns}, "
               f"ROW_NUMBER() OVER (PARTITION BY conversation_id ORDER BY {order}) AS n "
               f"FROM {table} WHERE conversation_id IN (SELECT value FROM json_each(%s))) "
               f"WHERE n <= {int(limit)}")
    _STATEMENTS[key] = sql
    return sql


def _json(value: Any) -> Any:
    """A JSON column as the driver hands it (text), or the value already decoded."""
    return json_loads(value) if isinstance(value, str) else value


def quality_context_load(sql: Statements, conversations: Sequence[int], *,
                         messages: int, steps: int) -> QualityContext:
    from .ingest_load import _aware  # one helper for SQLite's datetimes

    context = QualityContext()
    if not conversations:
        return context
    ids = sorted(set(conversations))
    param = [ids] if sql.postgres else [json.dumps(ids)]
    for row in sql.all(_statement("messages", messages), param):
        conversation, pk, kind, body, body_new, at, provider, pmid = row
        context.messages.setdefault(conversation, []).append(StoredMessage(
            pk, kind, body_new or body or "", _aware(at), provider, pmid))
    for row in sql.all(_statement("steps", steps), param):
        step = dict(zip(STEP_COLUMNS, row[1:], strict=True))
        for name in _JSON:
            step[name] = _json(step[name])
        step["occurred_at"] = _aware(step["occurred_at"])
        context.steps.setdefault(row[0], []).append(step)
    for rows in context.messages.values():
        rows.sort(key=lambda m: (m.sent_at, m.id))
    for rows in context.steps.values():
        rows.sort(key=lambda s: (s["occurred_at"], s["id"]))
    return context
