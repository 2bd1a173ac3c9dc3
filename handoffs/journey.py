"""The handoff machine's ingest path: load → decide → write, for one batch.

`journey_apply` receives conversations' `journey_recorded` signal inside the applier's
transaction, so a handoff never lags behind the rows that moved it and a failure rolls
back with them. `rebuild_handoffs` replays history through `journey_batch_apply`, telling
it which raw events have arrived so far.
"""

from collections.abc import Iterable

from conversations.models import ConversationEvent, Message

from .journey_decide import journey_decide
from .journey_load import journey_load
from .journey_write import journey_write


def journey_apply(
    *, messages: Iterable[Message], conversation_events: Iterable[ConversationEvent]
) -> None:
    """Let the machine see a batch of recorded messages and conversation events."""
    journey_batch_apply(messages=messages, conversation_events=conversation_events)


def journey_batch_apply(
    *,
    messages: Iterable[Message],
    conversation_events: Iterable[ConversationEvent],
    arrived: set[int] | None = None,
) -> None:
    """journey_apply; `arrived`: while history is replayed, the raw events replayed so far
    (catching up then looks only at rows that had arrived, as the live path would have)."""
    loaded = journey_load(messages=messages, conversation_events=conversation_events,
                          arrived=arrived)
    if loaded is None:
        return
    state, items = loaded
    journey_write(journey_decide(state, items), state)
