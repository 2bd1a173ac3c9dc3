"""Sign requests the way the providers do, for tests, the smoke run and benchmarks."""

import json
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

FIXTURES = Path(__file__).parent / "fixtures"


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
