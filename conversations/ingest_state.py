"""The state ingest decides from (conversations.ingest_load reads it, ingest_decide
uses it): plain data, no model instances."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .events import ConversationRef

Key = tuple[str, str]
Triple = tuple[str, str, str]  # channel, business address, customer address


@dataclass(frozen=True)
class KnownMessage:
    id: int
    conversation_id: int
    status: str
    status_rank: int
    status_at: datetime | None
    error_code: str


@dataclass(frozen=True)
class StoredReport:
    id: int
    status: str
    occurred_at: datetime
    error_code: str
    waiting: bool  # no message yet


@dataclass(frozen=True)
class EmailThread:
    id: int
    subject: str
    last_activity_at: datetime


@dataclass
class IngestState:
    messages: dict[Key, KnownMessage] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    open_threads: dict[Triple, int] = field(default_factory=dict)
    # The latest closed thread of each (e-mail excepted) and when it was closed: a message
    # dated before that close, delivered after it, belongs to it.
    closed_threads: dict[Triple, tuple[int, datetime]] = field(default_factory=dict)
    participants: dict[tuple[int, str, str], tuple[int, str]] = field(default_factory=dict)
    reports: dict[tuple[str, str, str], StoredReport] = field(default_factory=dict)
    lifecycle: dict[tuple[int, str], int] = field(default_factory=dict)
    email_threads: dict[tuple[str, str], list[EmailThread]] = field(default_factory=dict)
    # Customers (ingest_customers): by identity (kind, value); of the conversations an
    # identify event names.
    identities: dict[tuple[str, str], int] = field(default_factory=dict)
    conversation_customers: dict[int, int] = field(default_factory=dict)
    quality: QualityContext | None = None  # when the batch has AI or customer messages or steps


def ref_triple(ref: ConversationRef) -> Triple:
    """The thread an event names by addresses (by external id alone: that id stands for
    the customer until a message tells more)."""
    return (ref.channel, ref.business_address, ref.customer_address or ref.external_id)


def email_pair(ref: ConversationRef) -> tuple[str, str]:
    """Mailbox and customer of an e-mail AI step, compared lower-cased as inbound mail."""
    return (ref.business_address.lower(), ref.customer_address.lower() or ref.external_id)


@dataclass(frozen=True)
class StoredMessage:
    """A recent message of a conversation, as the answer-quality checks read it."""

    id: int
    author_kind: str
    text: str
    sent_at: datetime
    provider: str
    provider_message_id: str | None


@dataclass
class QualityContext:
    """The recent past of the batch's conversations (ingest_quality_load): their last
    messages and AI steps (each step a dict of AIStep columns), oldest first."""

    messages: dict[int, list[StoredMessage]] = field(default_factory=dict)
    steps: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
