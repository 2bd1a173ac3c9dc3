from django.apps import AppConfig


class HandoffsConfig(AppConfig):
    name = "handoffs"
    verbose_name = "Handoffs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversations.signals import journey_recorded

        from . import receivers

        journey_recorded.connect(receivers.on_journey_recorded, dispatch_uid="handoffs.journey")
