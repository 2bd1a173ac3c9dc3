"""Twilio as the tests play it: the test auth tokens, the webhook paths, and a client that
signs form webhooks the way Twilio does."""

from urllib.parse import urlencode

from django.test import Client

from tests.support.signing import twilio_signature

TOKEN = "0123456789abcdef0123456789abcdef"
OLD_TOKEN = "fedcba9876543210fedcba9876543210"
MESSAGES_PATH = "/hooks/twilio/messages/"
STATUS_PATH = "/hooks/twilio/status/"


class TwilioClient:
    """Posts form webhooks signed like Twilio signs them (over the URL it called)."""

    def __init__(self, client: Client, token: str = TOKEN) -> None:
        self.client = client
        self.token = token

    def post(self, path: str, params: dict[str, str], *, token: str | None = None,
             signed_url: str | None = None, **extra):
        url = signed_url or f"http://testserver{path}"
        signature = twilio_signature(url, params, token or self.token)
        return self.client.post(
            path,
            urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
            **extra,
        )

    def message(self, params: dict[str, str], **kw):
        return self.post(MESSAGES_PATH, params, **kw)

    def status(self, params: dict[str, str], **kw):
        return self.post(STATUS_PATH, params, **kw)
