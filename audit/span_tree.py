"""The replay's AI turns: the AI steps of one OpenTelemetry trace drawn as a span tree
(agent → LLM calls → tools → retrieval) on a time axis, errors marked, and the handoff
decision that followed in context. Pure Python over the rows the replay loaded.

A step's parent is the step whose span id its parent span id names; a parent that is not
an AI step (an HTTP span kept only in its raw event) is skipped over: the step hangs from
the turn's root. Bars are laid out in percent of the turn, so the page needs no script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# A handoff event this long after a turn ended is still its decision.
DECISION_AFTER = timedelta(seconds=120)
OPERATION_LABELS = {"invoke_agent": "agent", "chat": "LLM call", "execute_tool": "tool",
                    "retrieval": "retrieval", "embeddings": "embeddings"}


@dataclass
class SpanRow:
    step: Any  # the AIStep
    depth: int
    label: str
    detail: str
    start_ms: float
    duration_ms: float
    left: float = 0.0  # percent of the turn
    width: float = 0.0
    failed: bool = False
    error: str = ""
    # What the details show, read defensively from the JSON columns: (label, text).
    documents: list[tuple[str, Any]] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Decision:
    """A handoff event around the turn: what it was, when, where on the axis."""

    label: str
    at: datetime
    offset_ms: float
    left: float
    after_turn: bool
    when: str = ""  # "0.4 s after the turn ended" / "during the turn, at +120 ms"


@dataclass
class Turn:
    trace_id: str
    started_at: datetime
    duration_ms: float
    rows: list[SpanRow]
    ticks: list[tuple[float, str]]
    decisions: list[Decision] = field(default_factory=list)
    errors: int = 0
    pk: str = ""  # for the replay's sort key

    @property
    def summary(self) -> str:
        kinds: dict[str, int] = {}
        for row in self.rows:
            kinds[row.label] = kinds.get(row.label, 0) + 1
        parts = [f"{n} {label}{'s' if n > 1 else ''}" for label, n in kinds.items()]
        text = f"{', '.join(parts)} in {duration_text(self.duration_ms)}"
        if self.errors:
            text += f"; {self.errors} failed"
        return text


def duration_text(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{ms / 60_000:.1f} min"


def _label(step: Any) -> tuple[str, str]:
    label = OPERATION_LABELS.get(step.operation, step.operation)
    if step.operation == "execute_tool":
        detail = step.tool_name or step.span_name
    elif step.operation == "invoke_agent":
        detail = step.agent_name or step.span_name
    else:
        detail = step.response_model or step.request_model or step.span_name
    return label, detail


def _documents(step: Any) -> list[tuple[str, Any]]:
    docs = step.retrieved_documents if isinstance(step.retrieved_documents, list) else []
    return [(str(d.get("title") or d.get("id") or ""), d.get("score"))
            if isinstance(d, dict) else (str(d), None) for d in docs]


def _messages(step: Any) -> list[tuple[str, str]]:
    out = [("system", step.system_prompt)] if step.system_prompt else []
    for default, items in (("input", step.input_messages), ("output", step.output_messages)):
        for m in items if isinstance(items, list) else []:
            if isinstance(m, dict):
                out.append((str(m.get("role") or default), str(m.get("content", ""))))
            else:
                out.append((default, str(m)))
    return out


def _ticks(total_ms: float) -> list[tuple[float, str]]:
    return [(pct, duration_text(total_ms * pct / 100)) for pct in (0, 25, 50, 75, 100)]


def turns_build(steps: list[Any], handoff_events: list[tuple[datetime, str]]) -> list[Turn]:
    """One Turn per trace among `steps` (AIStep rows with a trace id), in time order.
    `handoff_events`: (when, label) of the conversation's handoff events and transitions."""
    by_trace: dict[str, list[Any]] = {}
    for step in steps:
        if step.trace_id:
            by_trace.setdefault(step.trace_id, []).append(step)
    turns = [_turn(trace, group, handoff_events) for trace, group in by_trace.items()]
    return sorted(turns, key=lambda t: t.started_at)


def _turn(trace: str, steps: list[Any], handoff_events: list[tuple[datetime, str]]) -> Turn:
    start = min(s.occurred_at for s in steps)
    end = max(s.occurred_at + timedelta(milliseconds=s.latency_ms or 0) for s in steps)
    total = max((end - start).total_seconds() * 1000, 1.0)
    by_span = {s.span_id: s for s in steps if s.span_id}
    children: dict[str, list[Any]] = {}
    roots = []
    for step in sorted(steps, key=lambda s: (s.occurred_at, s.pk)):
        parent = step.parent_span_id if step.parent_span_id in by_span else ""
        if parent and parent != step.span_id:
            children.setdefault(parent, []).append(step)
        else:
            roots.append(step)
    rows: list[SpanRow] = []
    seen: set[int] = set()
    stack = [(s, 0) for s in reversed(roots)]
    while stack:
        step, depth = stack.pop()
        if step.pk in seen:  # a cycle of parent ids: drawn once
            continue
        seen.add(step.pk)
        label, detail = _label(step)
        offset = (step.occurred_at - start).total_seconds() * 1000
        duration = float(step.latency_ms or 0)
        error = step.tool_error or step.error_type
        rows.append(SpanRow(
            step, min(depth, 6), label, detail, offset, duration,
            left=round(100 * offset / total, 2),
            width=round(max(100 * duration / total, 0.8), 2),
            failed=bool(error), error=error, documents=_documents(step),
            messages=_messages(step)))
        stack.extend((c, depth + 1) for c in reversed(children.get(step.span_id, [])))
    decisions = []
    for at, text in handoff_events:
        if start <= at <= end + DECISION_AFTER:
            offset = (at - start).total_seconds() * 1000
            after = at > end
            when = (f"{duration_text((at - end).total_seconds() * 1000)} after the turn ended"
                    if after else f"during the turn, at +{duration_text(offset)}")
            decisions.append(Decision(text, at, offset, min(round(100 * offset / total, 2), 100),
                                      after, when))
    return Turn(trace, start, total, rows, _ticks(total), decisions,
                errors=sum(r.failed for r in rows), pk=trace)
