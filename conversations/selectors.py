"""Reads. Views, commands and later the API call these instead of building querysets."""

from django.db.models import Prefetch, QuerySet

from .models import Conversation, Message, MessageStatusEvent, RawEvent


def conversation_list(*, channel: str | None = None) -> QuerySet[Conversation]:
    """Most recently active first; ties broken by id so keyset pagination is stable."""
    qs = Conversation.objects.all()
    if channel:
        qs = qs.filter(channel=channel)
    return qs.order_by("-last_activity_at", "-id")


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    """A conversation's messages in time order, each with its delivery status history."""
    return (
        conversation.messages.select_related("participant")
        .prefetch_related(
            Prefetch(
                "status_events",
                queryset=MessageStatusEvent.objects.order_by("occurred_at", "id"),
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
