"""The outcome reports' daily rollup (audit.outcome_rollups builds it; audit
.selectors_outcomes reads it). Imported by audit/models.py so Django finds it."""

from django.db import models


class OutcomeDaily(models.Model):
    """The conversations started on `day` in `channel` that belong to one group: `kind`
    "channel" (key ""), "bucket" (key: how the last handoff ended), "model", "prompt",
    "agent" (key: agent id), "queue" or "team". Every figure is a count or a sum over those
    conversations (or, for the handoff figures, over their handoffs of the group), so the
    rows of any set of days add up exactly; distributions are kept whole (packed float64
    arrays) so percentiles and tests over any period are exact."""

    day = models.DateField()
    channel = models.CharField(max_length=16)
    kind = models.CharField(max_length=8)
    key = models.CharField(max_length=255)
    label = models.CharField(max_length=255, blank=True)  # an agent's name
    conversations = models.PositiveIntegerField()
    # Customer messages answered: seconds from the first customer message to the first reply
    # by anyone (AI or human), and to the first human reply.
    first_response = models.BinaryField(default=b"")
    first_human = models.BinaryField(default=b"")
    resolved = models.PositiveIntegerField(default=0)
    resolution_time = models.BinaryField(default=b"")  # start -> first said resolved
    contained = models.PositiveIntegerField(default=0)
    escalated = models.PositiveIntegerField(default=0)
    repeat = models.PositiveIntegerField(default=0)
    rated = models.PositiveIntegerField(default=0)
    csat_sum = models.FloatField(default=0)
    csat_sq = models.FloatField(default=0)  # sum of squares: confidence intervals
    nps_n = models.PositiveIntegerField(default=0)
    promoters = models.PositiveIntegerField(default=0)
    detractors = models.PositiveIntegerField(default=0)
    converted = models.PositiveIntegerField(default=0)
    revenue = models.JSONField(default=dict)  # {currency: "decimal sum"}
    costed = models.PositiveIntegerField(default=0)  # conversations with an AI cost
    cost = models.DecimalField(max_digits=20, decimal_places=8, default=0)
    cost_sq = models.FloatField(default=0)
    # Customer warmth (0-1) of the first and the last scored customer message, over the
    # conversations with at least two.
    sentiment_n = models.PositiveIntegerField(default=0)
    warmth_start = models.FloatField(default=0)
    warmth_end = models.FloatField(default=0)
    # The group's handoffs of these conversations.
    handoffs = models.PositiveIntegerField(default=0)
    reached = models.PositiveIntegerField(default=0)
    stalled = models.PositiveIntegerField(default=0)
    dropped = models.PositiveIntegerField(default=0)
    handoff_resolved = models.PositiveIntegerField(default=0)
    sla_waits = models.PositiveIntegerField(default=0)  # waits with a decided SLA
    sla_met = models.PositiveIntegerField(default=0)
    time_to_human = models.BinaryField(default=b"")
    # Submitted QA reviews of these conversations: their 0-100 scores and failures.
    qa_reviews = models.PositiveIntegerField(default=0)
    qa_sum = models.FloatField(default=0)
    qa_failed = models.PositiveIntegerField(default=0)
    # The day's worst cases: {list name: [[value, conversation id], ...]} (top 10 each).
    worst = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "channel", "kind", "key"],
                                               name="outcome_daily_key")]
        indexes = [models.Index(fields=["kind", "day"], name="outcome_daily_kind")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} {self.kind} {self.key}"
