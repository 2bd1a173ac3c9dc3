"""The webhook view every provider shares: verify -> check shape -> store raw events -> wake
the applier (conversations.applier applies them; nothing is normalized in the request).

Modelled on django-anymail's webhooks/base.py: one csrf-exempt base view answering POST and
HEAD, signature checks as mixins whose `validate_request` methods are all run (collected
over the class hierarchy), and one module per provider that only maps its vocabulary.
"""

import logging
import random
import time
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.datastructures import MultiValueDict
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from conversations.applier import applier_wake
from conversations.conf import auditor_settings
from conversations.events import NormalizedEvent
from conversations.models import RawEvent
from conversations.raw_events import RawEventSpec, StoreResult, raw_events_store
from conversations.sql import TRANSIENT_DATABASE_ERRORS

__all__ = ["RawEventSpec", "WebhookError", "WebhookForbidden", "WebhookUnsupportedMediaType",
           "WebhookView", "form_fields", "thread_key"]

logger = logging.getLogger(__name__)

# Tries of the ingest transaction before answering 503 (deadlocks and the like clear).
INGEST_ATTEMPTS = 3


def thread_key(*addresses: str) -> str:
    """The applier partition key of a thread between these addresses, whichever way a
    message went and whichever adapter reported it (WhatsApp's `whatsapp:` prefix left out),
    so that one conversation's events are applied in arrival order."""
    bare = (a.strip().removeprefix("whatsapp:").lower() for a in addresses)
    return "|".join(sorted(bare))


def form_fields(body: str | bytes, encoding: str | None = None) -> MultiValueDict:
    """The fields of an `application/x-www-form-urlencoded` body, read as Django's QueryDict
    reads `request.POST` (UTF-8, Latin-1 if that fails, undecodable escapes replaced, blank
    values kept, repeated fields as lists, at most DATA_UPLOAD_MAX_NUMBER_FIELDS fields: a
    ValueError beyond), without QueryDict's per-field bookkeeping, which cost as much as the
    webhook's signature check. The webhook verifies with it and the applier normalizes with
    it, so both read a stored body the same way."""
    encoding = encoding or settings.DEFAULT_CHARSET
    if isinstance(body, bytes):
        try:
            body = body.decode(encoding)
        except UnicodeDecodeError:
            body = body.decode("iso-8859-1")
    fields: dict[str, list[str]] = {}
    for key, value in parse_qsl(body, keep_blank_values=True, encoding=encoding,
                                max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS):
        values = fields.get(key)
        if values is None:
            fields[key] = [value]
        else:
            values.append(value)
    return MultiValueDict(fields)


