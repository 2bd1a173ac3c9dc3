"""Demo data for `manage.py seed_demo`: the Twilio vocabulary the hand-written journeys are
written in (numbers, SIDs, agents, lines, replies). The journeys are demo/journeys.py and
their replay demo/replay.py.

Two generators:

- Hand-written support journeys (`demo.journeys.SCENARIOS`) replayed through the real ingest
  path: each customer message and status callback is the form body Twilio would POST, stored as a
  raw event and normalized by the registered Twilio normalizer; AI and human replies go through
  `message_record`, the way the agent platform will report them. SIDs are derived from the
  scenario key and the message's position, so replaying a journey is a no-op (dedupe).
- A bulk writer (`demo.bulk.demo_bulk_seed`) for benchmarks: synthetic conversations
  written straight into the tables (COPY on PostgreSQL), with no raw events behind them.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from conversations.models import (
    AuthorKind,
    Channel,
)

PROVIDER = "twilio"
API_VERSION = "2010-04-01"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# A made-up account: the SIDs only have to look like Twilio's (2 letters + 32 hex digits).
ACCOUNT_SID = "ACde5eedde5eedde5eedde5eedde5eed00"
CHANNEL_INSTALL_SID = "XEde5eedde5eedde5eedde5eedde5eed00"
MEDIA_BASE = f"https://api.twilio.com/{API_VERSION}/Accounts/{ACCOUNT_SID}/Messages"
# Where our agents' outbound attachments are hosted (Twilio fetches them from our URL).
OUTBOUND_MEDIA_BASE = "https://cdn.brisa-home.example/support"

# The business side. 555-01xx (US) and 07700 900xxx (UK) are reserved for fiction.
WHATSAPP_NUMBER = "+14155238886"
SMS_NUMBER_US = "+14155550100"
SMS_NUMBER_EU = "+447700900100"
# Bulk rows live on their own number so they can be counted (and deleted) apart.
BULK_BUSINESS_ADDRESS = "+14155550199"

# Twilio's wording for the errors the journeys run into.
TWILIO_ERRORS: dict[str, str] = {
    "63016": (
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template."
    ),
    "30003": "Unreachable destination handset",
    "30007": "Message filtered",
}

# Calling code -> ISO country, for the FromCountry/ToCountry Twilio adds to SMS webhooks.
_COUNTRIES: dict[str, str] = {
    "1": "US", "20": "EG", "33": "FR", "34": "ES", "44": "GB", "48": "PL", "49": "DE",
    "52": "MX", "55": "BR", "91": "IN", "852": "HK",
}


def twilio_sid(prefix: str, *parts: object) -> str:
    """A stable Twilio-shaped SID (prefix + 32 hex digits) for the same parts, every run."""
    digest = hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()
    return prefix + digest[:32]


# GSM 03.38: the basic set costs one septet, the extension table two; anything else
# (one emoji, Arabic, Hindi, Chinese, "ê") switches the whole message to UCS-2.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def sms_segments(body: str) -> int:
    """How many SMS segments Twilio bills for `body` (160/153 GSM-7, 70/67 UCS-2)."""
    if all(ch in _GSM7_BASIC or ch in _GSM7_EXTENSION for ch in body):
        units = sum(2 if ch in _GSM7_EXTENSION else 1 for ch in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2  # astral emoji are two UTF-16 units
        single, multi = 70, 67
    return 1 if units <= single else -(-units // multi)


def _country(number: str) -> str:
    digits = number.lstrip("+")
    for size in (3, 2, 1):
        if digits[:size] in _COUNTRIES:
            return _COUNTRIES[digits[:size]]
    return ""


# --- the journeys' vocabulary -------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    kind: str  # AuthorKind.AI or AuthorKind.HUMAN
    id: str
    name: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusReport:
    """One status callback Twilio sends about an outbound message, `after` seconds later."""

    status: str
    after: float
    error_code: str = ""


@dataclass(frozen=True)
class Line:
    """One message of a journey."""

    at: float  # minutes after the journey starts
    body: str = ""
    agent: Agent | None = None  # None: the customer wrote it
    media: tuple[str, ...] = ()  # content types, one per attachment
    extra: Mapping[str, str] = field(default_factory=dict)  # more Twilio parameters
    # None: the channel's usual progression (sent, delivered, and read on WhatsApp).
    statuses: tuple[StatusReport, ...] | None = None
    # Seconds between sending and the agent platform reporting the message to us: status
    # callbacks due before then arrive before the message they are about.
    reported_after: float = 0.0
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    key: str  # stable: SIDs derive from it
    channel: str
    language: str
    customer: str  # E.164
    business: str  # E.164, without the whatsapp: prefix
    started_ago: timedelta
    story: str
    tags: frozenset[str]
    lines: tuple[Line, ...]
    profile_name: str = ""  # WhatsApp only


def said(at: float, body: str = "", *media: str, **extra: str) -> Line:
    """A customer message; extra keyword arguments are more Twilio parameters."""
    return Line(at=at, body=body, media=media, extra=extra)


def reply(
    agent: Agent,
    at: float,
    body: str,
    *media: str,
    statuses: tuple[StatusReport, ...] | None = None,
    reported_after: float = 0.0,
    metadata: Mapping[str, Any] | None = None,
) -> Line:
    return Line(
        at=at, body=body, agent=agent, media=media, statuses=statuses,
        reported_after=reported_after, metadata=metadata or {},
    )


def _journey(
    key: str,
    channel: str,
    language: str,
    customer: str,
    *,
    ago: timedelta,
    story: str,
    tags: str,
    lines: Iterable[Line],
    name: str = "",
    business: str | None = None,
) -> Scenario:
    if business is None:
        business = WHATSAPP_NUMBER if channel == Channel.WHATSAPP else SMS_NUMBER_US
    return Scenario(
        key=key, channel=channel, language=language, customer=customer, business=business,
        started_ago=ago, story=story, tags=frozenset(tags.split()), lines=tuple(lines),
        profile_name=name,
    )


WA, SMS = Channel.WHATSAPP, Channel.SMS
JPEG, PNG, WEBP = "image/jpeg", "image/png", "image/webp"
PDF, VOICE = "application/pdf", "audio/ogg"  # WhatsApp voice notes are Ogg/Opus


def _ago(days: float = 0, hours: float = 0, minutes: float = 0) -> timedelta:
    return timedelta(days=days, hours=hours, minutes=minutes)


FAILED_63016 = (StatusReport("failed", 1.5, "63016"),)
UNDELIVERED_30003 = (StatusReport("sent", 2), StatusReport("undelivered", 11, "30003"))
UNDELIVERED_30007 = (StatusReport("sent", 2), StatusReport("undelivered", 4, "30007"))
READ_BEFORE_DELIVERED = (
    StatusReport("sent", 2), StatusReport("read", 20), StatusReport("delivered", 26)
)
NOT_READ = (StatusReport("sent", 2), StatusReport("delivered", 5))

AVA = Agent(
    AuthorKind.AI, "support-bot", "Ava (AI)",
    {"model": "gpt-4o-mini-2024-07-18", "platform": "brisa-agent", "prompt": "support-v14"},
)
LUCIA = Agent(AuthorKind.HUMAN, "lucia.fernandez", "Lucía Fernández", {"team": "Tier 2 ES"})
RAFAEL = Agent(AuthorKind.HUMAN, "rafael.souza", "Rafael Souza", {"team": "Billing BR"})
CAMILLE = Agent(AuthorKind.HUMAN, "camille.martin", "Camille Martin", {"team": "Tier 2 FR"})
JONAS = Agent(AuthorKind.HUMAN, "jonas.becker", "Jonas Becker", {"team": "Tier 2 DE"})
MARTA = Agent(AuthorKind.HUMAN, "marta.nowak", "Marta Nowak", {"team": "Tier 2 PL"})
PRIYA = Agent(AuthorKind.HUMAN, "priya.sharma", "Priya Sharma", {"team": "Warranty"})
OMAR = Agent(AuthorKind.HUMAN, "omar.haddad", "Omar Haddad", {"team": "Tier 2 MENA"})
WEI = Agent(AuthorKind.HUMAN, "wei.chen", "陈伟 (Wei Chen)", {"team": "Tier 2 APAC"})
EMMA = Agent(AuthorKind.HUMAN, "emma.walsh", "Emma Walsh", {"team": "Tier 1 EN"})
MARCUS = Agent(AuthorKind.HUMAN, "marcus.reed", "Marcus Reed", {"team": "Team lead"})
