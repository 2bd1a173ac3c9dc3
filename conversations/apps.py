from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Modules that register their flag kinds' sentences (conversations/flag_text.py).
        from . import customer_journey  # noqa: F401
        from .lookups import lookups_register
        from .quality.sentences import sentences_register

        lookups_register()
        sentences_register()
