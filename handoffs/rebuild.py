"""`rebuild_handoffs`: drop the derived handoff rows and replay history through the machine."""

from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef

from conversations.models import Conversation, Message

from .journey import journey_replay


def handoffs_rebuild(
    *,
    conversation_ids: Iterable[int] | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> int:
    """Replay some conversations (all when None) through the machine, each from all its
    rows in time order (handoffs/replay.py): for a changed machine or policy applied to
    history. Returns how many conversations were replayed."""
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
            journey_replay([conversation_id])
        count += 1
        if on_progress:
            on_progress(1)
    return count
