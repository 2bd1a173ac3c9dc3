"""The decide step's bookkeeping and its findings: what the rules note in the plan, the
flags they raise, refresh and clear, and the customers' asks for a human (handoff_missed).
`journey_decide._Decide` builds on `Findings`; pure Python, no database.
"""

from datetime import datetime
from typing import Any

from conversations.models import AuthorKind, Direction, Flag

from .flags import (
    AUTO,
    DROPPED,
    MISSED,
    STALLED,
    ai_turns_why,
    ask_missed_evidence,
    dropped_evidence,
    human_request_match,
    note_time,
    stall_clear_note,
    stalled_refresh,
)
from .journey_state import (
    AskRow,
    BatchState,
    ConversationState,
    FlagRow,
    HandoffRow,
    MessageRow,
    Plan,
    TransitionRow,
)

EVENT = "conversation_event"  # HandoffTransition.Source, without importing the models
MESSAGE = "message"
HANDOFF_SUBJECT = Flag.SubjectType.HANDOFF
MESSAGE_SUBJECT = Flag.SubjectType.MESSAGE
WATCHING, SATISFIED, MISSED_ASK = "watching", "satisfied", "missed"


def is_human_reply(message: MessageRow) -> bool:
    return message.author_kind == AuthorKind.HUMAN and message.direction == Direction.OUTBOUND


def is_ai_reply(message: MessageRow) -> bool:
    return message.author_kind == AuthorKind.AI and message.direction == Direction.OUTBOUND


def is_customer(message: MessageRow) -> bool:
    return message.author_kind == AuthorKind.CUSTOMER


class Findings:
    """One conversation's decisions so far: the state it changes and the plan it fills."""

    def __init__(self, state: BatchState, plan: Plan, conversation: ConversationState) -> None:
        self.s, self.plan, self.c = state, plan, conversation

    # --- bookkeeping ----------------------------------------------------------------------

    def touch(self, handoff: HandoffRow, *fields: str) -> None:
        """Note the fields of a handoff that changed (a new handoff is written whole)."""
        if handoff.pk is not None and not handoff.changed:
            self.plan.changed_handoffs.append(handoff)
        handoff.changed.update(fields)

    def ask_touch(self, ask: AskRow, *fields: str) -> None:
        if ask.pk is not None and not ask.changed:
            self.plan.changed_asks.append(ask)
        ask.changed.update(fields)

    def flag_touch(self, flag: FlagRow, *fields: str) -> None:
        if flag.pk is not None and not flag.changed:
            self.plan.changed_flags.append(flag)
        flag.changed.update(fields)
        self.plan.flag_conversations.add(flag.conversation_id)

    def log(self, handoff: HandoffRow, *, trigger: str, at: datetime, source: tuple[str, int],
            from_state: str, to_state: str = "", reason: str = "",
            evidence: dict[str, Any] | None = None) -> None:
        self.plan.transitions.append(TransitionRow(
            handoff=handoff, trigger=trigger, from_state=from_state, to_state=to_state,
            occurred_at=at, source_type=source[0], source_id=source[1], reason=reason,
            evidence=evidence or {},
        ))
        self.s.seen.add(source)

    # --- flags ----------------------------------------------------------------------------

    def flag_raise(self, *, kind: str, subject_type: str, subject: Any, severity: str,
                   evidence: dict[str, Any], at: datetime) -> FlagRow:
        """One active flag per finding: raising it again refreshes it."""
        key = (kind, subject_type, subject)
        flag = self.c.flags.get(key)
        if flag is None:
            handoff = subject if isinstance(subject, HandoffRow) else None
            flag = FlagRow(
                conversation_id=self.c.pk, kind=kind, severity=severity,
                subject_type=subject_type,
                subject_id=handoff.pk if handoff is not None else subject,
                evidence=evidence, raised_at=at, handoff=handoff,
            )
            self.c.flags[key] = flag
            self.plan.new_flags.append(flag)
            self.plan.flag_conversations.add(self.c.pk)
            return flag
        flag.evidence, flag.severity = evidence, severity
        flag.updated_at = at if kind == STALLED else self.s.now
        self.flag_touch(flag, "evidence", "severity", "updated_at")
        return flag

    def flag_resolve(self, flag: FlagRow, note: str) -> None:
        flag.status_before = flag.status_before or flag.status
        flag.status = Flag.Status.RESOLVED
        flag.status_changed_at, flag.status_changed_by, flag.note = self.s.now, AUTO, note
        self.flag_touch(flag, "status", "status_changed_at", "status_changed_by", "note")
        key = next(k for k, f in self.c.flags.items() if f is flag)
        del self.c.flags[key]

    def stalled_raise(self, handoff: HandoffRow, evidence: dict[str, Any], at: datetime,
                      began: datetime | None = None) -> None:
        """`began`: when the wait ran over its limit (its deadline); a new flag is stamped
        then, not when it was found (`at`, kept in the evidence's detected_at)."""
        current = self.c.flags.get((STALLED, HANDOFF_SUBJECT, handoff))
        evidence, severity = stalled_refresh(
            current.evidence if current else None, handoff.stalled_count, evidence
        )
        flag = self.flag_raise(kind=STALLED, subject_type=HANDOFF_SUBJECT, subject=handoff,
                               severity=severity, evidence=evidence, at=at)
        if began is not None and flag.pk is None and began < flag.raised_at:
            flag.raised_at = began

    def stalled_clear(self, handoff: HandoffRow, *, at: datetime, note: str,
                      kinds: tuple[str, ...]) -> None:
        """The condition cleared (a human replied): resolve the stalled flag if the policy
        says so, with a note saying what cleared it."""
        if not handoff.policy.get("auto_resolve", True):
            return
        flag = self.c.flags.get((STALLED, HANDOFF_SUBJECT, handoff))
        if flag is not None and flag.evidence.get("state") in kinds:
            self.flag_resolve(flag, stall_clear_note(flag, at, note))

    def dropped(self, handoff: HandoffRow, *, reason: str, evidence: dict[str, Any],
                at: datetime) -> None:
        """One active handoff_dropped flag per handoff; each reason found is added to it."""
        if reason not in handoff.dropped_reasons:
            handoff.dropped_reasons = [*handoff.dropped_reasons, reason]
            handoff.dropped_at = handoff.dropped_at or at
            self.touch(handoff, "dropped_reasons", "dropped_at")
        current = self.c.flags.get((DROPPED, HANDOFF_SUBJECT, handoff))
        details = dict((current.evidence.get("details") if current else None) or {})
        details[reason] = evidence
        self.flag_raise(kind=DROPPED, subject_type=HANDOFF_SUBJECT, subject=handoff,
                        severity=Flag.Severity.HIGH, at=at,
                        evidence=dropped_evidence(handoff, reason=reason, details=details))

    # --- asks for a human (handoff_missed) ---------------------------------------------------

    def customer_ask(self, message: MessageRow) -> None:
        """A customer message that asks for a human, with no handoff in progress: watch it,
        or count it as a repeat of the ask already watched. Counted once."""
        matched = human_request_match(message.body, self.s.rules.patterns)
        if not matched:
            return
        asks = self.c.asks
        # Each message reaches the rules once (a late one replays the conversation in time
        # order: handoffs/replay.py); ids say nothing of time, so only identity is checked.
        if any(message.pk in (a.message_id, a.last_repeat_message_id) for a in asks):
            return
        watched = next((a for a in asks if a.status == WATCHING and a.asked_at <= message.sent_at),
                       None)
        if watched is not None:
            watched.repeats += 1
            watched.last_repeat_message_id = message.pk
            self.ask_touch(watched, "repeats", "last_repeat_message_id")
            return
        ask = AskRow(conversation_id=self.c.pk, message_id=message.pk, asked_at=message.sent_at,
                     matched=matched[:255], excerpt=message.body[:200])
        asks.append(ask)
        self.plan.new_asks.append(ask)

    def asks_satisfied(self, handoff: HandoffRow, *, at: datetime) -> None:
        for ask in self.c.asks:
            if ask.status == WATCHING and ask.asked_at <= at:
                ask.status, ask.handoff, ask.decided_at = SATISFIED, handoff, at
                self.ask_touch(ask, "status", "handoff", "decided_at")
        # A request reported late: asks judged missed after it was made were answered in time.
        for ask in self.c.asks:
            if ask.status == MISSED_ASK and ask.asked_at <= at and ask.decided_at > at:
                ask.status, ask.handoff, ask.decided_at = SATISFIED, handoff, at
                self.ask_touch(ask, "status", "handoff", "decided_at")
                flag = self.c.flags.get((MISSED, MESSAGE_SUBJECT, ask.message_id))
                if flag is not None:
                    self.flag_resolve(
                        flag, f"Cleared automatically: a handoff was requested at "
                        f"{note_time(at)} (reported late), before the ask was judged missed.")

    def asks_count_ai_turn(self, message: MessageRow) -> None:
        limit = self.s.rules.missed_ai_turns
        for ask in self.c.asks:
            if (ask.status != WATCHING or ask.asked_at > message.sent_at
                    or ask.last_ai_message_id == message.pk):
                continue
            ask.ai_turns += 1
            ask.last_ai_message_id = message.pk
            self.ask_touch(ask, "ai_turns", "last_ai_message_id")
            if ask.ai_turns >= limit:
                self.ask_missed(ask, at=message.sent_at, why=ai_turns_why(ask.ai_turns))

    def asks_missed(self, *, at: datetime, why: str) -> None:
        for ask in self.c.asks:
            if ask.status == WATCHING and ask.asked_at <= at:
                self.ask_missed(ask, at=at, why=why)

    def ask_missed(self, ask: AskRow, *, at: datetime, why: str) -> None:
        ask.status, ask.decided_at = MISSED_ASK, at
        self.ask_touch(ask, "status", "decided_at")
        self.flag_raise(
            kind=MISSED, subject_type=MESSAGE_SUBJECT, subject=ask.message_id,
            severity=Flag.Severity.HIGH, at=at,
            evidence=ask_missed_evidence(ask, why,
                                         allowed_ai_turns=self.s.rules.missed_ai_turns),
        )
