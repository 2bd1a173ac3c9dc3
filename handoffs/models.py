"""Handoffs: one row per AI-to-human episode, its transition log, its SLA waits, and the
policies and calendars those waits are measured with.

The machine itself (states, triggers, the transition table) is in machine.py; the writes
are in services.py, the reads in selectors.py.
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from conversations.models import Channel, Conversation, Message

from .business_time import Calendar, CalendarError
from .machine import ACTIVE, State, Trigger


class BusinessCalendar(models.Model):
    """When humans work: timezone, weekly hours, holidays. An SLA policy with a calendar
    counts only this time; the AI covers the rest."""

    name = models.CharField(max_length=100, unique=True)
    timezone = models.CharField(max_length=64, default="UTC")
    weekly = models.JSONField(
        default=dict,
        help_text='Opening hours by weekday, e.g. {"mon": [["09:00", "18:00"]], ...}; '
        "a day left out is closed.",
    )
    holidays = models.JSONField(
        default=list, blank=True, help_text='Closed dates, e.g. ["2026-12-25"].'
    )
    holidays_country = models.CharField(
        max_length=8,
        blank=True,
        help_text="Also close on this country's public holidays (ISO code, e.g. ES, US).",
    )
    holidays_subdivision = models.CharField(max_length=16, blank=True)

    def __str__(self) -> str:
        return self.name

    def as_calendar(self) -> Calendar:
        return Calendar.from_dict(
            {
                "timezone": self.timezone,
                "weekly": self.weekly,
                "holidays": self.holidays,
                "holidays_country": self.holidays_country,
                "holidays_subdivision": self.holidays_subdivision,
            }
        )

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "timezone": self.timezone,
            "weekly": self.weekly,
            "holidays": list(self.holidays),
            "holidays_country": self.holidays_country,
            "holidays_subdivision": self.holidays_subdivision,
        }

    def clean(self) -> None:
        try:
            self.as_calendar().validate()
        except (CalendarError, TypeError, ValueError, IndexError) as exc:
            raise ValidationError(str(exc)) from exc


class SLAPolicy(models.Model):
    """The longest wait allowed in each state, per channel and optionally per queue. The
    most specific active policy wins (channel + queue, then channel, then any channel);
    without one, the HANDOFF_AUDITOR["SLA_POLICIES"] defaults apply."""

    name = models.CharField(max_length=100, unique=True)
    channel = models.CharField(
        max_length=16, choices=Channel.choices, blank=True, help_text="Empty: any channel."
    )
    queue = models.CharField(max_length=100, blank=True, help_text="Empty: any queue.")
    calendar = models.ForeignKey(
        BusinessCalendar,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Count only business time; empty: every second counts.",
    )
    requested_limit = models.DurationField(
        null=True, blank=True, help_text="From the request until it is queued or picked up."
    )
    queued_limit = models.DurationField(null=True, blank=True)
    assigned_limit = models.DurationField(
        null=True, blank=True, help_text="From assignment to the agent's first reply."
    )
    reply_limit = models.DurationField(
        null=True,
        blank=True,
        help_text="Once a human is engaged: from a customer message to the next human reply.",
    )
    auto_resolve = models.BooleanField(
        default=True,
        help_text="Resolve a stalled flag, with a note, once a human finally replies.",
    )
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "queue"],
                condition=Q(active=True),
                name="sla_policy_one_active_per_scope",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def limits(self) -> dict[str, float | None]:
        def seconds(value: timedelta | None) -> float | None:
            return None if value is None else value.total_seconds()

        return {
            "requested": seconds(self.requested_limit),
            "queued": seconds(self.queued_limit),
            "assigned": seconds(self.assigned_limit),
            "reply": seconds(self.reply_limit),
        }


class Handoff(models.Model):
    """One episode in which control passes from the AI to a human."""

    # No index of its own: handoff_number (conversation, number) starts with it.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="handoffs", db_index=False
    )
    number = models.PositiveIntegerField(help_text="1 for the conversation's first handoff.")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    state = models.CharField(max_length=16, choices=[(s.value, s.value) for s in State])
    state_entered_at = models.DateTimeField()
    requested_by = models.CharField(max_length=16, blank=True)  # ai, customer, rule, human
    reason = models.TextField(blank=True)
    queue = models.CharField(max_length=100, blank=True)
    agent_id = models.CharField(max_length=255, blank=True)
    agent_name = models.CharField(max_length=255, blank=True)
    # The assigned agent's team, as the helpdesk reported it (handoff.assigned agent.team).
    team = models.CharField(max_length=100, blank=True, default="", db_default="")
    requested_at = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True)
    assigned_at = models.DateTimeField(null=True, blank=True)
    engaged_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Wall-clock and business seconds from the request to the first human reply.
    time_to_human = models.FloatField(null=True, blank=True)
    time_to_human_business = models.FloatField(null=True, blank=True)
    # The SLA policy in force (snapshot: a later edit does not rewrite past deadlines).
    policy = models.JSONField(default=dict, blank=True)
    # WhatsApp: when the 24-hour window closes while the customer waits for a human.
    window_expires_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    # AI messages to the customer after the request, before a human engaged.
    ai_replies_after_request = models.PositiveIntegerField(default=0)
    # The newest AI message counted, so re-applying a message does not count it twice.
    last_ai_message_id = models.BigIntegerField(null=True, blank=True)
    # Why the handoff never reached a human (closed_before_human, window_expired, ...).
    dropped_reasons = models.JSONField(default=list, blank=True)
    dropped_at = models.DateTimeField(null=True, blank=True)  # when first found dropped
    stalled_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "number"], name="handoff_number"),
            # At most one handoff in progress per conversation.
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(state__in=sorted(ACTIVE)),
                name="handoff_one_active",
            ),
        ]
        indexes = [
            models.Index(fields=["channel", "requested_at"], name="handoff_channel_period"),
            models.Index(fields=["requested_at"], name="handoff_period"),
            models.Index(
                fields=["window_expires_at"],
                condition=Q(window_expires_at__isnull=False),
                name="handoff_window_due",
            ),
        ]

    def __str__(self) -> str:
        return f"handoff {self.conversation_id}#{self.number} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE


class HandoffTransition(models.Model):
    """The log: every event the machine saw, applied or not, with its own timestamp."""

    class Source(models.TextChoices):
        CONVERSATION_EVENT = "conversation_event", "Conversation event"
        MESSAGE = "message", "Message"
        SWEEP = "sweep", "Sweep"

    # No index of its own: handoff_transition_log (handoff, time) starts with it.
    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="transitions",
                                db_index=False)
    trigger = models.CharField(max_length=16, choices=[(t.value, t.value) for t in Trigger])
    from_state = models.CharField(max_length=16, blank=True)  # "" when it opened the handoff
    to_state = models.CharField(max_length=16, blank=True)  # "" when not applied
    applied = models.BooleanField()
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    source_type = models.CharField(max_length=24, choices=Source.choices)
    source_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)
    # What the transition set or saw: the new state's deadline, the wait that ended...
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # Re-applying an event (reprocess_events, a redelivered batch) logs nothing new.
            models.UniqueConstraint(
                fields=["source_type", "source_id"],
                condition=Q(source_id__isnull=False),
                name="handoff_transition_once",
            ),
        ]
        indexes = [
            models.Index(fields=["handoff", "occurred_at"], name="handoff_transition_log"),
        ]

    def __str__(self) -> str:
        arrow = f"{self.from_state or '∅'} -> {self.to_state}" if self.applied else "not applied"
        return f"{self.trigger}: {arrow}"


class Wait(models.Model):
    """A customer waiting for a human: one per waiting state entered, and once engaged, one
    per customer message until the next human reply. Its deadline is computed when it
    starts, so the sweep finds what is due with an indexed query."""

    class Kind(models.TextChoices):
        REQUESTED = "requested", "Requested"
        QUEUED = "queued", "Queued"
        ASSIGNED = "assigned", "Assigned (first reply)"
        REPLY = "reply", "Reply while engaged"

    # No index of its own: wait_handoff (handoff, time) starts with it.
    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="waits",
                                db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    started_at = models.DateTimeField()
    allowed_seconds = models.FloatField(null=True, blank=True)  # null: no limit
    business_hours = models.BooleanField(default=False)
    deadline_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    waited_seconds = models.FloatField(null=True, blank=True)  # business seconds if so
    met = models.BooleanField(null=True, blank=True)  # null while open or without a limit
    stalled_at = models.DateTimeField(null=True, blank=True)  # when the sweep flagged it
    source_message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [
            # The sweep's query: open, not flagged yet, deadline passed.
            models.Index(
                fields=["deadline_at"],
                condition=Q(
                    ended_at__isnull=True, stalled_at__isnull=True, deadline_at__isnull=False
                ),
                name="wait_due",
            ),
            models.Index(fields=["handoff", "started_at"], name="wait_handoff"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} wait from {self.started_at:%Y-%m-%d %H:%M}"


class HumanAsk(models.Model):
    """A customer message that asked for a human, watched until a handoff is requested (or
    the AI has answered too many times without one: handoff_missed)."""

    class Status(models.TextChoices):
        WATCHING = "watching", "Watching"
        SATISFIED = "satisfied", "Handoff requested"
        MISSED = "missed", "Missed"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="human_asks"
    )
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="+")
    asked_at = models.DateTimeField()
    matched = models.CharField(max_length=255)
    ai_turns = models.PositiveIntegerField(default=0)
    last_ai_message_id = models.BigIntegerField(null=True, blank=True)
    # The customer asked again while this ask was watched (one finding, not one per ask).
    repeats = models.PositiveIntegerField(default=0)
    last_repeat_message_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WATCHING)
    handoff = models.ForeignKey(
        Handoff, on_delete=models.SET_NULL, null=True, blank=True, related_name="asks"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "customer ask for a human"
        verbose_name_plural = "customer asks for a human"
        indexes = [
            models.Index(
                fields=["conversation"], condition=Q(status="watching"), name="human_ask_watching"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.matched!r} at {self.asked_at:%Y-%m-%d %H:%M} ({self.status})"