class WebhookError(Exception):
    """Refuse the request with a JSON reason. Nothing is stored."""

    status = 400
    code = "bad_request"

    def __init__(
        self, detail: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        if code:
            self.code = code

    def response(self) -> JsonResponse:
        body = {"error": self.code, "detail": self.detail, **self.extra}
        return JsonResponse(body, status=self.status)


class WebhookForbidden(WebhookError):
    status = 403
    code = "forbidden"


class WebhookUnsupportedMediaType(WebhookError):
    status = 415
    code = "unsupported_media_type"


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    provider: ClassVar[str]
    kind: ClassVar[str]
    http_method_names = ["post", "head"]

    # --- what a provider module implements ---------------------------------------------

    def raw_event_specs(self, request: HttpRequest) -> list[RawEventSpec]:
        """The raw events to store for a verified request (most requests: one)."""
        raise NotImplementedError

    @classmethod
    def normalize(cls, raw_event: RawEvent) -> list[NormalizedEvent]:
        """Turn a stored raw event into normalized events (also used by reprocessing)."""
        raise NotImplementedError

    def success_response(self, request: HttpRequest, stored: StoreResult) -> HttpResponse:
        return HttpResponse(status=200)

    # --- the shared flow ---------------------------------------------------------------

    def head(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        # Providers and uptime checks probe the URL before sending.
        return HttpResponse(status=200)

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            self.check_body(request)
            self.run_validators(request)
            specs = self.raw_event_specs(request)
            for spec in specs:
                self.check_storable(spec)
        except WebhookError as exc:
            logger.info("%s webhook refused (%s): %s", self.provider, exc.status, exc.detail)
            return exc.response()
        if not specs:  # a valid request with nothing to keep (an empty OTLP export)
            return self.success_response(request, StoreResult(raw_events=[], duplicate=[]))
        # The INSERT is the webhook's health check: Django's would spend a round trip
        # (SELECT 1, as long as the INSERT itself) on every webhook. A connection that a
        # database restart dropped fails the INSERT instead, and the retry reconnects.
        connection.health_check_done = True
        for attempt in range(1, INGEST_ATTEMPTS + 1):
            try:
                stored = raw_events_store(provider=self.provider, specs=specs)
                break
            except TRANSIENT_DATABASE_ERRORS as exc:
                if not connection.in_atomic_block and not connection.is_usable():
                    connection.close()  # gone under us: the next try opens a new one
                # Nothing was kept. A database that stays unavailable gets the provider to
                # retry later.
                if attempt < INGEST_ATTEMPTS:
                    time.sleep(random.uniform(0.01, 0.05) * attempt)
                    continue
                logger.warning("%s webhook deferred, database unavailable: %s",
                               self.provider, exc)
                response = JsonResponse(
                    {"error": "unavailable", "detail": "storage is unavailable, retry later"},
                    status=503,
                )
                response["Retry-After"] = "30"
                return response
        if not stored.all_duplicate:
            applier_wake()
        return self.success_response(request, stored)

    def check_body(self, request: HttpRequest) -> None:
        try:
            body = request.body
        except RequestDataTooBig as exc:
            raise WebhookError(str(exc), code="too_large") from exc
        if b"\x00" in body:
            raise WebhookError("request body contains a NUL byte")

    @staticmethod
    def check_storable(spec: RawEventSpec) -> None:
        """The raw event's key columns must hold what the request carries: a signed request
        with a 300-character MessageSid (or a percent-encoded NUL in it) would otherwise fail
        the INSERT on PostgreSQL and answer 500."""
        for name in ("dedupe_key", "url", "content_type"):
            value = getattr(spec, name)
            limit = RawEvent._meta.get_field(name).max_length
            if len(value) > limit:
                raise WebhookError(f"{name} {value[:60]!r}... is longer than {limit} characters")
            if "\x00" in value:
                raise WebhookError(f"{name} {value[:60]!r} contains a NUL character")

    def run_validators(self, request: HttpRequest) -> None:
        # Every class in the hierarchy may contribute a validate_request; all must pass.
        seen = set()
        for klass in type(self).__mro__:
            validate = klass.__dict__.get("validate_request")
            if validate is not None and validate not in seen:
                seen.add(validate)
                validate(self, request)

    @staticmethod
    def relevant_headers(request: HttpRequest) -> dict[str, str]:
        wanted = auditor_settings.RAW_EVENT_HEADERS
        return {name: request.headers[name] for name in wanted if name in request.headers}

    @staticmethod
    def form_params(request: HttpRequest) -> MultiValueDict:
        """The parsed form body (read once a request); malformed forms (too many fields...)
        become a 400."""
        content_type = request.content_type or ""
        if content_type != "application/x-www-form-urlencoded":
            raise WebhookUnsupportedMediaType(
                f"expected application/x-www-form-urlencoded, got {content_type or 'nothing'}"
            )
        params = getattr(request, "_webhook_form", None)
        if params is None:
            try:
                params = form_fields(request.body, request.encoding)
            except ValueError as exc:
                raise WebhookError(f"unreadable form body: {exc}") from exc
            request._webhook_form = params
        return params
