"""Twilio Programmable Messaging: SMS and WhatsApp (the same form format; WhatsApp
addresses carry a `whatsapp:` prefix).

Two webhooks:
- incoming message (`/hooks/twilio/messages/`): a customer wrote to one of our numbers;
- status callback (`/hooks/twilio/status/`): delivery progress of a message we sent.

Signatures are checked with the twilio package's RequestValidator against every configured
auth token (rotation), over the URL Twilio called (PUBLIC_BASE_URL behind a proxy).
"""

import hmac
import logging
from typing import ClassVar

from django.http import HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from twilio.request_validator import RequestValidator, get_signature_algorithm

from conversations.conf import auditor_settings
from conversations.events import MessageEvent, NormalizationError, StatusEvent
from conversations.models import AuthorKind, Channel, DeliveryStatus, Direction, RawEvent
from conversations.raw_events import StoreResult

from .base import (
    RawEventSpec,
    WebhookError,
    WebhookForbidden,
    WebhookView,
    form_fields,
    thread_key,
)

logger = logging.getLogger(__name__)

PROVIDER = "twilio"

# Address prefixes Twilio puts in From/To, by channel; a bare number is SMS.
CHANNEL_PREFIXES: dict[str, str] = {"whatsapp": Channel.WHATSAPP, "": Channel.SMS}

STATUS_MAP: dict[str, str] = {
    "accepted": DeliveryStatus.ACCEPTED,
    "scheduled": DeliveryStatus.SCHEDULED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENDING,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.CANCELED,
    "read": DeliveryStatus.READ,
    "receiving": DeliveryStatus.RECEIVED,
    "received": DeliveryStatus.RECEIVED,
    "partially_delivered": DeliveryStatus.DELIVERED,
}
STATUS_UNKNOWN = DeliveryStatus.UNKNOWN

# Parameters mapped onto Message fields; everything else is kept in Message.metadata.
MESSAGE_FIELDS = frozenset(
    {"MessageSid", "SmsMessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "NumSegments",
     "ProfileName", "WaId", "SmsStatus", "MessageStatus"}
)
STATUS_FIELDS = frozenset(
    {"MessageSid", "SmsSid", "From", "To", "MessageStatus", "SmsStatus", "ErrorCode",
     "ErrorMessage"}
)
# Twilio documents at most 10 media per message; leave headroom, but bound the work.
MAX_MEDIA = 100
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def split_address(address: str) -> tuple[str, str]:
    """'whatsapp:+14155238886' -> ('whatsapp', '+14155238886'); '+1415...' -> ('sms', ...)."""
    prefix, sep, rest = address.partition(":")
    if not sep:
        prefix, rest = "", address
    channel = CHANNEL_PREFIXES.get(prefix.lower())
    if channel is None:
        raise NormalizationError(f"unsupported Twilio channel prefix {prefix!r} in {address!r}")
    if not rest.strip():
        raise NormalizationError(f"empty address {address!r}")
    return channel, rest.strip()


def _clean(text: str) -> str:
    # PostgreSQL text cannot hold NUL; a percent-encoded %00 would otherwise fail the row.
    return text.replace("\x00", "\ufffd")


def _params(raw_event: RawEvent) -> dict[str, str]:
    """The form fields of a stored request; a repeated field keeps its last value."""
    return {_clean(k): _clean(v) for k, v in form_fields(raw_event.body).items()}


def _require(params: dict[str, str], *names: str) -> None:
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise NormalizationError(f"missing Twilio parameter(s): {', '.join(missing)}")


def _message_sid(params: MultiValueDict | dict[str, str]) -> str:
    return params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid") or ""


def _channels_agree(from_: str, to: str) -> tuple[str, str, str]:
    from_channel, from_address = split_address(from_)
    to_channel, to_address = split_address(to)
    if from_channel != to_channel:
        raise NormalizationError(f"From {from_!r} and To {to!r} are on different channels")
    return from_channel, from_address, to_address


class TwilioSignatureValidator:
    """Mixin: X-Twilio-Signature must match for one of the configured auth tokens."""

    def validate_request(self, request: HttpRequest) -> None:
        tokens = auditor_settings.TWILIO_AUTH_TOKENS
        if not tokens:
            raise WebhookForbidden(
                "no Twilio auth token is configured (TWILIO_AUTH_TOKEN)", code="not_configured"
            )
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise WebhookForbidden("missing X-Twilio-Signature header", code="missing_signature")
        params = WebhookView.form_params(request)
        url = signed_url(request)
        algorithm = get_signature_algorithm(
            request.headers.get("X-Twilio-Webhooks-Signature-Settings", "")
        )
        for token in tokens:
            if signed_as_called(RequestValidator(token), url, params, signature, algorithm):
                request.twilio_signed_url = url
                return
        # The URL it was checked against is for our log, not for whoever sent the request
        # (it tells the internal host and mount).
        logger.warning("Twilio signature does not match %s (PUBLIC_BASE_URL?)", url)
        raise WebhookForbidden(
            "X-Twilio-Signature does not match the URL this request was sent to",
            code="invalid_signature",
        )


def signed_as_called(validator: RequestValidator, url: str, params: MultiValueDict,
                     signature: str, algorithm: str) -> bool:
    """The twilio package's check, cheaper in the common case. `validate` always signs the
    URL twice (with and without its default port, which Twilio's back end is inconsistent
    about) and parses it; the URL as it was called is one of the two. Sign that one first
    with the same `compute_signature`, and let `validate` try both forms only when it does
    not match: a webhook costs one HMAC instead of two (the check was 0.2 ms of the
    webhook's CPU)."""
    try:
        computed = validator.compute_signature(url, params, algorithm)
    except ValueError:  # an algorithm this twilio does not know: validate logs and refuses
        return validator.validate(url, params, signature, algorithm)
    if hmac.compare_digest(computed.encode(), signature.encode()):
        return True
    return validator.validate(url, params, signature, algorithm)


