"""The handoff machine's explicit state and plan: plain dataclasses, no database.

`journey_load` fills a `BatchState` for a batch of recorded rows; `journey_decide` reads
it and the batch's items in time order and fills a `Plan` (mutating the state as it
goes, so later items see what earlier ones did); `journey_write` writes the plan. Rows
are compared by identity (`eq=False`): a handoff opened in this batch has no id until it
is written, and what refers to it holds the row itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .machine import Trigger


@dataclass(frozen=True)
class Rules:
    """The settings the rules read, taken once per batch."""

    patterns: tuple[str, ...]
    ai_replies_allowed: int
    missed_ai_turns: int
    whatsapp_window_hours: float


@dataclass(eq=False)
class MessageRow:
    pk: int
    conversation_id: int
    sent_at: datetime
    author_kind: str
    direction: str
    body: str
    raw_event_id: int | None
    agent: tuple[str, str] = ("", "")  # the participant's external id and display name


@dataclass(eq=False)
class EventRow:
    pk: int
    conversation_id: int
    type: str
    occurred_at: datetime
    actor_kind: str
    actor_id: str
    actor_name: str
    data: dict[str, Any]
    raw_event_id: int | None


@dataclass(eq=False)
class Item:
    at: datetime
    order: int  # events before messages at the same instant
    seq: int
    trigger: Trigger | None = None
    event: EventRow | None = None
    message: MessageRow | None = None


@dataclass(eq=False)
class WaitRow:
    handoff: HandoffRow
    kind: str
    started_at: datetime
    allowed_seconds: float | None
    business_hours: bool
    deadline_at: datetime | None
    source_message_id: int | None = None
    ended_at: datetime | None = None
    waited_seconds: float | None = None
    met: bool | None = None
    stalled_at: datetime | None = None
    pk: int | None = None


@dataclass(eq=False)
class FlagRow:
    conversation_id: int
    kind: str
    severity: str
    subject_type: str
    subject_id: int | None  # None while its handoff is new: see `handoff`
    evidence: dict[str, Any]
    raised_at: datetime
    status: str = "open"
    status_changed_at: datetime | None = None
    status_changed_by: str = ""
    note: str = ""
    updated_at: datetime | None = None
    handoff: HandoffRow | None = None
    pk: int | None = None
    changed: set[str] = field(default_factory=set)
    status_before: str = ""  # a loaded flag whose status the batch changes: its old one


@dataclass(eq=False)
class HandoffRow:
    conversation_id: int
    number: int
    channel: str
    state: str
    state_entered_at: datetime
    requested_at: datetime
    policy: dict[str, Any]
    requested_by: str = ""
    reason: str = ""
    queue: str = ""
    agent_id: str = ""
    agent_name: str = ""
    team: str = ""
    queued_at: datetime | None = None
    assigned_at: datetime | None = None
    engaged_at: datetime | None = None
    ended_at: datetime | None = None
    time_to_human: float | None = None
    time_to_human_business: float | None = None
    window_expires_at: datetime | None = None
    last_customer_message_at: datetime | None = None
    ai_replies_after_request: int = 0
    last_ai_message_id: int | None = None
    dropped_reasons: list[str] = field(default_factory=list)
    dropped_at: datetime | None = None
    stalled_count: int = 0  # as loaded
    pk: int | None = None
    # What the batch did to it.
    changed: set[str] = field(default_factory=set)
    stalls: int = 0  # late waits ended now: stalled_count + stalls, added in the database
    open_waits: list[WaitRow] = field(default_factory=list)
    reply_waits_ended: list[WaitRow] = field(default_factory=list)  # since the batch's start


@dataclass(eq=False)
class AskRow:
    conversation_id: int
    message_id: int
    asked_at: datetime
    matched: str
    excerpt: str
    ai_turns: int = 0
    last_ai_message_id: int | None = None
    repeats: int = 0
    last_repeat_message_id: int | None = None
    status: str = "watching"
    handoff: HandoffRow | None = None
    handoff_id: int | None = None
    decided_at: datetime | None = None
    pk: int | None = None
    changed: set[str] = field(default_factory=set)


@dataclass(eq=False)
class ConversationState:
    pk: int
    channel: str
    last_customer_message_at: datetime | None
    handoffs: list[HandoffRow] = field(default_factory=list)  # by number
    active: HandoffRow | None = None
    asks: list[AskRow] = field(default_factory=list)  # by id, new ones last
    # Rows of the conversation dated from the batch's first item on (loaded only where a
    # handoff may open or engage): catch-up, overtaken reply waits, the AI in charge.
    later_messages: list[MessageRow] = field(default_factory=list)
    later_events: list[EventRow] = field(default_factory=list)  # those that never open one
    ai_times: list[datetime] = field(default_factory=list)  # AI messages and steps
    # (kind, subject type, HandoffRow or message id) -> the active flag
    flags: dict[tuple[str, str, Any], FlagRow] = field(default_factory=dict)


@dataclass
class BatchState:
    rules: Rules
    now: datetime
    policies: list[Any]  # active SLAPolicy rows (read only)
    conversations: dict[int, ConversationState]
    seen: set[tuple[str, int]]  # log sources already seen (grows as the plan logs)
    waited: set[int]  # customer messages that started a wait (grows as waits open)


@dataclass(eq=False)
class TransitionRow:
    handoff: HandoffRow
    trigger: str
    from_state: str
    to_state: str
    occurred_at: datetime
    source_type: str
    source_id: int
    reason: str
    evidence: dict[str, Any]


@dataclass
class Plan:
    new_handoffs: list[HandoffRow] = field(default_factory=list)
    changed_handoffs: list[HandoffRow] = field(default_factory=list)  # loaded, changed
    transitions: list[TransitionRow] = field(default_factory=list)
    new_waits: list[WaitRow] = field(default_factory=list)
    ended_waits: list[WaitRow] = field(default_factory=list)  # loaded open, ended now
    new_asks: list[AskRow] = field(default_factory=list)
    changed_asks: list[AskRow] = field(default_factory=list)  # loaded, changed
    new_flags: list[FlagRow] = field(default_factory=list)
    changed_flags: list[FlagRow] = field(default_factory=list)  # loaded, changed
    flag_conversations: set[int] = field(default_factory=set)  # their flag rank to refresh
    day_conversations: set[int] = field(default_factory=set)
    day_moments: list[datetime] = field(default_factory=list)
