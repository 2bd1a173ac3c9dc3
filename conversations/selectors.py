"""Reads. Views, commands and later the API call these instead of building querysets."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from .models import (
    AIStep,
    Conversation,
    ConversationEvent,
    Flag,
    Message,
    MessageStatusEvent,
    Outcome,
    RawEvent,
)


def conversation_list(*, channel: str | None = None) -> QuerySet[Conversation]:
    """Most recently active first; ties broken by id so keyset pagination is stable."""
    qs = Conversation.objects.all()
    if channel:
        qs = qs.filter(channel=channel)
    return qs.order_by("-last_activity_at", "-id")


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    """A conversation's messages in time order, each with its delivery status history as a
    list in `status_list` (a list, not the manager: `status_events.all()` would clone a
    queryset per message, a tenth of a long replay)."""
    return (
        conversation.messages.select_related("participant")
        .prefetch_related(
            Prefetch(
                "status_events",
                queryset=MessageStatusEvent.objects.order_by("occurred_at", "id"),
                to_attr="status_list",
            )
        )
        .order_by("sent_at", "id")
    )


def message_status_history(*, message: Message) -> QuerySet[MessageStatusEvent]:
    return message.status_events.order_by("occurred_at", "id")


def status_events_waiting() -> QuerySet[MessageStatusEvent]:
    """Status reports whose message the auditor has not heard of yet."""
    return MessageStatusEvent.objects.filter(message__isnull=True).order_by("occurred_at")


def raw_events_for_reprocessing(
    *, include_processed: bool = False, provider: str | None = None
) -> QuerySet[RawEvent]:
    qs = RawEvent.objects.all()
    if not include_processed:
        qs = qs.filter(status=RawEvent.Status.FAILED)
    if provider:
        qs = qs.filter(provider=provider)
    return qs.order_by("received_at", "id")


@dataclass(frozen=True)
class JourneyItem:
    """One entry of a conversation's timeline: `kind` names the model, `obj` is the row."""

    at: datetime
    kind: str  # message | ai_step | event | outcome | flag
    obj: Any


_JOURNEY_ORDER = {"event": 0, "ai_step": 1, "message": 2, "outcome": 3, "flag": 4}


def conversation_journey(*, conversation: Conversation) -> list[JourneyItem]:
    """Everything that happened in a conversation, in time order, in six queries whatever
    its length: messages (with participants and status histories), AI steps, handoff and
    conversation events, outcomes, flags. Ties: events, then AI steps, then messages."""
    items = [JourneyItem(m.sent_at, "message", m)
             for m in conversation_messages(conversation=conversation)]
    items += [JourneyItem(s.occurred_at, "ai_step", s)
              for s in AIStep.objects.filter(conversation=conversation)]
    items += [JourneyItem(e.occurred_at, "event", e)
              for e in ConversationEvent.objects.filter(conversation=conversation)]
    items += [JourneyItem(o.occurred_at, "outcome", o)
              for o in Outcome.objects.filter(conversation=conversation)]
    items += [JourneyItem(f.raised_at, "flag", f)
              for f in Flag.objects.filter(conversation=conversation)]
    return sorted(items, key=lambda i: (i.at, _JOURNEY_ORDER[i.kind], i.obj.pk))