def signed_url(request: HttpRequest) -> str:
    """The URL Twilio called: the public base URL when one is set, else what Django sees."""
    base = auditor_settings.PUBLIC_BASE_URL.rstrip("/")
    if not base:
        return request.build_absolute_uri()
    # path_info: the path below any mount prefix, which the base already carries.
    query = request.META.get("QUERY_STRING", "")
    return f"{base}{request.path_info}{'?' + query if query else ''}"


class TwilioWebhookView(TwilioSignatureValidator, WebhookView):
    provider = PROVIDER
    required: ClassVar[tuple[str, ...]] = ()

    def raw_event_specs(self, request: HttpRequest) -> list[RawEventSpec]:
        params = self.form_params(request)
        missing = [name for name in self.required if not params.get(name)]
        if not _message_sid(params):
            missing.insert(0, "MessageSid")
        if missing:
            raise WebhookError(f"missing Twilio parameter(s): {', '.join(missing)}")
        return [RawEventSpec(
            kind=self.kind,
            dedupe_key=self.dedupe_key(params),
            body=request.body.decode("utf-8", errors="replace"),
            content_type=request.content_type,
            headers=self.relevant_headers(request),
            url=getattr(request, "twilio_signed_url", ""),
            # The thread's two addresses, whichever way the message went.
            partition_key=thread_key(params.get("From", ""), params.get("To", "")),
        )]

    def dedupe_key(self, params: MultiValueDict) -> str:
        raise NotImplementedError


class TwilioMessageWebhookView(TwilioWebhookView):
    """A customer's message to one of our numbers. Answers empty TwiML: we never reply."""

    kind = "message"

    def dedupe_key(self, params: MultiValueDict) -> str:
        return f"message:{_message_sid(params)}"

    def success_response(self, request: HttpRequest, stored: StoreResult) -> HttpResponse:
        return HttpResponse(TWIML_EMPTY, content_type="text/xml; charset=utf-8")

    @classmethod
    def normalize(cls, raw_event: RawEvent) -> list[MessageEvent]:
        params = _params(raw_event)
        _require(params, "From", "To")
        channel, customer, business = _channels_agree(params["From"], params["To"])
        try:
            num_media = int(params.get("NumMedia") or 0)
            num_segments = int(params["NumSegments"]) if params.get("NumSegments") else None
        except ValueError as exc:
            raise NormalizationError(f"NumMedia/NumSegments is not a number: {exc}") from exc
        if not 0 <= num_media <= MAX_MEDIA:
            # Twilio sends at most 10; an absurd count must not build millions of entries.
            raise NormalizationError(f"NumMedia {num_media} is not between 0 and {MAX_MEDIA}")
        media = [
            {
                "url": params.get(f"MediaUrl{i}", ""),
                "content_type": params.get(f"MediaContentType{i}", ""),
            }
            for i in range(num_media)
        ]
        media_fields = {f"MediaUrl{i}" for i in range(num_media)} | {
            f"MediaContentType{i}" for i in range(num_media)
        }
        author_metadata = {"wa_id": params["WaId"]} if params.get("WaId") else {}
        return [
            MessageEvent(
                channel=channel,
                direction=Direction.INBOUND,
                author_kind=AuthorKind.CUSTOMER,
                provider=PROVIDER,
                provider_message_id=_message_sid(params),
                business_address=business,
                customer_address=customer,
                occurred_at=raw_event.received_at,
                body=params.get("Body", ""),
                author_id=customer,
                author_name=params.get("ProfileName", ""),
                author_metadata=author_metadata,
                num_segments=num_segments,
                media=media,
                status=DeliveryStatus.RECEIVED,
                metadata={
                    k: v for k, v in params.items()
                    if k not in MESSAGE_FIELDS and k not in media_fields
                },
            )
        ]


class TwilioStatusWebhookView(TwilioWebhookView):
    """Delivery progress of a message we sent (status callback URL)."""

    kind = "status"
    required = ("MessageStatus",)

    def dedupe_key(self, params: MultiValueDict) -> str:
        return f"status:{_message_sid(params)}:{params.get('MessageStatus', '')}"

    @classmethod
    def normalize(cls, raw_event: RawEvent) -> list[StatusEvent]:
        params = _params(raw_event)
        _require(params, "MessageStatus")
        channel = business = customer = ""
        if params.get("From") and params.get("To"):
            channel, business, customer = _channels_agree(params["From"], params["To"])
        provider_status = params["MessageStatus"].strip().lower()
        return [
            StatusEvent(
                provider=PROVIDER,
                provider_message_id=_message_sid(params),
                status=STATUS_MAP.get(provider_status, STATUS_UNKNOWN),
                provider_status=provider_status,
                occurred_at=raw_event.received_at,
                channel=channel or None,
                business_address=business,
                customer_address=customer,
                error_code=params.get("ErrorCode", ""),
                error_message=params.get("ErrorMessage", ""),
                metadata={k: v for k, v in params.items() if k not in STATUS_FIELDS},
            )
        ]


WEBHOOK_VIEWS: tuple[type[TwilioWebhookView], ...] = (
    TwilioMessageWebhookView,
    TwilioStatusWebhookView,
)
