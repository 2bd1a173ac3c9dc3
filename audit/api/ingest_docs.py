"""The ingest endpoints in the API's OpenAPI document (tag "Ingest"): what senders post to
us, not what the API serves. A drf-spectacular postprocessing hook (SCHEMA_SETTINGS in
audit.api.views) adds a path for each endpoint the URL conf mounts: the signed events
endpoint, Twilio's two webhooks, the e-mail routes (anymail's) and OTLP traces.

Nothing is written twice: each event type's schema is its JSON Schema in channels/schemas
(the one channels.events validates with), turned into an OpenAPI 3.0 schema object; its
example is the schema's own `examples`; the types are channels.events.BUILDERS; the batch
limit is EVENTS_MAX_BATCH; the e-mail providers are the routes channels.email mounts.
tests/audit/test_api_ingest_docs.py posts each documented example, signed, to the real
endpoint.
"""

import re
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from channels import email
from channels.events import BUILDERS, event_schema
from conversations.conf import auditor_settings

TAG = "Ingest"
TAG_DESCRIPTION = (
    "What providers and your own systems send to the auditor. These endpoints do not take "
    "API tokens: each checks its sender's own signature (Standard Webhooks for events, "
    "X-Twilio-Signature for Twilio, basic auth or the provider's signature for e-mail, a "
    "sender token for OTLP). Every refusal is a JSON body `{\"error\": code, \"detail\": "
    "reason}` (OTLP's and Twilio's successes answer in their own formats)."
)
REF = "#/components/schemas/"


# --- event schemas ------------------------------------------------------------------------

def component_name(event_type: str) -> str:
    """'message.created' -> 'MessageCreatedEvent'."""
    return "".join(part.capitalize() for part in re.split(r"[._]", event_type)) + "Event"


def openapi_schema(node: Any) -> Any:
    """A JSON Schema (2020-12, the keywords channels/schemas use) as an OpenAPI 3.0 schema
    object: `const` becomes a one-value `enum` (typed), `examples` its first `example`, and the
    document keywords ($schema, $id) go."""
    if isinstance(node, list):
        return [openapi_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id"):
            continue
        if key == "const":
            out["enum"] = [value]
            if isinstance(value, str) and "type" not in node:
                out["type"] = "string"
        elif key == "examples":
            if value:
                out["example"] = value[0]
        elif key in ("properties", "$defs"):
            out[key] = {name: openapi_schema(sub) for name, sub in value.items()}
        else:
            out[key] = openapi_schema(value)
    return out


def event_components() -> dict[str, dict[str, Any]]:
    """Each supported event type's schema, by component name."""
    return {component_name(t): openapi_schema(event_schema(t)) for t in sorted(BUILDERS)}


def event_examples() -> dict[str, dict[str, Any]]:
    """The documented example of each event type (its schema's first `examples` item)."""
    return {t: event_schema(t)["examples"][0] for t in sorted(BUILDERS)}


# --- shared pieces ------------------------------------------------------------------------

ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "A stable code (e.g. `invalid_signature`, "
                  "`missing_signature`, `not_configured`, `bad_request`, `too_large`, "
                  "`unsupported_media_type`, `unauthorized`, `unavailable`)."},
        "detail": {"type": "string", "description": "The reason, in words."},
    },
}
PROBLEM = {
    "type": "object",
    "required": ["event", "path", "message"],
    "properties": {
        "event": {"type": "integer", "description": "Index of the event in the batch (0 for "
                  "a single event)."},
        "path": {"type": "string", "description": "Where in the event, e.g. `data.channel`."},
        "message": {"type": "string"},
    },
}
EVENTS_REFUSED = {"allOf": [
    {"$ref": REF + "IngestError"},
    {"type": "object", "properties": {"problems": {
        "type": "array", "items": {"$ref": REF + "IngestEventProblem"},
        "description": "With `invalid_events`: every problem (at most 100)."}}},
]}
EVENTS_ACCEPTED = {
    "type": "object",
    "required": ["status", "duplicate", "raw_event", "raw_events"],
    "properties": {
        "status": {"enum": ["processed", "pending", "failed", "partial"], "description":
                   "`processed` once applied (the applier runs inline where configured), "
                   "`pending` until the worker applies it, `partial` when some events of a "
                   "batch failed to apply (each is kept and can be reprocessed)."},
        "duplicate": {"type": "boolean", "description": "Every event was stored before "
                      "under the same webhook-id: nothing new was stored."},
        "raw_event": {"type": "integer", "description": "The first stored raw event."},
        "raw_events": {"type": "array", "items": {"type": "integer"},
                       "description": "One raw event per event, in batch order."},
        "failed": {"type": "array", "items": {"type": "object", "properties": {
            "event": {"type": "integer"}, "raw_event": {"type": "integer"},
            "error": {"type": "string"}}}},
        "error": {"type": "string", "description": "The first failure's error."},
    },
}


