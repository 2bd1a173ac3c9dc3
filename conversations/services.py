"""Writes. Every row here is derived from a RawEvent, so re-applying one changes nothing.

Webhooks only store raw events (conversations.raw_events); the applier
(conversations.applier) claims them in batches and, for each batch, calls the normalizers
adapters registered here and `events_apply`: ingest (load → decide → write,
conversations.ingest) records messages, statuses, AI steps, outcomes and lifecycle events,
then the handoff machine is told (journey_recorded) inside the same transaction.

The helpers other apps use live in modules of their own and are re-exported here:
flags (flag_raise, ...), dashboard marks, late status joins, message_record.
"""

from collections.abc import Callable, Iterable

from .customer_journey import channel_switch_check
from .dashboard_marks import DayMarks, dashboard_days_mark
from .events import NormalizationError, NormalizedEvent
from .flags import conversations_flag_rank_refresh, flag_raise, flag_set_status
from .ingest import ingest, message_record
from .models import ConversationKey, Flag, Message, RawEvent
from .signals import journey_recorded
from .statuses import (
    message_statuses_join,
    message_statuses_join_many,
    message_statuses_reconcile,
)

__all__ = [
    "channel_switch_check", "conversation_key_add", "conversations_flag_rank_refresh",
    "dashboard_days_mark",
    "events_apply", "flag_raise", "flag_set_status", "message_record",
    "message_statuses_join", "message_statuses_join_many", "message_statuses_reconcile",
    "normalizer_get", "normalizer_register",
]

Normalizer = Callable[[RawEvent], list[NormalizedEvent]]
_NORMALIZERS: dict[tuple[str, str], Normalizer] = {}


def normalizer_register(*, provider: str, kind: str, normalizer: Normalizer) -> None:
    """Adapters register how to turn their raw events into normalized events (in ready()).

    The registry is what lets `reprocess_events` rebuild history without this app
    importing the adapters.
    """
    _NORMALIZERS[(provider, kind)] = normalizer


def normalizer_get(*, provider: str, kind: str) -> Normalizer:
    try:
        return _NORMALIZERS[(provider, kind)]
    except KeyError:
        raise NormalizationError(f"no normalizer registered for {provider}/{kind}") from None


def events_apply(*, events: Iterable[NormalizedEvent], raw_event: RawEvent | None = None) -> None:
    """Apply normalized events in order, then tell the other apps (journey_recorded) which
    messages and conversation events these raw events recorded, inside the same
    transaction; mark the dashboard days the batch changed (ingest's and the receivers',
    which return theirs as `DayMarks`) once."""
    _events_apply(list(events), raw_event).write()


def _events_apply(events: list[NormalizedEvent], raw_event: RawEvent | None) -> DayMarks:
    result = ingest(events=events, raw_event=raw_event)
    # The machine sees the messages this batch recorded, not those found again from an
    # earlier delivery or a reprocessing: it saw them when they were recorded, and its state
    # has moved on since (a batch redelivered under a new webhook-id must change nothing).
    # Lifecycle events go to it either way: its log is unique per event, so one it has seen
    # is recognised.
    recorded = set(result.new_message_ids)
    fresh = [m for m in result.messages if m.pk in recorded]
    for message in fresh:
        unverified = (message.metadata or {}).get("sender_unverified")
        if unverified:  # From our address without the ESP's word for it (channels.email)
            flag_raise(conversation=message.conversation, kind=Flag.Kind.SPOOFED_SENDER,
                       severity=Flag.Severity.HIGH, subject_type=Flag.SubjectType.MESSAGE,
                       subject_id=message.pk, evidence=unverified, at=message.sent_at)
    days = DayMarks().add(result.conversation_ids, moved_by=result.messages)
    if fresh or result.conversation_events:
        for _, answer in journey_recorded.send(
                sender=Message, messages=fresh, conversation_events=result.conversation_events,
                events_known=result.conversation_events_known):
            if isinstance(answer, DayMarks):
                days.merge(answer)
    # After the machine raised its flags: a customer back on another channel after a
    # failed handoff (customer_journey; it compares all of the customer's conversations).
    channel_switch_check(conversation_ids=result.conversation_ids)
    return days


def conversation_key_add(*, conversation_id: int, key: str) -> None:
    """Register a name for a conversation; a name already taken keeps its conversation."""
    ConversationKey.objects.bulk_create(
        [ConversationKey(conversation_id=conversation_id, key=key)], ignore_conflicts=True
    )
