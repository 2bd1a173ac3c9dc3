from django.urls import path

from .events import EventsWebhookView
from .twilio import TwilioMessageWebhookView, TwilioStatusWebhookView

app_name = "channels"

urlpatterns = [
    path("twilio/messages/", TwilioMessageWebhookView.as_view(), name="twilio-messages"),
    path("twilio/status/", TwilioStatusWebhookView.as_view(), name="twilio-status"),
    path("events/", EventsWebhookView.as_view(), name="events"),
]