def _error(description: str, code: str, detail: str, schema: str = "IngestError",
           **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": REF + schema},
        "example": {"error": code, "detail": detail, **extra}}}}


UNAVAILABLE = {
    **_error("Storage is unavailable; nothing was kept. Retry later.", "unavailable",
             "storage is unavailable, retry later"),
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
}


def _header(name: str, description: str, required: bool = True) -> dict[str, Any]:
    return {"in": "header", "name": name, "required": required,
            "schema": {"type": "string"}, "description": description}


def _path(url_name: str, **kwargs: str) -> str | None:
    try:
        return reverse(url_name, kwargs=kwargs or None)
    except NoReverseMatch:  # a host that does not mount this endpoint
        return None


# --- the endpoints ------------------------------------------------------------------------

def events_operation() -> dict[str, Any]:
    limit = auditor_settings.EVENTS_MAX_BATCH
    examples = {t: {"summary": t, "value": ex} for t, ex in event_examples().items()}
    examples["batch"] = {"summary": "a batch (a JSON array)",
                         "value": [examples["message.created"]["value"],
                                   examples["handoff.requested"]["value"]]}
    return {
        "operationId": "ingest_events",
        "tags": [TAG],
        "summary": "Signed events: web chat, the AI platform, the helpdesk",
        "description": (
            "One event, or a batch: a JSON array of 1 to "
            f"{limit} events (`HANDOFF_AUDITOR['EVENTS_MAX_BATCH']`). Signed per the "
            "[Standard Webhooks](https://www.standardwebhooks.com/) spec with a secret of "
            "`HANDOFF_AUDITOR_EVENTS_SECRETS` (comma-separated, for rotation): "
            "`webhook-signature` is `v1,` + base64 "
            "HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the "
            "secret's base64 part after `whsec_`. A timestamp more than 5 minutes off is "
            "refused. The webhook-id is the idempotency key: a retry with the same id "
            "stores nothing new. A batch with any invalid event is refused whole (400, "
            "`invalid_events`, every problem with its path) and nothing is stored. Each "
            "event type's schema is below, with an example."
        ),
        "security": [],
        "parameters": [
            _header("webhook-id", "Unique per message; the idempotency key (e.g. `msg_2Kx9`)."),
            _header("webhook-timestamp", "Unix seconds when signed; within 5 minutes of now."),
            _header("webhook-signature", "`v1,<base64 HMAC-SHA256>`; several, space-separated, "
                    "while a secret rotates."),
        ],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF + "IngestEventsBody"}, "examples": examples}}},
        "responses": {
            "200": {"description": "Stored (and applied, where the applier runs inline).",
                    "content": {"application/json": {
                        "schema": {"$ref": REF + "IngestEventsAccepted"},
                        "example": {"status": "processed", "duplicate": False,
                                    "raw_event": 812, "raw_events": [812]}}}},
            "400": _error("Not JSON, not events, too many, or invalid: nothing was stored.",
                          "invalid_events", "1 problem(s) in 2 event(s); nothing was stored",
                          schema="IngestEventsRefused",
                          problems=[{"event": 1, "path": "data.requested_by",
                                     "message": "'robot' is not one of ['ai', 'customer', "
                                                "'rule']"}]),
            "403": _error("No events secret configured, signature headers missing, or the "
                          "signature refused (wrong secret, body changed, timestamp too old).",
                          "invalid_signature",
                          "webhook signature refused: No matching signature found"),
            "415": _error("Not `application/json`.", "unsupported_media_type",
                          "expected application/json, got text/plain"),
            "503": UNAVAILABLE,
        },
    }


TWILIO_FORM = {
    "MessageSid": {"type": "string", "description": "Twilio's id (SM...); the dedupe key."},
    "From": {"type": "string", "description": "`+14155550100`, or `whatsapp:+1415...`."},
    "To": {"type": "string"},
}


