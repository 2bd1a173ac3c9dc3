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
import logging
import re
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
from anymail.signals import AnymailInboundEvent
from anymail.utils import get_anymail_setting
from anymail.webhooks.base import AnymailBasicAuthMixin
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern
from inscriptis import get_text
from mailparser_reply import EmailReplyParser

from conversations.conf import auditor_settings
from conversations.events import MessageEvent, NormalizationError, NormalizedEvent
from conversations.models import AuthorKind, Channel, Direction, RawEvent
from conversations.services import TRANSIENT_DATABASE_ERRORS, raw_event_ingest

logger = logging.getLogger(__name__)

PROVIDER = "email"
KIND = "inbound"
# Languages whose reply headers ("On ... wrote:", "Am ... schrieb:") mark quoted history.
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pt", "sv", "pl"]

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
# "Re:", "RE[2]:", "Fwd:", "AW:", "WG:", "SV:", "Antw:", "TR:", "RIF:" ... repeated.
_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|tr|rif|r)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


class EmailRefused(Exception):
    """A verified request whose message cannot be stored at all (answered 400)."""


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

    if sender_address in ours:
        direction = Direction.OUTBOUND
        author_kind = auditor_settings.EMAIL_OUTBOUND_AUTHOR or AuthorKind.HUMAN
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
    """anymail.signals.inbound receiver: store the raw MIME and apply it."""
    raw = _raw_mime(event)
    if "\x00" in raw:
        raise EmailRefused("the message contains a NUL character")
    headers = {"esp": esp_name}
    envelope = getattr(event.message, "envelope_recipient", None)
    if envelope:
        headers["envelope_recipient"] = str(envelope)[:255]
    result = raw_event_ingest(
        provider=PROVIDER,
        kind=KIND,
        dedupe_key=dedupe_key(event.message, raw),
        body=raw,
        content_type="message/rfc822",
        headers=headers,
        received_at=event.timestamp if isinstance(event.timestamp, datetime) else None,
    )
    logger.info("email via %s: raw event %s%s (%s)", esp_name, result.raw_event.pk,
                " duplicate" if result.duplicate else "", result.raw_event.status)


# --- anymail's views, guarded -----------------------------------------------------------


def _refuse(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def _needs_basic_auth(view_class: type) -> bool:
    return issubclass(view_class, AnymailBasicAuthMixin) and view_class.warn_if_no_basic_auth


def guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anymail's view, with its refusals as our JSON 4xx and never a 500.

    ESPs secured only by basic auth are refused unless ANYMAIL["WEBHOOK_SECRET"] is set
    (anymail itself would only warn and accept anyone).
    """
    view_class = getattr(view, "view_class", None)

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and view_class and _needs_basic_auth(view_class):
            if not get_anymail_setting("webhook_secret", default=None):
                return _refuse(403, "not_configured",
                               "no webhook secret is configured (ANYMAIL_WEBHOOK_SECRET)")
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
        except TRANSIENT_DATABASE_ERRORS as exc:
            logger.warning("email webhook deferred, database unavailable: %s", exc)
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


urlpatterns = [
    URLPattern(p.pattern, guarded(p.callback), p.default_args, p.name)
    for p in anymail_urls.urlpatterns
]
