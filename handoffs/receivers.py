"""Signal receivers: thin, they hand over to services."""

from typing import Any

from conversations.dashboard_marks import DayMarks

from .journey import journey_apply


def on_journey_recorded(*, messages: list, conversation_events: list,
                        events_known: set[int] | None = None, **_: Any) -> DayMarks:
    """The machine's dashboard days go back to the sender, which marks the batch's once."""
    return journey_apply(messages=messages, conversation_events=conversation_events,
                  events_known=events_known or set())
