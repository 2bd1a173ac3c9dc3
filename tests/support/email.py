"""Inbound e-mail as the tests post it: messages built with Python's email package and
posted the way each ESP posts them (Mailgun signed, Postmark and SendGrid with basic auth),
and the settings those posts need (`email_settings`)."""

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

SIGNING_KEY = "key-mailgun-test-signing-0123456789"
BASIC = "anymail:s3cr3t-webhook-pass"
SUPPORT = "support@acme.test"
CUSTOMER = "maria.jose@customer.test"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def email_settings(settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY, "WEBHOOK_SECRET": [BASIC]}
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "EMAIL_ADDRESSES": f"{SUPPORT.upper()}, billing@acme.test",
                                "EMAIL_THREAD_WINDOW_HOURS": 72}


# --- building messages ------------------------------------------------------------------


def mail(*, msg_id: str | None, subject: str, text: str | None = None, html: str | None = None,
         sender: str = f"María José <{CUSTOMER}>", to: str = f"Acme Support <{SUPPORT}>",
         at: datetime = T0, in_reply_to: str = "", references: str = "",
         charset: str = "utf-8", attachments: tuple[tuple[str, str, bytes], ...] = (),
         headers: tuple[tuple[str, str], ...] = ()) -> str:
    """`headers`: added first (as an ESP prepends its own)."""
    message = EmailMessage()
    for name, value in headers:
        message[name] = value
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    if msg_id:
        message["Message-ID"] = msg_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    if text is not None:
        message.set_content(text, charset=charset)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_string()


# What each ESP says of mail that passed its SPF and DKIM checks (channels.email reads it).
MAILGUN_PASS = (("X-Mailgun-Spf", "Pass"), ("X-Mailgun-Dkim-Check-Result", "Pass"))
SENDGRID_PASS = {"SPF": "pass", "dkim": "{@acme.test : pass}"}
POSTMARK_PASS = (("Received-SPF", "Pass (sender SPF authorized) identity=mailfrom"),
                 ("Authentication-Results", "inbound.postmarkapp.com; dkim=pass"))


def mailgun(client, raw: str, *, key: str = SIGNING_KEY, recipient: str = SUPPORT,
            credentials: str | None = BASIC,
            verdicts: tuple[tuple[str, str], ...] = MAILGUN_PASS):
    """`verdicts`: the headers Mailgun prepends to the message it forwards."""
    # With ANYMAIL["WEBHOOK_SECRET"] set, anymail also wants basic auth from Mailgun (the
    # route's URL carries it), on top of the signature.
    raw = "".join(f"{name}: {value}\n" for name, value in verdicts) + raw
    timestamp, token = str(int(time.time())), hashlib.sha256(raw.encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return client.post("/hooks/email/mailgun/inbound/", {
        "body-mime": raw, "recipient": recipient, "sender": CUSTOMER,
        "timestamp": timestamp, "token": token, "signature": signature.hexdigest(),
    }, headers=basic_auth(credentials) if credentials else {})


def basic_auth(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def postmark(client, raw: str, *, credentials: str | None = BASIC,
             esp_headers: tuple[tuple[str, str], ...] = POSTMARK_PASS):
    """`esp_headers`: headers Postmark lists after Return-Path (Received-SPF, ...)."""
    payload = {"RawEmail": raw, "OriginalRecipient": SUPPORT, "MessageID": "pm-1",
               "Headers": [{"Name": "Return-Path", "Value": f"<{CUSTOMER}>"},
                           *({"Name": n, "Value": v} for n, v in esp_headers)]}
    return client.post("/hooks/email/postmark/inbound/", json.dumps(payload),
                       content_type="application/json",
                       headers=basic_auth(credentials) if credentials else {})


def sendgrid(client, raw: str, *, credentials: str | None = BASIC,
             fields: dict[str, str] | None = SENDGRID_PASS):
    """`fields`: more of SendGrid's form fields (SPF, dkim, ...)."""
    envelope = json.dumps({"to": [SUPPORT], "from": CUSTOMER})
    return client.post("/hooks/email/sendgrid/inbound/",
                       {"email": raw, "envelope": envelope, "charsets": "{}", **(fields or {})},
                       headers=basic_auth(credentials) if credentials else {})