def twilio_operation(kind: str) -> dict[str, Any]:
    message = kind == "messages"
    fields = dict(TWILIO_FORM)
    if message:
        fields.update(Body={"type": "string"}, NumMedia={"type": "string"},
                      ProfileName={"type": "string"}, WaId={"type": "string"},
                      MediaUrl0={"type": "string"}, MediaContentType0={"type": "string"})
    else:
        fields.update(MessageStatus={"type": "string", "description": "queued, sent, "
                                     "delivered, read, undelivered, failed..."},
                      ErrorCode={"type": "string"}, ErrorMessage={"type": "string"})
    example = ({"MessageSid": "SM9e8d7c6b5a4f43e2d1c0b9a8f7e6d5c4",
                "From": "whatsapp:+34600111222", "To": "whatsapp:+14155238886",
                "Body": "Hola, mi pedido no ha llegado", "NumMedia": "0"} if message else
               {"MessageSid": "SM5f4e3d2c1b0a49f8e7d6c5b4a3f2e1d0",
                "From": "whatsapp:+14155238886", "To": "whatsapp:+34600111222",
                "MessageStatus": "read"})
    return {
        "operationId": f"ingest_twilio_{kind}",
        "tags": [TAG],
        "summary": ("Twilio: an incoming SMS or WhatsApp message" if message else
                    "Twilio: a status callback (delivery progress of a message we sent)"),
        "description": (
            "Twilio's own form post (its documented parameters; WhatsApp addresses carry a "
            "`whatsapp:` prefix), signed with X-Twilio-Signature over the URL Twilio called "
            "(set `PUBLIC_BASE_URL` behind a proxy) with an auth token of "
            "`TWILIO_AUTH_TOKEN` (several while rotating). Every parameter is kept; "
            "retries of the same MessageSid store nothing new."
        ),
        "security": [],
        "parameters": [_header("X-Twilio-Signature",
                               "base64 HMAC-SHA1 of the URL and the sorted form parameters, "
                               "keyed with the auth token.")],
        "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
            "schema": {"type": "object",
                       "required": ["MessageSid", *(("From", "To") if message
                                                    else ("MessageStatus",))],
                       "properties": fields,
                       "additionalProperties": {"type": "string"}},
            "example": example}}},
        "responses": {
            "200": ({"description": "Stored. An empty TwiML answer: no reply is sent.",
                     "content": {"text/xml": {"schema": {"type": "string"}, "example":
                                 '<?xml version="1.0" encoding="UTF-8"?><Response/>'}}}
                    if message else {"description": "Stored."}),
            "400": _error("A form Twilio would not send (a required parameter missing, "
                          "unreadable).", "bad_request",
                          "missing Twilio parameter(s): MessageSid"),
            "403": _error("No auth token configured, no signature, or it does not match.",
                          "invalid_signature",
                          "X-Twilio-Signature does not match the URL this request was sent to"),
            "415": _error("Not a form post.", "unsupported_media_type",
                          "expected application/x-www-form-urlencoded, got application/json"),
            "503": UNAVAILABLE,
        },
    }


def otlp_operation() -> dict[str, Any]:
    return {
        "operationId": "ingest_otlp_traces",
        "tags": [TAG],
        "summary": "OpenTelemetry traces (OTLP/HTTP): the AI agent's spans",
        "description": (
            "An OTLP/HTTP trace export (`ExportTraceServiceRequest`), protobuf or JSON, "
            "optionally gzip (`Content-Encoding: gzip`), at most "
            "`HANDOFF_AUDITOR['OTLP_MAX_BODY_BYTES']` once unzipped. Point an SDK's OTLP "
            "exporter at the base of this path with `Authorization: Bearer <token>` "
            "(`manage.py otlp_token issue <sender>`). Each span is stored once (a re-sent "
            "export stores nothing new); GenAI spans become AI steps (docs/otlp.md). The "
            "answer is OTLP's `ExportTraceServiceResponse` in the request's encoding, "
            "`partial_success.rejected_spans` counting spans refused."
        ),
        "security": [{"otlpBearer": []}],
        "parameters": [_header("Content-Encoding", "`gzip`, or none.", required=False)],
        "requestBody": {"required": True, "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {"schema": {"type": "object", "description":
                                            "OTLP/JSON: `{\"resourceSpans\": [...]}`."}},
        }},
        "responses": {
            "200": {"description": "Stored.", "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}, "example": {}}}},
            "400": _error("Not an OTLP export, bad gzip, or malformed ids.", "undecodable",
                          "body is not an OTLP JSON export: ..."),
            "401": {**_error("No bearer token, or not an active one.", "unauthorized",
                             "bearer token refused (unknown or revoked)"),
                    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}},
            "413": _error("Larger than OTLP_MAX_BODY_BYTES (once unzipped).", "too_large",
                          "body is larger than 8388608 bytes once unzipped"),
            "415": _error("Not protobuf or JSON, or an encoding other than gzip.",
                          "unsupported_media_type",
                          "expected application/x-protobuf or application/json, got text/plain"),
            "503": UNAVAILABLE,
        },
    }


def email_routes() -> dict[str, list[tuple[str, bool]]]:
    """The e-mail routes mounted, as path template -> [(ESP, needs basic auth)]."""
    routes: dict[str, list[tuple[str, bool]]] = {}
    for pattern in email.urlpatterns:
        path = _path(f"channels:anymail:{pattern.name}")
        match = re.fullmatch(r"(.*/)([a-z0-9_]+)/(inbound|tracking)/", path or "")
        if not match:
            continue
        view_class = getattr(pattern.callback, "view_class", None)
        basic = bool(view_class and email._needs_basic_auth(view_class))
        template = f"{match.group(1)}{{esp}}/{match.group(3)}/"
        routes.setdefault(template, []).append((match.group(2), basic))
    return routes


