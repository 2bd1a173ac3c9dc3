"""E-mail through django-anymail's inbound webhooks (Mailgun, Postmark, SendGrid, ...).

Anymail verifies each ESP's request (Mailgun's signature, basic auth for Postmark and
SendGrid) and parses its format into an AnymailInboundMessage; we never read the ESP's
format ourselves. Its `inbound` signal reaches `inbound_received`, which stores the message
as raw MIME (a RawEvent, provider "email", kind "inbound", deduplicated on the Message-ID)
and applies it in the same transaction. `normalize` re-parses that stored MIME alone, so
`manage.py reprocess_events` rebuilds e-mail rows from history like any other channel.

Anymail's URL patterns are mounted under /hooks/email/ (e.g. /hooks/email/mailgun/inbound/),
each wrapped by `guarded` so refusals are our JSON 4xx and nothing answers 500.
"""

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache, wraps
from typing import Any

from anymail import urls as anymail_urls
from anymail.exceptions import (
    AnymailConfigurationError,
    AnymailError,
    AnymailWebhookValidationFailure,
)
from anymail.inbound import AnymailInboundMessage
from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, EventType
from anymail.utils import get_anymail_setting
from anymail.webhooks.base import AnymailBasicAuthMixin
from anymail.webhooks.mailgun import (
    MailgunInboundWebhookView,
    MailgunTrackingWebhookView,
)
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern
from inscriptis import get_text
from mailparser_reply import EmailReplyParser

from conversations.applier import applier_wake
from conversations.conf import auditor_settings
from conversations.events import (
    MessageEvent,
    NormalizationError,
    NormalizedEvent,
    StatusEvent,
)
from conversations.models import AuthorKind, Channel, DeliveryStatus, Direction, RawEvent
from conversations.raw_events import IngestResult, RawEventSpec, StoreResult, raw_events_store

from .base import thread_key

logger = logging.getLogger(__name__)

PROVIDER = "email"
KIND = "inbound"
TRACKING_KIND = "tracking"
# Mailgun signs a timestamp but anymail does not check its age: older ones are replays.
MAILGUN_TIMESTAMP_TOLERANCE = 300  # seconds, as for the events endpoint
# Languages whose reply headers ("On ... wrote:", "Am ... schrieb:") mark quoted history.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv", "pl"]

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
# "Re:", "RE[2]:", "Fwd:", "AW:", "WG:", "SV:", "Antw:", "TR:", "RIF:" ... repeated.
_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|tr|rif|r)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


class EmailRefused(Exception):
    """A verified request whose message cannot be stored at all (answered 400)."""


class EmailStorageFailed(Exception):
    """Storing a verified request failed on our side (the database, or a bug past the
    normalizer's safety net): answered 503 with Retry-After so the ESP sends it again."""


# --- parsing (shared by the webhook and reprocessing) -----------------------------------


def message_ids(value: str | None) -> list[str]:
    """Message-IDs in a header, as "<id@host>"; a bare id without brackets is accepted."""
    if not value:
        return []
    found = [f"<{m}>" for m in _MESSAGE_ID.findall(str(value))]
    if not found and str(value).strip() and " " not in str(value).strip():
        found = [f"<{str(value).strip().strip('<>')}>"]
    return found


def subject_normalize(subject: str) -> str:
    """The thread's subject: without reply/forward prefixes, whitespace collapsed."""
    return " ".join(_SUBJECT_PREFIX.sub("", subject or "").split())


def html_to_text(html: str) -> str:
    return get_text(html).strip()


@cache
def _reply_parser() -> EmailReplyParser:
    return EmailReplyParser(languages=REPLY_LANGUAGES)


def reply_new_part(text: str) -> str:
    """The new part of a reply, without quoted history; "" when the body is all new."""
    new = (_reply_parser().parse_reply(text=text) or "").strip()
    return "" if new == text.strip() else new


def _addresses(message: AnymailInboundMessage, header: str) -> list[Any]:
    try:
        return list(message.get_address_header(header))
    except (ValueError, TypeError, IndexError):  # a header too broken to parse
        return []


