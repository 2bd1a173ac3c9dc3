"""`rebuild_handoffs`: drop the derived handoff rows and replay history through the machine."""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef

from conversations.models import Conversation, ConversationEvent, Flag, Message

from .flags import DROPPED, MISSED, STALLED
from .journey import journey_batch_apply
from .models import Handoff, HumanAsk
from .services import handoff_days_mark


def handoffs_rebuild(
    *,
    conversation_ids: Iterable[int] | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> int:
    """Drop the derived handoff rows of some conversations (all when None) and replay their
    messages and events through the machine, in time order. For a changed machine or
    policy applied to history; returns how many conversations were replayed."""
    conversations = Conversation.objects.all()
    if conversation_ids is not None:
        conversations = conversations.filter(pk__in=list(conversation_ids))
    # Retention emptied some of these conversations' text: replaying them would not find the
    # customers' asks for a human again and would delete their findings for good. Their
    # handoffs stay as they are.
    conversations = conversations.exclude(
        Exists(Message.objects.filter(conversation=OuterRef("pk"), purged_at__isnull=False)))
    count = 0
    for conversation_id in conversations.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            handoff_days_mark([conversation_id])  # the days of the handoffs about to go
            Handoff.objects.filter(conversation_id=conversation_id).delete()
            HumanAsk.objects.filter(conversation_id=conversation_id).delete()
            Flag.objects.filter(
                conversation_id=conversation_id, kind__in=[STALLED, DROPPED, MISSED]
            ).delete()
            _replay_in_arrival_order(conversation_id)
        count += 1
        if on_progress:
            on_progress(1)
    return count


def _replay_in_arrival_order(conversation_id: int) -> None:
    """Apply a conversation's rows as they arrived: one batch per raw event (a webhook
    delivery), in the order the deliveries were received, as the live path did."""
    units: dict[Any, tuple[Any, list[Message], list[ConversationEvent]]] = {}

    def unit(row: Message | ConversationEvent, at: datetime) -> tuple:
        raw = row.raw_event
        key = ("raw", raw.pk) if raw is not None else ("row", type(row).__name__, row.pk)
        order = (raw.received_at, raw.pk) if raw is not None else (at, 0)
        return units.setdefault(key, (order, [], []))

    messages = Message.objects.filter(conversation_id=conversation_id).select_related(
        "participant", "raw_event"
    )
    for message in messages:
        unit(message, message.sent_at)[1].append(message)
    events = ConversationEvent.objects.filter(conversation_id=conversation_id).select_related(
        "raw_event"
    )
    for event in events:
        unit(event, event.occurred_at)[2].append(event)
    arrived: set[int] = set()
    for _, unit_messages, unit_events in sorted(units.values(), key=lambda u: u[0]):
        arrived.update(r.raw_event_id for r in (*unit_messages, *unit_events)
                       if r.raw_event_id is not None)
        journey_batch_apply(messages=unit_messages, conversation_events=unit_events,
                            arrived=arrived)
