"""The alerts app's settings: keys of the one `settings.HANDOFF_AUDITOR` dict, prefixed
ALERTS_, with these defaults (docs/alerts.md)."""

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Destinations may use http:// (default: https only).
    "ALERTS_ALLOW_HTTP": False,
    # Destinations may resolve to loopback, private, link-local or reserved addresses
    # (default: refused, checked when saved and again at send time).
    "ALERTS_ALLOW_PRIVATE_ADDRESSES": False,
    # Seconds to connect and to wait for an answer; a receiver slower than that is a failure.
    "ALERTS_CONNECT_TIMEOUT": 3.0,
    "ALERTS_READ_TIMEOUT": 5.0,
    # Attempts before a delivery becomes a dead letter; the wait before attempt n+1 is
    # BACKOFF_SECONDS * 2**(n-1), capped at BACKOFF_MAX_SECONDS.
    "ALERTS_MAX_ATTEMPTS": 8,
    "ALERTS_BACKOFF_SECONDS": 10.0,
    "ALERTS_BACKOFF_MAX_SECONDS": 1800.0,
    # How long a worker holds a delivery it is sending (a killed worker's delivery is
    # taken again by the sweep after this).
    "ALERTS_CLAIM_SECONDS": 60.0,
    # Flag ids skipped by the scan (uncommitted when it passed) are rechecked this long.
    "ALERTS_FLAG_GAP_MINUTES": 10,
    # Links in messages: the auditor's base URL as people reach it (else PUBLIC_BASE_URL).
    "ALERTS_BASE_URL": "",
    # The address alert e-mails come from (else DEFAULT_FROM_EMAIL).
    "ALERTS_FROM_EMAIL": "",
    "ALERTS_PAGERDUTY_URL": "https://events.pagerduty.com/v2/enqueue",
    # Threads one sweep sends with (one per destination, at most this many at once).
    "ALERTS_SEND_THREADS": 8,
    # Deliveries one sweep claims at a time, and how long it keeps claiming (seconds).
    "ALERTS_SWEEP_BATCH": 200,
    "ALERTS_SWEEP_SECONDS": 10.0,
    # The Celery queue deliveries go to ("": Celery's default routing).
    "ALERTS_QUEUE": "",
}


def alerts_setting(name: str) -> Any:
    if name not in DEFAULTS:
        raise AttributeError(f"Unknown alerts setting: {name}")
    return (getattr(settings, "HANDOFF_AUDITOR", {}) or {}).get(name, DEFAULTS[name])