def _addr(address: Any) -> str:
    return (address.addr_spec or "").strip().lower()


def _attachments(message: AnymailInboundMessage) -> list[dict[str, Any]]:
    media = []
    for part in message.walk():
        if part.is_multipart() or not (part.is_attachment() or part.is_inline()):
            continue
        if part.is_inline() and not part.get_filename() and part.get_content_maintype() == "text":
            continue  # a body part marked inline, not an attachment
        try:
            size = len(part.get_content_bytes() or b"")
        except (LookupError, ValueError, TypeError):
            size = len(part.get_payload() or "")
        media.append({
            "filename": part.get_filename() or "",
            "content_type": part.get_content_type(),
            "size": size,
            **({"inline": True} if part.is_inline() else {}),
        })
    return media


def _body(message: AnymailInboundMessage) -> str:
    try:
        text = message.text
        if text is None and message.html is not None:
            return html_to_text(message.html)
    except (LookupError, ValueError) as exc:  # unknown charset, broken encoding
        raise NormalizationError(f"unreadable body: {exc}") from exc
    return (text or "").replace("\r\n", "\n").strip()


# --- the ESP's authentication verdicts ---------------------------------------------------
#
# Each ESP checks SPF and DKIM on the mail it receives and says so: Mailgun in headers it
# adds to the message (X-Mailgun-Spf, X-Mailgun-Dkim-Check-Result), SendGrid in form fields
# (SPF, dkim), Postmark in the headers it lists (Received-SPF, Authentication-Results).
# A sender can write any of these headers into the message itself, so only those places
# are read, per ESP, and of Mailgun's headers only the first (top-most: the one Mailgun
# prepended) of each counts. Read at the webhook and stored
# with the raw event (headers "spf", "dkim"), so reprocessing needs nothing else.

VERDICT_WORDS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror",
                 "policy")
_VERDICT = re.compile(r"\b(" + "|".join(VERDICT_WORDS) + r")\b", re.IGNORECASE)
_AUTH_RESULT = re.compile(r"\b(spf|dkim)\s*=\s*([a-z]+)", re.IGNORECASE)


def _verdict(text: str) -> str:
    words = [w.lower() for w in _VERDICT.findall(text or "")]
    if "fail" in words or "softfail" in words or "permerror" in words:
        return "fail"  # several DKIM signatures: any failure is one
    return words[0] if words else ""


def verdicts_read(headers: list[tuple[str, str]], fields: dict[str, str]) -> dict[str, str]:
    """SPF and DKIM verdicts ("pass", "fail", ..., "" if not given) from the ESP's form
    `fields` (SendGrid) and the message's or the ESP's `headers`, first occurrence only."""
    first: dict[str, str] = {}
    for name, value in headers:
        first.setdefault(name.lower(), str(value))
    out = {"spf": _verdict(fields.get("SPF", "")), "dkim": _verdict(fields.get("dkim", ""))}
    out["spf"] = out["spf"] or _verdict(first.get("x-mailgun-spf", "")) \
        or _verdict(first.get("received-spf", ""))
    out["dkim"] = out["dkim"] or _verdict(first.get("x-mailgun-dkim-check-result", ""))
    for method, result in _AUTH_RESULT.findall(first.get("authentication-results", "")):
        out[method.lower()] = out[method.lower()] or _verdict(result)
    return out


def sender_authenticated(verdicts: dict[str, str]) -> bool:
    """One verdict passes and none fails; without any verdict, only if the setting trusts
    the relay (EMAIL_TRUST_RELAY_WITHOUT_VERDICTS)."""
    given = [v for v in verdicts.values() if v]
    if not given:
        return bool(auditor_settings.EMAIL_TRUST_RELAY_WITHOUT_VERDICTS)
    return "pass" in given and not any(v in ("fail", "softfail", "permerror") for v in given)


def _esp_verdicts(event: AnymailInboundEvent, esp_name: str) -> dict[str, str]:
    """Only where each ESP puts its own verdicts; another ESP's gives none."""
    esp_event = event.esp_event
    headers: list[tuple[str, str]] = []
    fields: dict[str, str] = {}
    esp = esp_name.lower()
    if esp == "sendgrid" and isinstance(esp_event, HttpRequest):
        fields = {k: esp_event.POST.get(k, "") for k in ("SPF", "dkim")}
    elif esp == "mailgun":
        headers = [(n, v) for n, v in event.message.items()
                   if n.lower().startswith("x-mailgun-")]
    elif esp == "postmark" and isinstance(esp_event, dict):
        headers = [(str(h.get("Name", "")), str(h.get("Value", "")))
                   for h in esp_event.get("Headers") or [] if isinstance(h, dict)]
    return verdicts_read(headers, fields)


def normalize(raw_event: RawEvent) -> list[NormalizedEvent]:
    """The MessageEvent of one stored e-mail (raw MIME in raw_event.body)."""
    message = AnymailInboundMessage.parse_raw_mime(raw_event.body)
    ours = set(auditor_settings.EMAIL_ADDRESSES)
    sender = _addresses(message, "From")
    if not sender or not _addr(sender[0]):
        raise NormalizationError("the message has no From address")
    sender_address, sender_name = _addr(sender[0]), sender[0].display_name or ""
    recipients = [_addr(a) for a in (*_addresses(message, "To"), *_addresses(message, "Cc"))]
    recipients = [a for a in recipients if a]
    envelope = (raw_event.headers.get("envelope_recipient") or "").strip().lower()

    suspect: dict[str, str] = {}
    if sender_address in ours:
        direction = Direction.OUTBOUND
        author_kind = auditor_settings.EMAIL_OUTBOUND_AUTHOR or AuthorKind.HUMAN
        verdicts = {k: raw_event.headers.get(k, "") for k in ("spf", "dkim")}
        if not sender_authenticated(verdicts):
            # Anyone can write our address in From: without the ESP's word that it came
            # from us, it is no reply of ours (it would engage handoffs and clear flags).
            author_kind = AuthorKind.SYSTEM
            suspect = {"from": sender_address, **verdicts,
                       "esp": raw_event.headers.get("esp", "")}
        business = sender_address
        customers = [a for a in recipients if a not in ours]
        if not customers:
            raise NormalizationError("outbound message with no customer among To/Cc")
        customer, author_id, author_name = customers[0], sender_address, sender_name
    else:
        direction, author_kind = Direction.INBOUND, AuthorKind.CUSTOMER
        candidates = [a for a in recipients if a in ours]
        if envelope:
            candidates.append(envelope)
        candidates += recipients
        if not candidates:
            raise NormalizationError("the message has no recipient")
        business = candidates[0]
        customer, author_id, author_name = sender_address, sender_address, sender_name

    own_ids = message_ids(message.get("Message-ID"))
    in_reply_to = message_ids(message.get("In-Reply-To"))
    references = message_ids(message.get("References"))
    thread = list(dict.fromkeys([*in_reply_to, *reversed(references)]))
    try:
        occurred_at = message.date
    except (ValueError, TypeError, IndexError):
        occurred_at = None
    if occurred_at is None:
        occurred_at = raw_event.received_at
    elif occurred_at.tzinfo is None:  # "Date: ... -0000": UTC, origin unknown
        occurred_at = occurred_at.replace(tzinfo=UTC)

    subject = " ".join(str(message.get("Subject") or "").split())
    body = _body(message)
    return [MessageEvent(
        channel=Channel.EMAIL,
        direction=direction,
        author_kind=author_kind,
        provider=PROVIDER,
        provider_message_id=own_ids[0] if own_ids else None,
        business_address=business,
        customer_address=customer,
        occurred_at=occurred_at,
        body=body,
        body_new=reply_new_part(body) if body else "",
        subject=subject,
        author_id=author_id,
        author_name=author_name,
        media=_attachments(message),
        metadata={
            "esp": raw_event.headers.get("esp", ""),
            "message_id": own_ids[0] if own_ids else "",
            "in_reply_to": in_reply_to,
            "references": references,
            "to": recipients,
            **({"html_only": True} if message.text is None and message.html else {}),
            **({"sender_unverified": suspect} if suspect else {}),
        },
        references=tuple(thread),
        thread_subject=subject_normalize(subject),
    )]


