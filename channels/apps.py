from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    # The package is called `channels` (the product's name for provider adapters); the label
    # differs so it can sit beside the Django Channels package in a host project.
    name = "channels"
    label = "auditor_channels"
    verbose_name = "Channels (provider webhooks)"

    def ready(self) -> None:
        from conversations.services import normalizer_register

        from . import events, twilio

        for view in (*twilio.WEBHOOK_VIEWS, *events.WEBHOOK_VIEWS):
            normalizer_register(provider=view.provider, kind=view.kind, normalizer=view.normalize)
