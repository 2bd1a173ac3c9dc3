"""One sender per destination kind: turn a delivery's payload into what the receiver
expects and send it once. A sender raises SendFailed (with the reason in words) for
anything that should be retried; UnsafeDestination is not retried."""

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.core.mail import EmailMessage
from standardwebhooks import Webhook

from .conf import alerts_setting
from .models import Delivery, Destination
from .netguard import url_check
from .payloads import email_message, pagerduty_body, slack_body


class SendFailed(Exception):
    pass


_local = threading.local()


def _session(url: str) -> requests.Session:
    """One kept-alive session per host and thread (a requests Session is not shared
    across threads)."""
    sessions: dict[tuple[str, str], requests.Session] = _local.__dict__.setdefault(
        "sessions", {})
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc)
    session = sessions.get(key)
    if session is None:
        session = sessions[key] = requests.Session()
    return session


def _post(url: str, *, body: bytes, headers: dict[str, str]) -> requests.Response:
    url_check(url)  # at send time: the host's addresses now (not when it was saved)
    try:
        response = _session(url).post(
            url, data=body, headers={"Content-Type": "application/json",
                                     "User-Agent": "handoff-auditor-alerts/1", **headers},
            timeout=(alerts_setting("ALERTS_CONNECT_TIMEOUT"),
                     alerts_setting("ALERTS_READ_TIMEOUT")),
            allow_redirects=False)
    except requests.Timeout as exc:
        raise SendFailed("The receiver did not answer in time.") from exc
    except requests.RequestException as exc:
        raise SendFailed(f"The receiver could not be reached ({type(exc).__name__}).") from exc
    if 300 <= response.status_code < 400:
        raise SendFailed(f"The receiver answered a redirect ({response.status_code}); "
                         "redirects are not followed.")
    if response.status_code >= 400:
        raise SendFailed(f"The receiver answered {response.status_code}.")
    return response


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def send_webhook(delivery: Delivery, destination: Destination) -> None:
    """Standard Webhooks: webhook-id is the delivery's idempotency key (the same on every
    retry), signed with the destination's whsec_ secret."""
    body = _json(delivery.payload)
    stamp = datetime.fromtimestamp(int(time.time()), tz=UTC)
    signature = Webhook(destination.secret).sign(delivery.key, stamp, body)
    _post(destination.target, body=body, headers={
        "webhook-id": delivery.key, "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature, "Idempotency-Key": delivery.key})


def send_slack(delivery: Delivery, destination: Destination) -> None:
    _post(destination.target, body=_json(slack_body(delivery.payload)), headers={})


def send_pagerduty(delivery: Delivery, destination: Destination) -> None:
    body = pagerduty_body(delivery.payload, routing_key=destination.secret)
    if body is None:
        return
    _post(destination.target or alerts_setting("ALERTS_PAGERDUTY_URL"), body=_json(body),
          headers={"Idempotency-Key": delivery.key})


def send_email(delivery: Delivery, destination: Destination) -> None:
    subject, text = email_message(delivery.payload)
    to = [a.strip() for a in destination.target.split(",") if a.strip()]
    message = EmailMessage(
        subject=subject, body=text, from_email=alerts_setting("ALERTS_FROM_EMAIL") or None,
        to=to, headers={"Message-ID": f"<{delivery.key}@handoff-auditor>",
                        "X-Handoff-Auditor-Delivery": delivery.key})
    try:
        message.send(fail_silently=False)
    except OSError as exc:  # smtplib errors are OSErrors
        raise SendFailed(f"The mail server refused or could not be reached ({exc}).") from exc


SENDERS = {
    Destination.Kind.WEBHOOK: send_webhook,
    Destination.Kind.SLACK: send_slack,
    Destination.Kind.PAGERDUTY: send_pagerduty,
    Destination.Kind.EMAIL: send_email,
}
