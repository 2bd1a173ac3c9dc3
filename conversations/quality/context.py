"""What a check reads (one AI turn) and what it returns (a finding): plain data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Span = dict[str, Any]  # {"start", "end", "text", "why"}: a slice of a text, and why it counts


@dataclass(frozen=True)
class Rules:
    """Thresholds of the checks (HANDOFF_AUDITOR QUALITY_*, per business address
    overridable through QUALITY_BY_BUSINESS)."""

    retrieval_min_score: float = 0.5
    support_min: float = 0.4
    tool_retries_max: int = 2
    allowed_tools: tuple[str, ...] = ()  # empty: any tool is allowed
    loop_similarity: float = 0.9
    # The embeddings variant of ungrounded_answer: texts -> unit-length vectors (numpy rows),
    # or None (the lexical core alone). QUALITY_EMBEDDINGS / QUALITY_EMBEDDER.
    embedder: Callable[[list[str]], Any] | None = None
    embedding_support_min: float = 0.7


@dataclass(frozen=True)
class Step:
    """An AI step as the checks read it."""

    external_id: str
    operation: str
    occurred_at: Any
    tool_name: str = ""
    tool_error: str = ""
    tool_result_text: str = ""  # the result as text: a source facts may come from
    tool_retries: int | None = None
    tool_approval: dict[str, Any] | None = None
    retrieved_documents: tuple[dict[str, Any], ...] = ()
    retrieval_query: str = ""
    guardrails: tuple[dict[str, Any], ...] = ()
    finish_reason: str = ""
    system_prompt: str = ""
    input_messages: tuple[dict[str, Any], ...] = ()
    trace_id: str = ""


@dataclass(frozen=True)
class Said:
    """A message of the conversation: who wrote it, its text, its id (or plan ref)."""

    ref: int
    author_kind: str
    text: str
    at: Any


@dataclass(frozen=True)
class Turn:
    """One AI reply with what led to it: the customer's messages since the previous AI
    reply (oldest first), the steps of the turn, the earlier AI replies (newest first, with
    whether the customer wrote in between) and whether a handoff was requested."""

    reply: Said
    customer: tuple[Said, ...] = ()
    steps: tuple[Step, ...] = ()
    earlier_replies: tuple[tuple[Said, bool], ...] = ()
    handoff_requested: bool = False


@dataclass
class Finding:
    kind: str
    severity: str
    evidence: dict[str, Any] = field(default_factory=dict)