# --- the anymail signal ------------------------------------------------------------------


def _raw_mime(event: AnymailInboundEvent) -> str:
    """The message as the ESP sent it where it sent raw MIME, else as anymail built it."""
    esp_event = event.esp_event
    raw: Any = None
    if isinstance(esp_event, HttpRequest):  # Mailgun body-mime, SendGrid "Send Raw"
        raw = esp_event.POST.get("body-mime") or esp_event.POST.get("email")
    elif isinstance(esp_event, dict):  # Postmark with "include raw email content"
        raw = esp_event.get("RawEmail")
    if isinstance(raw, str) and raw.strip():
        return raw
    return event.message.as_string()


def dedupe_key(message: AnymailInboundMessage, raw: str) -> str:
    ids = message_ids(message.get("Message-ID"))
    key = f"message-id:{ids[0]}" if ids else ""
    if not key or len(key) > RawEvent._meta.get_field("dedupe_key").max_length:
        key = "mime-sha256:" + hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()
    return key


def inbound_received(sender: Any, event: AnymailInboundEvent, esp_name: str,
                     **kwargs: Any) -> None:
    """anymail.signals.inbound receiver: store the raw MIME (the applier applies it)."""
    raw = _raw_mime(event)
    if "\x00" in raw:
        raise EmailRefused("the message contains a NUL character")
    verdicts = _esp_verdicts(event, esp_name)
    headers = {"esp": esp_name, **{k: v[:32] for k, v in verdicts.items() if v}}
    envelope = getattr(event.message, "envelope_recipient", None)
    if envelope:
        headers["envelope_recipient"] = str(envelope)[:255]
    sender_and_to = [_addr(a) for a in (*_addresses(event.message, "From")[:1],
                                         *_addresses(event.message, "To")[:1])]
    result = _store(
        partition_key=thread_key(*sender_and_to),
        kind=KIND,
        dedupe_key=dedupe_key(event.message, raw),
        body=raw,
        content_type="message/rfc822",
        headers=headers,
        received_at=event.timestamp if isinstance(event.timestamp, datetime) else None,
    )
    logger.info("email via %s: raw event %s%s (%s)", esp_name, result.raw_event.pk,
                " duplicate" if result.duplicate else "", result.raw_event.status)


