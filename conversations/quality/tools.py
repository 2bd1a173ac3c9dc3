"""tool_failure, guardrail_tripped, excessive_agency: what the AI's tools and guardrails
reported in the turn."""

from __future__ import annotations

import re
from typing import Any

from .context import Finding, Rules, Span, Step, Turn

# The reply admits the tool did not work...
_ADMITS = re.compile(
    r"(could ?n[o']?t|can ?n?[o']?t|unable|wasn'?t able|not able|problem|issue|error|"
    r"went wrong|try again|failed|no (pude|pudimos|fue posible|se pudo)|un error|"
    r"problema|int[eé]ntalo)", re.I)
# ...or speaks as if it had.
_SUCCESS = re.compile(
    r"\b(done|all set|i'?ve (just )?(cancel|refund|updat|chang|book|process|issu|sent|creat|"
    r"reset)\w*|(has|have) been (cancel|refund|updat|chang|book|process|issu|sent|creat|"
    r"reset|confirm)\w*|successfully|confirmed|is on its way|listo|ya (est[aá]|qued[oó]|"
    r"te)|(cancel|reembols|actualiz|proces|envi)(é|ado|ada)\b)", re.I)
_TRIPPED_ACTIONS = frozenset({"blocked", "block", "failed", "fail", "error", "denied",
                              "rejected"})


def _failed(step: Step, rules: Rules) -> list[str]:
    reasons = []
    if step.tool_error:
        reasons.append(f"error: {step.tool_error[:300]}")
    if step.tool_retries is not None and step.tool_retries > rules.tool_retries_max:
        reasons.append(f"retried {step.tool_retries} times (at most {rules.tool_retries_max})")
    return reasons


def tool_failure(turn: Turn, rules: Rules) -> Finding | None:
    """A tool call of the turn failed (error, or retries over the limit) and no later call
    of the same tool succeeded before the reply."""
    tools = [s for s in turn.steps if s.operation == "execute_tool" or s.tool_name]
    failures: list[dict[str, Any]] = []
    for i, step in enumerate(tools):
        reasons = _failed(step, rules)
        if not reasons:
            continue
        recovered = any(t.tool_name == step.tool_name and not t.tool_error
                        and not _failed(t, rules) for t in tools[i + 1:])
        if not recovered:
            failures.append({"step": step.external_id, "tool": step.tool_name,
                             "reasons": reasons, "retries": step.tool_retries})
    if not failures:
        return None
    text = turn.reply.text
    admitted = _ADMITS.search(text)
    claims: list[Span] = []
    if not admitted:
        claims = [{"start": m.start(), "end": m.end(), "text": m.group(0),
                   "why": "speaks as if the tool had succeeded"}
                  for m in _SUCCESS.finditer(text)]
    return Finding("tool_failure", "high" if claims else "medium", {
        "failures": failures,
        "answered_as_if_succeeded": bool(claims),
        "message_spans": claims or ([{"start": admitted.start(), "end": admitted.end(),
                                      "text": admitted.group(0),
                                      "why": "the reply tells the customer"}]
                                    if admitted else []),
    })


def guardrail_tripped(turn: Turn, rules: Rules) -> Finding | None:
    tripped = []
    for step in turn.steps:
        for g in step.guardrails:
            action = str(g.get("action") or "").lower()
            if g.get("passed") is False or action in _TRIPPED_ACTIONS:
                tripped.append({"step": step.external_id, "name": str(g.get("name") or "")[:200],
                                "action": action or "failed",
                                "message": str(g.get("message") or "")[:500],
                                "score": g.get("score")})
    if not tripped:
        return None
    # Blocked: the guardrail stopped the content (worth a look). Failed and not blocked:
    # the content may have gone out.
    blocked = all(t["action"] in ("blocked", "block", "denied", "rejected") for t in tripped)
    return Finding("guardrail_tripped", "medium" if blocked else "high",
                   {"guardrails": tripped, "message_spans": []})


def disallowed_tools(turn: Turn, rules: Rules) -> list[dict[str, Any]]:
    if not rules.allowed_tools:
        return []
    allowed = {t.lower() for t in rules.allowed_tools}
    return [{"step": s.external_id, "tool": s.tool_name,
             "approval": (s.tool_approval or {}).get("status", "")}
            for s in turn.steps if s.tool_name and s.tool_name.lower() not in allowed]


def excessive_agency(turn: Turn, rules: Rules) -> Finding | None:
    calls = disallowed_tools(turn, rules)
    if not calls:
        return None
    approved = all(c["approval"] == "approved" for c in calls)
    return Finding("excessive_agency", "medium" if approved else "high", {
        "calls": calls, "allowed_tools": list(rules.allowed_tools), "message_spans": []})
