"""Normalized events: what a provider adapter turns a webhook into.

Adapters (in `channels`) speak their provider's vocabulary; everything past them speaks
only these types, so the ingest service never needs to know which provider was called.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class NormalizationError(ValueError):
    """The payload verified but cannot be turned into events; the raw event is kept failed."""


@dataclass(frozen=True, kw_only=True)
class MessageEvent:
    channel: str
    direction: str
    author_kind: str
    provider: str
    provider_message_id: str | None
    business_address: str
    customer_address: str
    occurred_at: datetime
    body: str = ""
    # E-mail: the reply without its quoted history, and the subject line.
    body_new: str = ""
    subject: str = ""
    author_id: str = ""
    author_name: str = ""
    author_metadata: dict[str, Any] = field(default_factory=dict)
    num_segments: int | None = None
    media: list[dict[str, str]] = field(default_factory=list)
    status: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # The platform's id for the conversation, registered so later events can name it.
    conversation_external_id: str = ""
    # E-mail threading: the Message-IDs this message answers (In-Reply-To first, then
    # References from the newest), and the subject without Re:/Fwd: prefixes.
    references: tuple[str, ...] = ()
    thread_subject: str = ""
    # The raw event it came from (set by the applier, which applies many at once).
    raw_event_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class StatusEvent:
    provider: str
    provider_message_id: str
    status: str
    provider_status: str
    occurred_at: datetime
    channel: str | None = None
    business_address: str = ""
    customer_address: str = ""
    error_code: str = ""
    error_message: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # The raw event it came from (set by the applier, which applies many at once).
    raw_event_id: int | None = None




@dataclass(frozen=True, kw_only=True)
class ConversationRef:
    """How an event names its conversation: by the platform's external id, by addresses, or
    both. An unknown conversation is opened (events may come before any message)."""

    channel: str
    business_address: str = ""
    customer_address: str = ""
    external_id: str = ""
    # An OpenTelemetry trace: a span that names no conversation joins the one another span
    # of its trace named (key `trace:<id>`).
    trace_id: str = ""


@dataclass(frozen=True, kw_only=True)
class AIStepEvent:
    conversation: ConversationRef
    external_id: str
    occurred_at: datetime
    operation: str
    fields: dict[str, Any] = field(default_factory=dict)  # AIStep columns, by name
    message_provider: str = ""
    message_provider_id: str = ""
    # The raw event it came from (set by the applier, which applies many at once).
    raw_event_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class LifecycleEvent:
    """handoff.* and conversation.* events, kept as reported."""

    conversation: ConversationRef
    external_id: str
    type: str
    occurred_at: datetime
    actor_kind: str = ""
    actor_id: str = ""
    actor_name: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    # The raw event it came from (set by the applier, which applies many at once).
    raw_event_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class OutcomeEvent:
    conversation: ConversationRef
    external_id: str
    occurred_at: datetime
    fields: dict[str, Any] = field(default_factory=dict)  # Outcome columns, by name
    # The raw event it came from (set by the applier, which applies many at once).
    raw_event_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class IdentifyEvent:
    """Who a conversation's customer is (customer.identified): any of a phone number, an
    e-mail address, the platform's customer id (conversations/ingest_customers.py)."""

    conversation: ConversationRef
    external_id: str
    occurred_at: datetime
    phone: str = ""
    email: str = ""
    customer_id: str = ""
    name: str = ""
    # The raw event it came from (set by the applier, which applies many at once).
    raw_event_id: int | None = None


NormalizedEvent = (MessageEvent | StatusEvent | AIStepEvent | LifecycleEvent | OutcomeEvent
                   | IdentifyEvent)
