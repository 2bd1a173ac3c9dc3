"""The findings of the handoff machine and the sweep: kinds, evidence, notes, waits ended.

Pure functions over rows (Wait / Handoff model instances, or the machine's WaitRow /
HandoffRow, which have the same attribute names); the callers write.
"""

import functools
import re
from datetime import UTC, datetime
from typing import Any

from conversations.conf import auditor_settings
from conversations.models import Flag

from .business_time import Calendar, business_seconds
from .policies import _policy_ref

STALLED = "handoff_stalled"
DROPPED = "handoff_dropped"
MISSED = "handoff_missed"
WINDOW_EXPIRED = "whatsapp_window_expired"
AUTO = "handoff-auditor"  # who changes a flag's status automatically

WAIT_END_FIELDS = ["ended_at", "waited_seconds", "met", "stalled_at"]


def wait_end(wait: Any, *, at: datetime, calendar: Calendar | None) -> bool:
    """End a wait at `at` (in memory): how long it took and whether it met its limit.
    True when it was late and no sweep had flagged it: the finding is raised now (beat
    down, or history rebuilt), so no late wait goes unflagged."""
    wait.ended_at = at
    wait.waited_seconds = business_seconds(wait.started_at, at, calendar)
    wait.met = (
        None if wait.allowed_seconds is None else (wait.waited_seconds <= wait.allowed_seconds)
    )
    late = wait.met is False and wait.stalled_at is None
    if late:
        wait.stalled_at = at
    return late


def late_wait_evidence(wait: Any, handoff: Any, *, at: datetime) -> dict[str, Any]:
    evidence = _stall_evidence(wait, handoff, waited=wait.waited_seconds, at=at)
    return {**evidence, "detected": "when the wait ended"}


def _wait_evidence(wait: Any) -> dict[str, Any]:
    return {
        "state": wait.kind,
        "entered_at": wait.started_at.isoformat(),
        "ended_at": wait.ended_at.isoformat() if wait.ended_at else None,
        "waited_seconds": None if wait.waited_seconds is None else round(wait.waited_seconds, 1),
        "allowed_seconds": wait.allowed_seconds,
        "met": wait.met,
    }


def _stall_evidence(wait: Any, handoff: Any, *, waited: float, at: datetime) -> dict[str, Any]:
    return _stall_figures(
        state=wait.kind,
        started=wait.started_at,
        deadline=wait.deadline_at,
        allowed=wait.allowed_seconds,
        business=wait.business_hours,
        waited=waited,
        policy=_policy_ref(handoff.policy),
        number=handoff.number,
        channel=handoff.channel,
        queue=handoff.queue,
        agent=handoff.agent_id,
        at=at,
    )


def _stall_figures(
    *,
    state: str,
    started: datetime,
    deadline: datetime | None,
    allowed: float | None,
    business: bool,
    waited: float,
    policy: dict[str, Any],
    number: int,
    channel: str,
    queue: str,
    agent: str,
    at: datetime,
) -> dict[str, Any]:
    """The evidence of a handoff_stalled finding (both sweep paths and late closes)."""
    return {
        "state": state,
        "entered_at": started.isoformat(),
        "deadline_at": deadline.isoformat() if deadline else None,
        "waited_seconds": round(waited, 1),
        "allowed_seconds": allowed,
        "over_by_seconds": round(waited - (allowed or 0.0), 1),
        "business_hours": business,
        "policy": policy,
        "handoff": number,
        "channel": channel,
        "queue": queue,
        "agent": agent,
        "detected_at": at.isoformat(),
    }


def stalled_refresh(
    previous: dict[str, Any] | None, stalled_count: int, evidence: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """A stall found: the flag's evidence (each stall of the handoff kept in `stalls`) and
    severity; `previous` is the active flag's evidence, None when there is none."""
    if previous is None:
        severity = Flag.Severity.MEDIUM if stalled_count < 1 else Flag.Severity.HIGH
        return {**evidence, "stalls": [evidence["state"]]}, severity
    return {**evidence, "stalls": [*previous.get("stalls", []), evidence["state"]]}, (
        Flag.Severity.HIGH
    )


def dropped_evidence(
    handoff: Any, *, reason: str, details: dict[str, Any]
) -> dict[str, Any]:
    """The evidence of a handoff_dropped flag: every reason found so far, with its figures."""
    return {
        "reason": reason,
        "reasons": list(details),
        "handoff": handoff.number,
        "channel": handoff.channel,
        "requested_at": handoff.requested_at.isoformat(),
        "requested_by": handoff.requested_by,
        "state": handoff.state,
        "policy": _policy_ref(handoff.policy),
        "details": details,
    }


def note_time(at: datetime) -> str:
    """A moment in a note people read: "Sat 21 Nov 23:48:08 UTC"."""
    return at.astimezone(UTC).strftime("%a %d %b %H:%M:%S UTC")


def stall_clear_note(flag: Any, at: datetime, note: str) -> str:
    """Why a handoff_stalled flag was cleared by a human reply at `at`."""
    deadline = flag.evidence.get("deadline_at")
    if deadline and at <= datetime.fromisoformat(deadline):
        # The sweep could not know: the reply was in time, it was reported late.
        return (
            f"Cleared automatically: the reply dated {note_time(at)} was within the "
            f"deadline ({note_time(datetime.fromisoformat(deadline))}); it was reported "
            "after the wait had been flagged."
        )
    return note


def reply_clear_note(at: datetime) -> str:
    return f"Cleared automatically: a human replied at {note_time(at)}."


def ask_missed_evidence(ask: Any, why: str, *, allowed_ai_turns: int) -> dict[str, Any]:
    return {
        "asked_at": ask.asked_at.isoformat(),
        "matched": ask.matched,
        "excerpt": ask.excerpt,
        "ai_turns": ask.ai_turns,
        "times_asked": ask.repeats + 1,
        "allowed_ai_turns": allowed_ai_turns,
        "why": why,
    }


def ai_turns_why(turns: int) -> str:
    return f"the AI answered {turns} times without requesting a human"


@functools.lru_cache(maxsize=8)
def _human_request_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def human_request_match(text: str, patterns: tuple[str, ...] | None = None) -> str:
    """The words by which a customer message asks for a human, or ''."""
    if patterns is None:
        patterns = tuple(auditor_settings.HUMAN_REQUEST_PATTERNS)
    if not text or not patterns:
        return ""
    found = _human_request_regex(patterns).search(text)
    return found.group(0) if found else ""
