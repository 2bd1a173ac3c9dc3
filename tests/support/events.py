"""POST /hooks/events/ as the tests sign it: the path, the test secret, a signed post."""

import base64

from tests.support.signing import events_headers

PATH = "/hooks/events/"
WIDGET = "widget:brisa-home"
SECRET = "whsec_" + base64.b64encode(b"handoff-auditor-test-secret-0001").decode()


def post(client, body: bytes, *, msg_id="msg_2Kx9", secret=SECRET, timestamp=None,
         content_type="application/json", headers=None):
    signed = events_headers(body, secret, msg_id=msg_id, timestamp=timestamp)
    return client.post(PATH, body, content_type=content_type, headers=headers or signed)


def message(pmid, customer, *, kind="customer", direction="inbound", at, name="",
            channel="web", business=WIDGET, external_id="", provider=None):
    """A message.created event of a web-chat thread (or another channel)."""
    author = {"kind": kind, "id": customer if kind == "customer" else f"{kind}-1"}
    if name:
        author["name"] = name
    conversation = {"business_address": business, "customer_address": customer}
    if external_id:
        conversation["external_id"] = external_id
    data = {"channel": channel, "direction": direction, "author": author,
            "conversation": conversation, "body": f"body of {pmid}", "sent_at": at}
    if pmid:
        data["provider_message_id"] = pmid
    if provider:
        data["provider"] = provider
    return {"type": "message.created", "data": data}
