"""Alerts: rules (versioned), alerts with their lifecycle and history, destinations and the
delivery outbox. See docs/alerts.md."""

from django.db import models
from django.db.models import Q

from conversations.models import Channel, Flag


class Destination(models.Model):
    """Where alerts go. `target` is an e-mail list (comma-separated) for e-mail, the URL
    otherwise (PagerDuty: the Events API v2 URL, empty for PagerDuty's own)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        SLACK = "slack", "Slack (incoming webhook)"
        WEBHOOK = "webhook", "Signed webhook (Standard Webhooks)"
        PAGERDUTY = "pagerduty", "PagerDuty (Events API v2)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(max_length=2048, blank=True)
    # Webhook: the Standard Webhooks secret ("whsec_..."); PagerDuty: the routing key.
    secret = models.CharField(max_length=255, blank=True)
    # Quiet hours (local time in quiet_timezone): non-critical deliveries wait until the end.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    quiet_timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"


class Rule(models.Model):
    class Kind(models.TextChoices):
        FLAG = "flag", "Flag rule"
        METRIC = "metric", "Metric rule"
        ANOMALY = "anomaly", "Anomaly rule"
        RELEASE = "release", "Release rule"

    class Digest(models.TextChoices):
        OFF = "", "Each alert"
        HOURLY = "hourly", "Hourly summary"
        DAILY = "daily", "Daily summary"

    class Comparison(models.TextChoices):
        ABOVE = "above", "above"
        BELOW = "below", "below"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=16, choices=Flag.Severity.choices,
                                default=Flag.Severity.HIGH)
    description = models.TextField(blank=True)
    # Flag rules: which new flags (empty list: any).
    flag_kinds = models.JSONField(default=list, blank=True)
    min_severity = models.CharField(max_length=16, choices=Flag.Severity.choices,
                                    default=Flag.Severity.INFO)
    channels = models.JSONField(default=list, blank=True)
    queues = models.JSONField(default=list, blank=True)
    brands = models.JSONField(default=list, blank=True)
    # Only when the flag is still open (not acknowledged or closed) this long after it rose.
    open_minutes = models.PositiveIntegerField(null=True, blank=True)
    # Metric, anomaly and release rules.
    metric = models.CharField(max_length=48, blank=True)
    # One alert per value of this (channel, queue, model, prompt_version; "" = overall).
    group_by = models.CharField(max_length=24, blank=True)
    comparison = models.CharField(max_length=8, choices=Comparison.choices,
                                  default=Comparison.ABOVE)
    threshold = models.FloatField(null=True, blank=True)
    window_minutes = models.PositiveIntegerField(default=60)
    # Fewer conversations (or handoffs, ratings...) than this in the window: no verdict.
    min_sample = models.PositiveIntegerField(default=20)
    # Anomaly rules: robust z (|value - median| / (1.4826 * MAD)) that fires, and how many
    # past weeks of the same hour of week the baseline needs.
    anomaly_z = models.FloatField(default=3.5)
    min_history_weeks = models.PositiveSmallIntegerField(default=3)
    # Release rules: significance level of the test.
    alpha = models.FloatField(default=0.05)
    digest = models.CharField(max_length=8, choices=Digest.choices, default="", blank=True)
    destinations = models.ManyToManyField(Destination, blank=True, related_name="rules")
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "enabled"], name="alert_rule_kind")]

    def __str__(self) -> str:
        return self.name


class RuleVersion(models.Model):
    """Every saved version of a rule: who, when, all its fields, and what changed."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    changed_by = models.CharField(max_length=150, blank=True)
    changed_at = models.DateTimeField()
    fields = models.JSONField(default=dict)
    changes = models.JSONField(default=dict, blank=True)  # {field: [before, after]}

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "version"],
                                               name="alert_rule_version_unique")]
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"{self.rule_id} v{self.version}"


class Alert(models.Model):
    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="alerts")
    # What the repeats share (a channel, a model, "" for the whole rule).
    group_key = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.FIRING)
    severity = models.CharField(max_length=16, choices=Flag.Severity.choices)
    title = models.CharField(max_length=255)
    summary = models.TextField()  # a sentence built from the figures
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    sample = models.PositiveIntegerField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    # The conversations behind it (the latest 200), for the inbox link.
    conversation_ids = models.JSONField(default=list, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    first_fired_at = models.DateTimeField()
    last_fired_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    muted = models.BooleanField(default=False)

    class Meta:
        constraints = [
            # Repeats group into the firing alert of their rule and group key.
            models.UniqueConstraint(fields=["rule", "group_key"], condition=Q(state="firing"),
                                    name="alert_one_firing_per_group"),
        ]
        indexes = [models.Index(fields=["state", "-last_fired_at"], name="alert_state_time")]

    def __str__(self) -> str:
        return f"{self.title} ({self.state})"


class AlertEvent(models.Model):
    """The alert's history: fired, repeated, resolved, acknowledged, snoozed, muted..."""

    class Kind(models.TextChoices):
        FIRED = "fired", "Fired"
        REPEATED = "repeated", "Repeated"
        RESOLVED = "resolved", "Resolved"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        SNOOZED = "snoozed", "Snoozed"
        MUTED = "muted", "Muted"
        UNMUTED = "unmuted", "Unmuted"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    by = models.CharField(max_length=150, blank=True)  # "" : the evaluator
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M}"


class FlagMatch(models.Model):
    """A flag a flag rule has taken into an alert: each flag counts once per rule."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="flag_matches")
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="+")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="flag_matches")
    matched_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "flag"],
                                               name="alert_flag_match_once")]

    def __str__(self) -> str:
        return f"rule {self.rule_id} took flag {self.flag_id}"


class FlagWatermark(models.Model):
    """How far the flag scan has read (Flag ids), and the ids below it not yet seen: an id
    taken by a transaction that had not committed when the scan passed (rechecked for
    FLAG_GAP_MINUTES, then forgotten: a rolled-back insert leaves a gap forever)."""

    last_id = models.BigIntegerField(default=0)
    gaps = models.JSONField(default=dict, blank=True)  # {id: first seen missing, ISO}
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"flags read up to {self.last_id}"


class Delivery(models.Model):
    """The outbox: one row per (alert event, destination), written in the transaction that
    changed the alert; Celery sends it. `key` is the idempotency key the receiver sees
    (webhook-id, PagerDuty dedup context, Message-ID)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        DIGEST = "digest", "Held for the digest"
        SENT = "sent", "Sent"
        DEAD = "dead", "Gave up (dead letter)"
        BUNDLED = "bundled", "Sent in a digest"

    class Event(models.TextChoices):
        FIRED = "fired", "fired"
        REPEATED = "repeated", "repeated"
        RESOLVED = "resolved", "resolved"
        ACKNOWLEDGED = "acknowledged", "acknowledged"
        DIGEST = "digest", "digest"
        TEST = "test", "test"

    key = models.CharField(max_length=120, unique=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, null=True, blank=True,
                              related_name="deliveries")
    destination = models.ForeignKey(Destination, on_delete=models.CASCADE,
                                    related_name="deliveries")
    event = models.CharField(max_length=16, choices=Event.choices)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    digest = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="items")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker sending it holds it until then; killed, the sweep takes it after.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="alert_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.destination_id} ({self.status})"
