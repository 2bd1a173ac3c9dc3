"""The handoff machine's ingest path: load → decide → write, for one batch.

`journey_apply` receives conversations' `journey_recorded` signal inside the applier's
transaction, so a handoff never lags behind the rows that moved it and a failure rolls
back with them. Conversations where the batch brings rows dated before rows the machine
has already seen are replayed in time order within the same batch (handoffs/replay.py), so
the order of arrival never changes where a journey ends; `rebuild_handoffs` is that same
replay (`journey_replay`).
"""

from collections.abc import Iterable
from datetime import datetime

from conversations.dashboard_marks import DayMarks
from conversations.models import ConversationEvent, Message

from .journey_decide import journey_decide
from .journey_load import journey_load
from .journey_write import journey_write
from .replay import late_conversations, replay_finish, replay_prepare


def journey_apply(
    *, messages: Iterable[Message], conversation_events: Iterable[ConversationEvent],
    events_known: set[int] = frozenset(),
) -> DayMarks:
    """Let the machine see a batch of recorded messages and conversation events
    (`events_known`: those kept before, which the machine has seen: they arrive late only
    as copies, and the log recognises them). Returns the dashboard days it changed, which
    the batch marks once with its own."""
    messages = list(messages)
    conversation_events = list(conversation_events)
    earliest: dict[int, datetime] = {}
    for conversation_id, at in [*((m.conversation_id, m.sent_at) for m in messages),
                                *((e.conversation_id, e.occurred_at)
                                  for e in conversation_events if e.pk not in events_known)]:
        if conversation_id not in earliest or at < earliest[conversation_id]:
            earliest[conversation_id] = at
    late = late_conversations(earliest, message_ids=[m.pk for m in messages],
                              event_ids=[e.pk for e in conversation_events])
    if not late:
        return _decide_and_write(messages, conversation_events)
    parked, replay_messages, replay_events, days = replay_prepare(late)
    days.merge(_decide_and_write(
        [*(m for m in messages if m.conversation_id not in late), *replay_messages],
        [*(e for e in conversation_events if e.conversation_id not in late), *replay_events],
    ))
    replay_finish(late, parked)
    return days


def journey_replay(conversation_ids: Iterable[int]) -> None:
    """Decide these conversations' journeys again from all their rows, in time order."""
    ids = sorted(set(conversation_ids))
    if ids:
        parked, messages, events, days = replay_prepare(ids)
        days.merge(_decide_and_write(messages, events))
        replay_finish(ids, parked)
        days.write()


def _decide_and_write(messages: list[Message],
                      conversation_events: list[ConversationEvent]) -> DayMarks:
    loaded = journey_load(messages=messages, conversation_events=conversation_events)
    if loaded is None:
        return DayMarks()
    state, items = loaded
    return journey_write(journey_decide(state, items), state)
