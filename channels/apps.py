from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    # The package is called `channels` (the product's name for provider adapters); the label
    # differs so it can sit beside the Django Channels package in a host project.
    name = "channels"
    label = "auditor_channels"
    verbose_name = "Channels (provider webhooks)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import inbound, tracking

        from conversations.services import normalizer_register

        from . import checks, email, events, otlp, twilio  # noqa: F401 (checks: registers them)

        for view in (*twilio.WEBHOOK_VIEWS, *events.WEBHOOK_VIEWS, *otlp.WEBHOOK_VIEWS):
            normalizer_register(provider=view.provider, kind=view.kind, normalizer=view.normalize)
        normalizer_register(provider=email.PROVIDER, kind=email.KIND, normalizer=email.normalize)
        normalizer_register(provider=email.PROVIDER, kind=email.TRACKING_KIND,
                            normalizer=email.tracking_normalize)
        inbound.connect(email.inbound_received, dispatch_uid="handoff_auditor.email.inbound")
        tracking.connect(email.tracking_received, dispatch_uid="handoff_auditor.email.tracking")
