"""Sign requests the way the providers do, for tests, the smoke run and benchmarks."""

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def twilio_fixture(name: str) -> dict[str, str]:
    return json.loads((FIXTURES / "twilio" / f"{name}.json").read_text(encoding="utf-8"))


def twilio_signature(url: str, params: dict[str, str], token: str) -> str:
    # Twilio: base64(HMAC-SHA1(auth token, URL + each POST key and value, keys sorted)).
    return RequestValidator(token).compute_signature(url, params)


def twilio_request(url: str, params: dict[str, str], token: str) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a signed form POST to `url`."""
    return urlencode(params).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(url, params, token),
    }


def events_fixture(name: str) -> bytes:
    return (FIXTURES / "events" / f"{name}.json").read_bytes()


def events_headers(body: bytes, secret: str, *, msg_id: str,
                   timestamp: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed with the spec's reference library."""
    at = timestamp or datetime.now(tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }
