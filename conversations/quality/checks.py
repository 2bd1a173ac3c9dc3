"""Which checks run on what. Each returns findings; the decide layer turns them into flags
on the message (or, for a step that produced no message, the conversation)."""

from __future__ import annotations

from collections.abc import Callable

from .context import Finding, Rules, Said, Step, Turn
from .grounding import ungrounded_answer, weak_retrieval
from .injection import injection_followed, prompt_injection
from .loops import ai_loop
from .tools import excessive_agency, guardrail_tripped, tool_failure

ReplyCheck = Callable[[Turn, Rules], Finding | None]

REPLY_CHECKS: tuple[ReplyCheck, ...] = (
    ungrounded_answer, weak_retrieval, tool_failure, guardrail_tripped, excessive_agency,
    injection_followed, ai_loop,
)


def reply_check(turn: Turn, rules: Rules) -> list[Finding]:
    """The findings about one AI reply and the turn that led to it."""
    return [f for check in REPLY_CHECKS if (f := check(turn, rules)) is not None]


def customer_check(message: Said) -> list[Finding]:
    """The findings about one customer message."""
    found = prompt_injection(message)
    return [found] if found else []


def orphan_steps_check(steps: tuple[Step, ...], rules: Rules) -> list[Finding]:
    """Steps that produced no message (a blocked answer, a tool call before a handoff):
    what can be said without a reply."""
    turn = Turn(reply=Said(ref=0, author_kind="ai", text="", at=None), steps=steps)
    return [f for check in (guardrail_tripped, excessive_agency)
            if (f := check(turn, rules)) is not None]
