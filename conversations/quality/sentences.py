"""What each answer-quality flag says, in a sentence built from its evidence
(`FLAG_SENTENCES[kind](evidence) -> str`), registered in the one sentence registry
(conversations/flag_text.py) when the app is ready."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Detail = dict[str, Any]


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _ungrounded(e: Detail) -> str:
    parts = []
    if e.get("unsupported_sentences"):
        parts.append(_n(len(e["unsupported_sentences"]), "sentence") + " that no retrieved "
                     "chunk supports")
    facts = e.get("unsupported_facts") or []
    if facts:
        shown = ", ".join(f"“{f['text']}”" for f in facts[:3])
        parts.append(f"{_n(len(facts), 'fact')} found in no source ({shown})")
    how = " (by meaning, embeddings)" if e.get("method") == "embeddings" else ""
    return "The AI's answer has " + " and ".join(parts or ["claims without support"]) + how + "."


def _weak(e: Detail) -> str:
    if not e.get("documents"):
        return "The AI answered confidently although its search found nothing."
    return (f"The AI answered confidently although the best retrieved chunk scored "
            f"{e.get('best_score')}, under the threshold of {e.get('threshold')}.")


def _tool(e: Detail) -> str:
    failures = e.get("failures") or []
    tools = ", ".join(sorted({f.get("tool") or "a tool" for f in failures})) or "a tool"
    tail = (" and the reply spoke as if it had worked" if e.get("answered_as_if_succeeded")
            else "")
    return f"The tool {tools} failed before the reply{tail}."


def _guardrail(e: Detail) -> str:
    g = (e.get("guardrails") or [{}])[0]
    more = len(e.get("guardrails") or []) - 1
    name, action = g.get("name") or "(unnamed)", g.get("action") or "a failure"
    return (f"The guardrail {name} reported {action}"
            + (f" (and {_n(more, 'other')})" if more > 0 else "") + ".")


def _injection(e: Detail) -> str:
    spans = e.get("message_spans") or []
    why = spans[0]["why"] if spans else "tries to override the AI's instructions"
    return f"The customer's message {why}."


def _followed(e: Detail) -> str:
    reasons = sorted({s["why"] for s in e.get("message_spans") or []})
    if e.get("tools_outside_allowed"):
        reasons.append("called a tool outside the allowed list")
    return "After an injection attempt the AI's reply " + "; ".join(reasons) + "."


def _loop(e: Detail) -> str:
    repeats = e.get("repeats") or []
    if repeats and repeats[0].get("rule") == "question_reasked":
        return "The AI asked again a question the customer had already answered."
    return f"The AI repeated a near-identical reply ({_n(len(repeats), 'earlier reply')})."


def _agency(e: Detail) -> str:
    tools = ", ".join(sorted({c["tool"] for c in e.get("calls") or []}))
    return f"The AI called {tools}, which is not among the tools allowed for this brand."


FLAG_SENTENCES: dict[str, Callable[[Detail], str]] = {
    "ungrounded_answer": _ungrounded,
    "weak_retrieval": _weak,
    "tool_failure": _tool,
    "guardrail_tripped": _guardrail,
    "prompt_injection": _injection,
    "injection_followed": _followed,
    "ai_loop": _loop,
    "excessive_agency": _agency,
}


def sentences_register() -> None:
    from conversations.flag_text import flag_sentence_register

    for kind, build in FLAG_SENTENCES.items():
        flag_sentence_register(kind, build)
