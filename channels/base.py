"""The webhook view every provider shares: verify -> parse -> store raw event -> apply.

Modelled on django-anymail's webhooks/base.py: one csrf-exempt base view answering POST and
HEAD, signature checks as mixins whose `validate_request` methods are all run (collected
over the class hierarchy), and one module per provider that only maps its vocabulary.
"""

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from conversations.conf import auditor_settings
from conversations.events import NormalizedEvent
from conversations.models import RawEvent
from conversations.services import TRANSIENT_DATABASE_ERRORS, IngestResult, raw_event_ingest

logger = logging.getLogger(__name__)

# Tries of the ingest transaction before answering 503 (deadlocks and the like clear).
INGEST_ATTEMPTS = 3


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


@dataclass(frozen=True)
class RawEventSpec:
    """What a provider view extracts from a verified request for the raw-event store."""

    kind: str
    dedupe_key: str
    body: str
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    provider: ClassVar[str]
    kind: ClassVar[str]
    http_method_names = ["post", "head"]

    # --- what a provider module implements ---------------------------------------------

    def raw_event_spec(self, request: HttpRequest) -> RawEventSpec:
        raise NotImplementedError

    @classmethod
    def normalize(cls, raw_event: RawEvent) -> list[NormalizedEvent]:
        """Turn a stored raw event into normalized events (also used by reprocessing)."""
        raise NotImplementedError

    def success_response(self, request: HttpRequest, result: IngestResult) -> HttpResponse:
        return HttpResponse(status=200)

    # --- the shared flow ---------------------------------------------------------------

    def head(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        # Providers and uptime checks probe the URL before sending.
        return HttpResponse(status=200)

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            self.check_body(request)
            self.run_validators(request)
            spec = self.raw_event_spec(request)
            self.check_storable(spec)
        except WebhookError as exc:
            logger.info("%s webhook refused (%s): %s", self.provider, exc.status, exc.detail)
            return exc.response()
        for attempt in range(1, INGEST_ATTEMPTS + 1):
            try:
                result = raw_event_ingest(
                    provider=self.provider,
                    kind=spec.kind,
                    dedupe_key=spec.dedupe_key,
                    body=spec.body,
                    content_type=spec.content_type,
                    headers=spec.headers,
                    url=spec.url,
                )
                break
            except TRANSIENT_DATABASE_ERRORS as exc:
                # The transaction rolled back whole. A deadlock between two batches that
                # touch the same conversations in different orders clears on a retry; a
                # database that stays unavailable gets the provider to retry later.
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
        return self.success_response(request, result)

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
    def form_params(request: HttpRequest):  # noqa: ANN205 - returns Django's QueryDict
        """The parsed form body; malformed forms (too many fields...) become a 400."""
        content_type = request.content_type or ""
        if content_type != "application/x-www-form-urlencoded":
            raise WebhookUnsupportedMediaType(
                f"expected application/x-www-form-urlencoded, got {content_type or 'nothing'}"
            )
        try:
            return request.POST
        except (SuspiciousOperation, ValueError) as exc:
            raise WebhookError(f"unreadable form body: {exc}") from exc
