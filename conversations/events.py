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


NormalizedEvent = MessageEvent | StatusEvent