def _store(*, received_at: datetime | None = None, **spec: Any) -> Any:
    """Store one raw event and wake the applier. Whatever fails here is a failure of ours,
    not of the request, and must make the ESP retry (503)."""
    try:
        stored: StoreResult = raw_events_store(provider=PROVIDER, received_at=received_at,
                                               specs=[RawEventSpec(**spec)])
    except DatabaseError as exc:  # transient or not: the transaction rolled back whole
        raise EmailStorageFailed(f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a bug of ours
        logger.exception("email raw event could not be stored")
        raise EmailStorageFailed(f"{type(exc).__name__}: {exc}") from exc
    if not stored.duplicate[0]:
        applier_wake()
    return IngestResult(raw_event=stored.raw_events[0], duplicate=stored.duplicate[0])


# --- delivery tracking ------------------------------------------------------------------
#
# Anymail's tracking webhooks (mounted with the rest under /hooks/email/<esp>/tracking/)
# verify the ESP and map its event into an AnymailTrackingEvent. Each event is stored as a
# raw event (kind "tracking") holding the ESP's own event, and normalized from it by the
# same anymail mapping, so reprocessing needs nothing else. The status report joins the
# e-mail Message by its Message-ID (provider "email"), or waits for it like an early
# Twilio status callback.

# Postmark names a message by its own MessageID (a UUID) and sends it with the header
# "Message-ID: <that UUID@mtasv.net>" (it replaces any Message-ID the sender set), so that
# is the Message-ID its reports are joined by.
POSTMARK_MESSAGE_ID_HOST = "mtasv.net"

# The ESPs whose tracking events we store and can map again from the stored event.
TRACKING_VIEWS: dict[str, type] = {
    view.esp_name: view
    for view in (MailgunTrackingWebhookView, PostmarkTrackingWebhookView,
                 SendGridTrackingWebhookView)
}

# Anymail's normalized event types -> delivery status (None: not about delivery; the report
# is kept in the history with status "unknown", which never moves a message).
TRACKING_STATUS: dict[str, str] = {
    EventType.QUEUED: DeliveryStatus.QUEUED,
    EventType.SENT: DeliveryStatus.SENT,
    EventType.DEFERRED: DeliveryStatus.SENDING,
    EventType.DELIVERED: DeliveryStatus.DELIVERED,
    EventType.AUTORESPONDED: DeliveryStatus.DELIVERED,
    EventType.OPENED: DeliveryStatus.READ,
    EventType.CLICKED: DeliveryStatus.READ,
    EventType.BOUNCED: DeliveryStatus.UNDELIVERED,
    EventType.REJECTED: DeliveryStatus.FAILED,
    EventType.FAILED: DeliveryStatus.FAILED,
}


def tracking_dedupe_key(esp_name: str, event: AnymailTrackingEvent, body: str) -> str:
    """The ESP's id for the event where it has one (SendGrid's sg_event_id, Postmark's
    bounce ID), else a hash of the stored event.

    Mailgun: anymail's event_id is the signature token, new on every delivery attempt
    (each retry is signed afresh; stale signatures are refused), so a retry would not be
    recognised by it. The event's own id (unique within a day, Mailgun says) with its
    timestamp names it across retries; without them, the event data without the
    signature block is hashed."""
    event_id, hashed = event.event_id, body
    if esp_name == "Mailgun" and isinstance(event.esp_event, dict):
        data = event.esp_event.get("event-data") or {}
        event_id = f"{data['id']}@{data['timestamp']}" if (
            data.get("id") and data.get("timestamp")) else None
        hashed = json.dumps(data, sort_keys=True, ensure_ascii=False)
    key = f"{esp_name.lower()}:{event_id}" if event_id else ""
    if not key or len(key) > RawEvent._meta.get_field("dedupe_key").max_length:
        key = f"{esp_name.lower()}-sha256:" + hashlib.sha256(
            hashed.encode("utf-8", "surrogatepass")).hexdigest()
    return key


def tracking_received(sender: Any, event: AnymailTrackingEvent, esp_name: str,
                      **kwargs: Any) -> None:
    """anymail.signals.tracking receiver: store the ESP's event (the applier applies it)."""
    if esp_name not in TRACKING_VIEWS or not isinstance(event.esp_event, dict):
        # Another ESP, or Mailgun's legacy form webhooks: nothing to re-map it from later.
        raise EmailRefused(f"{esp_name} tracking events of this form are not supported")
    body = json.dumps({"esp": esp_name, "event": event.esp_event}, ensure_ascii=False,
                      sort_keys=True)
    if "\x00" in body:
        raise EmailRefused("the event contains a NUL character")
    result = _store(kind=TRACKING_KIND, dedupe_key=tracking_dedupe_key(esp_name, event, body),
                    body=body, content_type="application/json", headers={"esp": esp_name})
    logger.info("email tracking via %s: raw event %s%s (%s)", esp_name, result.raw_event.pk,
                " duplicate" if result.duplicate else "", result.raw_event.status)


def tracking_normalize(raw_event: RawEvent) -> list[NormalizedEvent]:
    """The StatusEvent of one stored tracking event, mapped again by anymail."""
    stored = json.loads(raw_event.body)
    view_class = TRACKING_VIEWS.get(stored.get("esp"))
    if view_class is None:
        raise NormalizationError(f"no tracking mapping for ESP {stored.get('esp')!r}")
    # Only the mapping is wanted: __init__ would read the webhook secrets, which mapping a
    # stored event does not need (esp_to_anymail_event reads class-level tables only).
    view = view_class.__new__(view_class)
    event = view.esp_to_anymail_event(stored["event"])
    message_id = event.message_id or ""
    if stored["esp"] == "Postmark" and message_id and "@" not in message_id:
        message_id = f"<{message_id}@{POSTMARK_MESSAGE_ID_HOST}>"
    ids = message_ids(message_id)
    if not ids:
        raise NormalizationError(f"{stored['esp']} {event.event_type} event names no message")
    detail = event.description or event.mta_response or ""
    return [StatusEvent(
        provider=PROVIDER,
        provider_message_id=ids[0],
        status=TRACKING_STATUS.get(event.event_type, DeliveryStatus.UNKNOWN),
        # One report per ESP and event type per message: a second "opened" adds nothing.
        provider_status=f"{stored['esp'].lower()}:{event.event_type}"[:64],
        occurred_at=event.timestamp or raw_event.received_at,
        error_code=str(event.reject_reason or "")[:32],
        error_message=str(detail),
        metadata={
            "esp": stored["esp"],
            "event_type": event.event_type,
            "event_id": event.event_id or "",
            "recipient": event.recipient or "",
            **({"reject_reason": event.reject_reason} if event.reject_reason else {}),
        },
    )]


# --- Mailgun: refuse stale signatures ---------------------------------------------------


class MailgunFreshTimestamp:
    """Mixin for anymail's Mailgun views (its validators are collected over the class
    hierarchy): the signed timestamp must be within MAILGUN_TIMESTAMP_TOLERANCE of now,
    so a captured request cannot be replayed later. Anymail checks the signature only."""

    def validate_request(self, request: HttpRequest) -> None:
        if request.content_type == "application/json":  # tracking: {"signature": {...}}
            try:
                signed = json.loads(request.body.decode("utf-8"))["signature"]["timestamp"]
            except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
                raise AnymailWebhookValidationFailure(
                    "Mailgun webhook without a signature timestamp") from exc
        else:  # inbound routes: form fields
            signed = request.POST.get("timestamp")
        try:
            age = abs(time.time() - float(signed))
        except (TypeError, ValueError) as exc:
            raise AnymailWebhookValidationFailure(
                "Mailgun webhook without a usable signature timestamp") from exc
        if not age <= MAILGUN_TIMESTAMP_TOLERANCE:
            raise AnymailWebhookValidationFailure(
                f"Mailgun signature timestamp is {int(age)} s off (at most "
                f"{MAILGUN_TIMESTAMP_TOLERANCE} s): refused as a possible replay")


class MailgunInboundView(MailgunFreshTimestamp, MailgunInboundWebhookView):
    pass


class MailgunTrackingView(MailgunFreshTimestamp, MailgunTrackingWebhookView):
    pass


MAILGUN_VIEWS: dict[type, type] = {
    MailgunInboundWebhookView: MailgunInboundView,
    MailgunTrackingWebhookView: MailgunTrackingView,
}


# --- anymail's views, guarded -----------------------------------------------------------


def _refuse(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def _needs_basic_auth(view_class: type) -> bool:
    return issubclass(view_class, AnymailBasicAuthMixin) and view_class.warn_if_no_basic_auth


# --- basic auth per ESP route -----------------------------------------------------------
#
# Anymail reads one WEBHOOK_SECRET for every ESP's routes, so the credentials given to one
# ESP would open every other ESP's routes too (a Postmark secret could post as SendGrid).
# Each route's view here takes its ESP's own credentials from EMAIL_WEBHOOK_SECRETS (passed
# to anymail's view as its `webhook_secret`), and only ESPs without their own fall back to
# the shared one.

_ROUTE_ESP = re.compile(r"^\^?([a-z0-9_]+)/")


def route_secrets(esp: str) -> list[str]:
    """The basic-auth credentials a route of `esp` (its URL segment) accepts."""
    own = auditor_settings.EMAIL_WEBHOOK_SECRETS.get(esp)
    if own:
        return own
    shared = get_anymail_setting("webhook_secret", default=[])
    return [shared] if isinstance(shared, str) and shared else list(shared or [])


def _per_esp(view_class: type, esp: str) -> type:
    """`view_class` taking the basic auth of `esp` alone."""

    def __init__(self: Any, **kwargs: Any) -> None:
        secrets = route_secrets(esp)
        if secrets:
            kwargs["webhook_secret"] = secrets  # anymail reads it from its init kwargs first
        view_class.__init__(self, **kwargs)

    return type(view_class.__name__, (view_class,), {
        "__init__": __init__, "route_esp": esp, "__module__": __name__,
        "__doc__": f"{view_class.__doc__ or ''} Basic auth: the {esp} route's own secret."})


def guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anymail's view, with its refusals as our JSON 4xx and never a 500.

    ESPs secured only by basic auth are refused unless ANYMAIL["WEBHOOK_SECRET"] is set
    (anymail itself would only warn and accept anyone).
    """
    view_class = getattr(view, "view_class", None)

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and view_class and _needs_basic_auth(view_class):
            esp = getattr(view_class, "route_esp", "")
            if not route_secrets(esp):
                return _refuse(403, "not_configured",
                               f"no webhook secret is configured for {esp or 'this ESP'} "
                               "(HANDOFF_AUDITOR['EMAIL_WEBHOOK_SECRETS'] or "
                               "ANYMAIL_WEBHOOK_SECRET)")
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure as exc:
            logger.info("email webhook refused: %s", exc)
            return _refuse(403, "forbidden", str(exc))
        except AnymailConfigurationError as exc:
            # A missing signing key, or an ESP pointed at the wrong anymail URL.
            logger.warning("email webhook not usable: %s", exc)
            missing = "setting" in str(exc).lower() or "missing" in str(exc).lower()
            return _refuse(403 if missing else 400,
                           "not_configured" if missing else "bad_request", str(exc))
        except (EmailStorageFailed, DatabaseError) as exc:
            # Ours, not the request's: nothing was stored (the transaction rolled back), and
            # the ESP retries on a 5xx.
            logger.warning("email webhook deferred, storage failed: %s", exc)
            response = _refuse(503, "unavailable", "storage is unavailable, retry later")
            response["Retry-After"] = "30"
            return response
        except RequestDataTooBig as exc:
            return _refuse(400, "too_large", str(exc))
        except (EmailRefused, AnymailError, SuspiciousOperation, ValueError, LookupError,
                TypeError, AttributeError, UnicodeError) as exc:
            # Anymail reads the ESP's payload as it expects it; a body of another shape
            # fails in it with whatever error that shape provokes.
            logger.info("email webhook refused as unreadable: %r", exc)
            return _refuse(400, "bad_request", f"unreadable request: {exc!r}"[:1000])
        except Exception as exc:  # noqa: BLE001 - a verified request never answers 500
            logger.exception("email webhook failed")
            return _refuse(400, "bad_request", f"unreadable request: {exc!r}"[:1000])

    return wrapped


def _view(pattern: URLPattern) -> Callable[..., HttpResponse]:
    """Anymail's view for a URL, taking only its ESP's basic auth, with our checks added
    where we add one (Mailgun's timestamp)."""
    callback = pattern.callback
    view_class = getattr(callback, "view_class", None)
    if view_class is None:
        return callback
    view_class = MAILGUN_VIEWS.get(view_class, view_class)
    match = _ROUTE_ESP.match(str(pattern.pattern))
    if match and issubclass(view_class, AnymailBasicAuthMixin):
        view_class = _per_esp(view_class, match.group(1))
    return view_class.as_view()


urlpatterns = [
    URLPattern(p.pattern, guarded(_view(p)), p.default_args, p.name)
    for p in anymail_urls.urlpatterns
]