def email_operation(template: str, esps: list[tuple[str, bool]]) -> dict[str, Any]:
    kind = template.rstrip("/").rsplit("/", 1)[1]
    basic = sorted(name for name, needs in esps if needs)
    signed = sorted(name for name, needs in esps if not needs)
    return {
        "operationId": f"ingest_email_{kind}",
        "tags": [TAG],
        "summary": ("E-mail: an inbound message from your ESP" if kind == "inbound" else
                    "E-mail: delivery tracking from your ESP"),
        "description": (
            "Your e-mail service provider's own webhook format, read by django-anymail "
            f"({'messages customers sent' if kind == 'inbound' else 'delivery progress'}). "
            "Point the ESP at this path with its name. Basic auth "
            "(`https://user:password@host/...`) with the route's own credentials "
            "(`HANDOFF_AUDITOR['EMAIL_WEBHOOK_SECRETS'][esp]`, else "
            "`ANYMAIL['WEBHOOK_SECRET']`) is required for: "
            f"{', '.join(basic) or 'none'}; refused (403) until one is set. "
            f"Checked by the ESP's own signature instead: {', '.join(signed) or 'none'}."
        ),
        "security": [{"emailBasicAuth": []}, {}],
        "parameters": [{"in": "path", "name": "esp", "required": True,
                        "schema": {"enum": sorted(name for name, _ in esps)}}],
        "requestBody": {"required": True, "content": {
            media: {"schema": {"type": "object", "description": "The ESP's format."}}
            for media in ("application/json", "multipart/form-data",
                          "application/x-www-form-urlencoded")}},
        "responses": {
            "200": {"description": "Stored (the same message again stores nothing new)."},
            "400": _error("Not the ESP's format.", "bad_request", "unreadable request: ..."),
            "403": _error("Basic auth or the ESP's signature refused, or no secret set.",
                          "forbidden", "Missing or invalid basic auth"),
            "503": UNAVAILABLE,
        },
    }


# --- the hook -----------------------------------------------------------------------------

def ingest_paths(result: dict[str, Any], generator: Any, request: Any, public: bool,
                 **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the ingest endpoints and event schemas."""
    paths = result.setdefault("paths", {})
    found = {"channels:events": events_operation,
             "channels:twilio-messages": lambda: twilio_operation("messages"),
             "channels:twilio-status": lambda: twilio_operation("status"),
             "channels:otlp-traces": otlp_operation}
    for name, operation in found.items():
        path = _path(name)
        if path:
            paths[path] = {"post": operation()}
    for template, esps in email_routes().items():
        paths[template] = {"post": email_operation(template, esps)}

    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    events = event_components()
    clash = sorted(set(events) & set(schemas))
    if clash:  # an API serializer of the same name: neither may hide the other
        raise ImproperlyConfigured(f"schema component names taken twice: {clash}")
    schemas.update(events)
    refs = {t: REF + component_name(t) for t in sorted(BUILDERS)}
    schemas["IngestEvent"] = {
        "oneOf": [{"$ref": ref} for ref in refs.values()],
        "discriminator": {"propertyName": "type", "mapping": refs},
        "title": "one event",
        "description": "One event; its `type` says which schema applies.",
    }
    schemas["IngestEventsBody"] = {"oneOf": [
        {"$ref": REF + "IngestEvent"},
        {"title": "a batch (a JSON array)", "type": "array", "minItems": 1,
         "maxItems": auditor_settings.EVENTS_MAX_BATCH,
         "items": {"$ref": REF + "IngestEvent"}},
    ]}
    schemas.update(IngestError=ERROR, IngestEventProblem=PROBLEM,
                   IngestEventsRefused=EVENTS_REFUSED, IngestEventsAccepted=EVENTS_ACCEPTED)
    components.setdefault("securitySchemes", {}).update(
        otlpBearer={"type": "http", "scheme": "bearer",
                    "description": "An OTLP sender token (`manage.py otlp_token`)."},
        emailBasicAuth={"type": "http", "scheme": "basic",
                        "description": "The e-mail route's webhook secret, `user:password`."},
    )
    used = [t for item in paths.values() for op in item.values() if isinstance(op, dict)
            for t in op.get("tags", [])]
    tags = result.setdefault("tags", [])
    named = {tag["name"] for tag in tags}
    tags.extend({"name": t} for t in dict.fromkeys(used) if t not in named and t != TAG)
    tags.append({"name": TAG, "description": TAG_DESCRIPTION})
    return result
