from typing import Any

from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # conversations never imports scoring; it announces new messages with a signal.
        from conversations.signals import content_purged, message_recorded

        message_recorded.connect(_on_message_recorded, dispatch_uid="scoring.queue")
        content_purged.connect(_on_content_purged, dispatch_uid="scoring.purge")


def _on_message_recorded(
    sender: Any, message_id: int, message_ids: list[int] | None = None, **kwargs: Any
) -> None:
    from .services import message_recorded_receive

    message_recorded_receive(message_ids=message_ids or [message_id])


def _on_content_purged(sender: Any, message_ids: list[int], **kwargs: Any) -> None:
    from .services import score_explanations_scrub

    score_explanations_scrub(message_ids=message_ids)
