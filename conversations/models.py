"""The core records: conversations, their participants and messages, delivery statuses,
the raw events everything is derived from, and flags.

Business logic lives in services.py (writes) and selectors.py (reads).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    WEB = "web", "Web chat"


class AuthorKind(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    AI = "ai", "AI agent"
    HUMAN = "human", "Human agent"
    SYSTEM = "system", "System"


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class DeliveryStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    SCHEDULED = "scheduled", "Scheduled"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    READ = "read", "Read"
    RECEIVED = "received", "Received"
    UNKNOWN = "unknown", "Unknown"


# How far along a message is. A status callback only moves a message forward: "delivered"
# arriving after "read" is kept in the history but does not change the current status.
# Terminal outcomes share a rank, so the first of them to arrive wins.
STATUS_RANK: dict[str, int] = {
    DeliveryStatus.UNKNOWN: 0,
    DeliveryStatus.ACCEPTED: 1,
    DeliveryStatus.SCHEDULED: 1,
    DeliveryStatus.QUEUED: 2,
    DeliveryStatus.SENDING: 3,
    DeliveryStatus.SENT: 4,
    DeliveryStatus.DELIVERED: 5,
    DeliveryStatus.UNDELIVERED: 5,
    DeliveryStatus.FAILED: 5,
    DeliveryStatus.CANCELED: 5,
    DeliveryStatus.RECEIVED: 5,
    DeliveryStatus.READ: 6,
}


class Customer(models.Model):
    """One person across channels: the conversations whose customer addresses (phone number
    on SMS and WhatsApp, e-mail address) or identify events name the same identity."""

    display_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.display_name or f"customer #{self.pk}"


class CustomerIdentity(models.Model):
    """A name by which a customer is known: `phone` (E.164), `email` (lower-cased) or
    `external` (a platform's customer id from an identify event). One customer per name."""

    class Kind(models.TextChoices):
        PHONE = "phone", "Phone number"
        EMAIL = "email", "E-mail address"
        EXTERNAL = "external", "Customer id"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="customer_identity_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    channel = models.CharField(max_length=16, choices=Channel.choices)
    # The business side (our Twilio number, support mailbox, widget id) and the customer's
    # address on this channel (E.164 phone, e-mail address, web visitor id).
    business_address = models.CharField(max_length=255)
    customer_address = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    subject = models.CharField(max_length=998, blank=True)
    started_at = models.DateTimeField()
    last_activity_at = models.DateTimeField()
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The highest severity among the conversation's open or acknowledged flags
    # (FLAG_SEVERITY_RANK; 0: none), kept by the flag services, so the inbox sorts by
    # severity through an index.
    open_flag_rank = models.PositiveSmallIntegerField(default=0, db_default=0)
    # The person behind customer_address across channels (conversations/customers.py).
    customer = models.ForeignKey(Customer, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="conversations")

    class Meta:
        constraints = [
            # One open thread per customer per business address per channel: concurrent
            # webhooks for a new customer race on this index instead of creating two threads.
            # Not for e-mail: there each thread (Message-ID chain or subject) is its own
            # conversation, found through ConversationKey (services.email_message_record).
            # services._CONVERSATION_OPEN names this predicate in its ON CONFLICT clause.
            models.UniqueConstraint(
                fields=["channel", "business_address", "customer_address"],
                condition=Q(status="open") & ~Q(channel="email"),
                name="conversation_one_open_thread",
            ),
        ]
        indexes = [
            models.Index(fields=["-last_activity_at", "-id"], name="conversation_recent"),
            models.Index(fields=["channel", "-last_activity_at"], name="conversation_channel"),
            models.Index(
                fields=["-open_flag_rank", "-last_activity_at", "-id"],
                name="conversation_by_severity",
            ),
            # The dashboards' periods and their daily rollups count conversations by start.
            models.Index(fields=["started_at"], name="conversation_started"),
            # A thread's latest close: a message dated before it lands there (ingest_load).
            models.Index(
                fields=["channel", "business_address", "customer_address", "-closed_at"],
                condition=Q(status="closed") & ~Q(channel="email"),
                name="conversation_closed_thread",
            ),
            # Repeat contact (audit.outcome_rollups): the same customer's other
            # conversations on the channel within days of one.
            models.Index(fields=["channel", "customer_address", "started_at"],
                         name="conversation_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.customer_address} #{self.pk}"


class Participant(models.Model):
    # No index of its own: the model's composite indexes start with the conversation.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="participants", db_index=False
    )
    kind = models.CharField(max_length=16, choices=AuthorKind.choices)
    # Address or platform id of this participant (phone, e-mail, agent id, model name).
    external_id = models.CharField(max_length=255)
    display_name = models.CharField(max_length=255, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "kind", "external_id"], name="participant_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.display_name or self.external_id}"


class RawEvent(models.Model):
    """A request exactly as a provider sent it: the source of truth every row derives from."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"

    provider = models.CharField(max_length=32)
    kind = models.CharField(max_length=64)
    # The provider's idempotency key, namespaced by kind (e.g. "message:SM..."): a retried
    # delivery collides here and stores nothing new.
    dedupe_key = models.CharField(max_length=255)
    body = models.TextField()
    content_type = models.CharField(max_length=255, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    # The URL the provider signed, as verified (kept so a reader can re-verify by hand).
    url = models.CharField(max_length=2048, blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The applier's partition (conversations.applier): events of one conversation share it,
    # so they are applied in arrival order while other partitions go in parallel.
    partition = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "dedupe_key"], name="raw_event_dedupe"),
        ]
        indexes = [
            # What the applier claims: a partition's pending events in arrival order.
            models.Index(
                fields=["partition", "id"],
                condition=Q(status="pending"),
                name="raw_event_pending",
            ),
            models.Index(
                fields=["status", "received_at"],
                condition=~Q(status="processed"),
                name="raw_event_unprocessed",
            ),
            models.Index(fields=["received_at"], name="raw_event_received"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.kind} {self.dedupe_key} ({self.status})"


class Message(models.Model):
    # No index of its own: the model's composite indexes start with the conversation.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    participant = models.ForeignKey(
        Participant, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    direction = models.CharField(max_length=16, choices=Direction.choices)
    author_kind = models.CharField(max_length=16, choices=AuthorKind.choices)
    body = models.TextField(blank=True)
    # E-mail: the new part of a reply without the quoted history (what tone scoring and the
    # replay show first); empty where the body is all new.
    # New columns carry database defaults too: the ingest hot path and the bulk seeder write
    # with SQL that names its columns, so a column they do not know must not break them.
    body_new = models.TextField(blank=True, default="", db_default="")
    subject = models.CharField(max_length=998, blank=True, default="", db_default="")
    provider = models.CharField(max_length=32)
    provider_message_id = models.CharField(max_length=255, null=True, blank=True)
    sent_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.UNKNOWN
    )
    status_rank = models.PositiveSmallIntegerField(default=0)
    status_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    num_segments = models.PositiveSmallIntegerField(null=True, blank=True)
    # [{"url": ..., "content_type": ...}]
    media = models.JSONField(default=list, blank=True)
    # Provider fields we do not model (Twilio adds parameters without notice).
    metadata = models.JSONField(default=dict, blank=True)
    raw_event = models.ForeignKey(
        RawEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When retention emptied the body, subject and media URLs (conversations/retention.py).
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"],
                condition=Q(provider_message_id__isnull=False),
                name="message_provider_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "sent_at", "id"], name="message_timeline"),
            # "A human took part" (audit/outcome_rules.human_q, a day's rollups): read from
            # the few human messages, not a scan of every message.
            models.Index(fields=["conversation"], condition=Q(author_kind="human"),
                         name="message_human"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.author_kind} {self.provider_message_id or self.pk}"


class MessageStatusEvent(models.Model):
    """One delivery status report, kept even when it does not change the current status.

    A report can arrive before the message it is about; it then waits with `message` unset
    and is joined when the message is recorded (see services.message_statuses_join).
    """

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="status_events"
    )
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="status_events",
    )
    provider = models.CharField(max_length=32)
    provider_message_id = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
    provider_status = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    occurred_at = models.DateTimeField()
    raw_event = models.ForeignKey(
        RawEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="status_events"
    )
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id", "provider_status"],
                name="status_event_dedupe",
            ),
        ]
        indexes = [
            models.Index(
                fields=["provider", "provider_message_id"],
                condition=Q(message__isnull=True),
                name="status_event_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider_message_id} {self.status}"


FLAG_SEVERITY_RANK: dict[str, int] = {
    "info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5,
}


class Flag(models.Model):
    class Kind(models.TextChoices):
        """The one vocabulary of findings; every app raises flags of these kinds."""

        HANDOFF_STALLED = "handoff_stalled", "Handoff stalled"
        HANDOFF_DROPPED = "handoff_dropped", "Handoff dropped"
        HANDOFF_MISSED = "handoff_missed", "Human request missed"
        TONE_OFF_BRAND = "tone_off_brand", "Off-brand tone"
        TONE_DRIFT = "tone_drift", "Tone drift"
        REASONING_LEAK = "reasoning_leak", "Reasoning leaked"
        PII_LEAK = "pii_leak", "Personal data leaked"
        # Mail From our own support address that the ESP did not authenticate (SPF/DKIM
        # failed or absent): kept, not counted as a human reply; evidence has the verdicts.
        SPOOFED_SENDER = "spoofed_sender", "Sender not authenticated"
        # The customer of a dropped or stalled handoff came back on another channel within
        # CHANNEL_SWITCH_WINDOW_HOURS (conversations/customer_journey.py).
        CHANNEL_SWITCH_AFTER_FAILURE = ("channel_switch_after_failure",
                                        "Came back on another channel")
        # Answer quality (conversations/quality): evidence carries character spans.
        UNGROUNDED_ANSWER = "ungrounded_answer", "Answer not supported by sources"
        WEAK_RETRIEVAL = "weak_retrieval", "Answered on weak retrieval"
        TOOL_FAILURE = "tool_failure", "Tool failed"
        GUARDRAIL_TRIPPED = "guardrail_tripped", "Guardrail tripped"
        PROMPT_INJECTION = "prompt_injection", "Prompt injection attempt"
        INJECTION_FOLLOWED = "injection_followed", "AI followed an injection"
        AI_LOOP = "ai_loop", "AI repeating itself"
        EXCESSIVE_AGENCY = "excessive_agency", "Tool not allowed"

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        FALSE_POSITIVE = "false_positive", "False positive"

    class SubjectType(models.TextChoices):
        CONVERSATION = "conversation", "Conversation"
        HANDOFF = "handoff", "Handoff"
        MESSAGE = "message", "Message"

    ACTIVE_STATUSES = (Status.OPEN, Status.ACKNOWLEDGED)

    # No index of its own: flag_conversation (conversation, status) starts with it.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="flags",
                                     db_index=False)
    kind = models.CharField(max_length=64, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    subject_id = models.BigIntegerField()
    # The figures that justify the finding (waited, allowed, matched text, ...).
    evidence = models.JSONField(default=dict, blank=True)
    raised_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.CharField(max_length=150, blank=True)
    # The latest note (kept for readers of one field); every note stays in FlagEvent.
    note = models.TextField(blank=True)
    # Triage: who owns the finding, by when, and the ticket it is tracked in elsewhere.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                              blank=True, related_name="auditor_flags")
    due_on = models.DateField(null=True, blank=True)
    ticket_url = models.URLField(max_length=500, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            # Raising the same finding twice does not create a second active flag.
            models.UniqueConstraint(
                fields=["kind", "subject_type", "subject_id"],
                condition=Q(status__in=["open", "acknowledged"]),
                name="flag_one_active_per_finding",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "status"], name="flag_conversation"),
            models.Index(fields=["kind", "status", "-raised_at"], name="flag_kind"),
            models.Index(fields=["owner", "status"], name="flag_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.severity}, {self.status})"


class FlagEvent(models.Model):
    """One entry of a flag's triage trail: a status change, a note, an assignment, a due
    date or ticket link, with who and when. Rows are only ever added (conversations.flags),
    so the trail is never overwritten."""

    class Action(models.TextChoices):
        STATUS = "status", "Status changed"
        NOTE = "note", "Note"
        ASSIGN = "assign", "Owner changed"
        DUE = "due", "Due date changed"
        TICKET = "ticket", "Ticket linked"

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="trail")
    at = models.DateTimeField()
    by = models.CharField(max_length=150, blank=True)  # a username, or "auditor" for rules
    action = models.CharField(max_length=16, choices=Action.choices)
    from_value = models.CharField(max_length=500, blank=True)
    to_value = models.CharField(max_length=500, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["flag", "at", "id"], name="flag_event_trail")]

    def __str__(self) -> str:
        return f"{self.action} by {self.by or '?'} {self.at:%Y-%m-%d %H:%M}"


class ConversationKey(models.Model):
    """A name by which a conversation can be found: an e-mail Message-ID of one of its
    messages ("email:<id@host>"), or the external id a platform uses for it
    ("events:<id>"). Replies and events join their conversation through these."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="keys")
    key = models.CharField(max_length=512, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class AIStep(models.Model):
    """One AI decision, named after OpenTelemetry's GenAI conventions (gen_ai.*)."""

    class Operation(models.TextChoices):
        CHAT = "chat", "Chat"
        EXECUTE_TOOL = "execute_tool", "Execute tool"
        RETRIEVAL = "retrieval", "Retrieval"
        INVOKE_AGENT = "invoke_agent", "Invoke agent"
        EMBEDDINGS = "embeddings", "Embeddings"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="ai_steps"
    )
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_steps"
    )
    # The platform's id for this step: re-sent steps are recognised by it.
    external_id = models.CharField(max_length=255)
    # The produced message's provider id, kept so a step reported before its message joins
    # it later.
    message_provider = models.CharField(max_length=32, blank=True)
    message_provider_id = models.CharField(max_length=255, blank=True)
    occurred_at = models.DateTimeField()
    operation = models.CharField(max_length=32, choices=Operation.choices)
    agent_name = models.CharField(max_length=255, blank=True)
    provider_name = models.CharField(max_length=64, blank=True)  # gen_ai.provider.name
    request_model = models.CharField(max_length=255, blank=True)
    response_model = models.CharField(max_length=255, blank=True)
    prompt_name = models.CharField(max_length=255, blank=True)
    prompt_version = models.CharField(max_length=64, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    cached_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=64, blank=True)
    tool_name = models.CharField(max_length=255, blank=True)
    tool_arguments = models.JSONField(null=True, blank=True)
    tool_result = models.JSONField(null=True, blank=True)
    tool_error = models.TextField(blank=True)
    # [{"id", "title", "source", "score"}]
    retrieved_documents = models.JSONField(default=list, blank=True)
    guardrails = models.JSONField(default=list, blank=True)
    system_prompt = models.TextField(blank=True)
    system_prompt_hash = models.CharField(max_length=128, blank=True)
    raw_event = models.ForeignKey(
        RawEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="ai_steps"
    )
    # OpenTelemetry trace context: steps of one AI turn share a trace; a step's parent span
    # ties a retrieval or tool call to the chat that used it.
    trace_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    span_id = models.CharField(max_length=32, blank=True, default="")
    parent_span_id = models.CharField(max_length=32, blank=True, default="")
    # What the answer-quality checks read (conversations/quality): the model's input
    # messages ([{"role", "content"}]) or only their hash when the sender opts out of
    # sending text, the output text, the retrieval query (retrieved_documents' items may
    # carry "text"), how often a tool was retried and whether a person approved the call.
    input_messages = models.JSONField(default=list, blank=True, db_default=[])
    output_messages = models.JSONField(null=True, blank=True)  # from a span (channels/otlp)
    # From a span: its name and the error it ended with (channels/otlp_mapping.py).
    span_name = models.CharField(max_length=255, blank=True, default="", db_default="")
    error_type = models.CharField(max_length=255, blank=True, default="", db_default="")
    input_messages_hash = models.CharField(max_length=128, blank=True, default="",
                                           db_default="")
    output_text = models.TextField(blank=True, default="", db_default="")
    retrieval_query = models.TextField(blank=True, default="", db_default="")
    tool_retries = models.PositiveIntegerField(null=True, blank=True)
    # {"required": bool, "status": "approved" | "denied" | "pending", "by": "..."}
    tool_approval = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = "AI step"
        verbose_name_plural = "AI steps"
        constraints = [
            models.UniqueConstraint(fields=["conversation", "external_id"], name="ai_step_unique"),
        ]
        indexes = [
            models.Index(fields=["conversation", "occurred_at"], name="ai_step_timeline"),
            models.Index(fields=["request_model", "prompt_version"], name="ai_step_release"),
            # Steps waiting for the message they produced: each new AI message looks its
            # own up here (without it, every step without a message was scanned).
            models.Index(
                fields=["message_provider", "message_provider_id"],
                condition=Q(message__isnull=True),
                name="ai_step_waiting",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.response_model or self.request_model} {self.external_id}"


class ConversationEvent(models.Model):
    """A handoff or conversation lifecycle event (handoff.requested, conversation.closed...),
    kept as reported; the handoff state machine consumes them."""

    # No index of its own: the model's composite indexes start with the conversation.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    external_id = models.CharField(max_length=255)
    type = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16, choices=AuthorKind.choices, blank=True)
    actor_id = models.CharField(max_length=255, blank=True)
    actor_name = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    raw_event = models.ForeignKey(
        RawEvent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversation_events",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "external_id"], name="conversation_event_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["conversation", "occurred_at"], name="conversation_event_timeline"
            ),
            models.Index(fields=["type", "occurred_at"], name="conversation_event_type"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.occurred_at:%Y-%m-%d %H:%M}"


class Outcome(models.Model):
    """What a journey achieved: CSAT, resolution, conversion, a reviewer's verdict."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="outcomes"
    )
    external_id = models.CharField(max_length=255)
    occurred_at = models.DateTimeField()
    csat = models.PositiveSmallIntegerField(null=True, blank=True)  # 1-5
    # Net Promoter answer, 0-10 (9-10 promoter, 0-6 detractor). Columns added after the
    # first release carry database defaults: writers that name their columns (the bulk
    # loaders' COPY) keep working without them.
    nps = models.PositiveSmallIntegerField(null=True, blank=True, db_default=None)
    resolved = models.BooleanField(null=True, blank=True)
    converted = models.BooleanField(null=True, blank=True)
    # The sale the conversation led to: an amount in `revenue_currency` (ISO 4217).
    revenue_amount = models.DecimalField(max_digits=20, decimal_places=6, null=True,
                                         blank=True, db_default=None)
    revenue_currency = models.CharField(max_length=3, blank=True, default="", db_default="")
    escalated = models.BooleanField(null=True, blank=True)
    verdict = models.CharField(max_length=255, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    raw_event = models.ForeignKey(
        RawEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="outcomes"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "external_id"], name="outcome_unique"),
        ]

    def __str__(self) -> str:
        return f"outcome {self.external_id}"


class DashboardDirtyDay(models.Model):
    """A day (site time zone) whose dashboard figures changed since they were last rolled
    up: the services that change the facts (ingest, the handoff machine, the sweep) upsert
    one row per day a batch touches; audit's rollup task rebuilds those days and deletes
    the rows. Lives here, in the core, so that every app can mark a day without importing
    audit."""

    day = models.DateField(primary_key=True)
    marked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"dashboard day {self.day} (marked {self.marked_at:%Y-%m-%d %H:%M})"
