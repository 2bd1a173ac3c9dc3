"""Signal receivers: thin, they hand over to services."""

from typing import Any

from .journey import journey_apply


def on_journey_recorded(*, messages: list, conversation_events: list,
                        events_known: set[int] | None = None, **_: Any) -> None:
    journey_apply(messages=messages, conversation_events=conversation_events,
                  events_known=events_known or set())
