from django.urls import include, path

from . import email
from .events import EventsWebhookView
from .otlp import OTLPTracesView
from .twilio import TwilioMessageWebhookView, TwilioStatusWebhookView

app_name = "channels"

urlpatterns = [
    path("twilio/messages/", TwilioMessageWebhookView.as_view(), name="twilio-messages"),
    path("twilio/status/", TwilioStatusWebhookView.as_view(), name="twilio-status"),
    path("events/", EventsWebhookView.as_view(), name="events"),
    # OTLP/HTTP's default path for traces, so an SDK needs only the base endpoint.
    path("otlp/v1/traces", OTLPTracesView.as_view(), name="otlp-traces"),
    # django-anymail's own URL patterns (mailgun/inbound/, postmark/inbound/, ...), guarded.
    path("email/", include((email.urlpatterns, "anymail"))),
]
