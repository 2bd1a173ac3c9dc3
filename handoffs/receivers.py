"""Signal receivers: thin, they hand over to services."""

from typing import Any

from .journey import journey_apply


def on_journey_recorded(*, messages: list, conversation_events: list, **_: Any) -> None:
    journey_apply(messages=messages, conversation_events=conversation_events)
