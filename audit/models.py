"""The audit app declares the permissions its roles are made of (see roles.py) and keeps the
QA review queues (qa_models.py)."""

from django.db import models

from .access_models import AccessEntry  # noqa: F401  (the access log)
from .outcome_models import OutcomeDaily  # noqa: F401  (outcome reports)
from .qa_models import QueueItem, QueueSlot, ReviewQueue  # noqa: F401  (QA queues)
from .quality_models import QualityDaily  # noqa: F401  (answer-quality rates)


class AuditorAccess(models.Model):
    """Not a table: a home for the auditor's permissions (Django attaches permissions to a
    model). Roles (groups) bundle them; see roles.py."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_auditor", "Can open the inbox, replays and dashboards"),
            ("view_pii", "Can see customer contact details and PII unmasked"),
            ("act_on_flags", "Can acknowledge, resolve and dismiss flags"),
            ("export_data", "Can export CSV reports"),
            ("annotate", "Can annotate conversations (QA scorecards)"),
            ("view_raw_events", "Can see the raw events behind a conversation"),
            ("lead_qa", "Can set up QA queues and see every reviewer's answers"),
            ("view_access_log", "Can read the access log (who opened raw events and PII)"),
        ]

    def __str__(self) -> str:
        return "auditor access"


# --- dashboard rollups (audit.rollups builds them; audit.dashboard_selectors reads them) ---


class DashboardDay(models.Model):
    """A day (site time zone) whose rollup rows are built, and when."""

    day = models.DateField(primary_key=True)
    built_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"dashboard rollup {self.day}"


class ConversationDaily(models.Model):
    """Conversations started on `day` in `channel` whose last handoff ended as `bucket`
    (audit.dashboard_selectors.CSAT_BUCKETS): counts and sums, additive over days."""

    day = models.DateField()
    channel = models.CharField(max_length=16)
    bucket = models.CharField(max_length=16)
    conversations = models.PositiveIntegerField()
    eligible = models.PositiveIntegerField()  # the AI took part, or a handoff happened
    resolved = models.PositiveIntegerField()
    cost = models.DecimalField(max_digits=20, decimal_places=8, null=True)
    rated = models.PositiveIntegerField()
    csat_sum = models.BigIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "channel", "bucket"],
                                               name="conversation_daily_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} {self.bucket}: {self.conversations} conversations"


class ReleaseDaily(models.Model):
    """Conversations started on `day` in `channel` in which a release (AI model or prompt
    version) took a step: counts, the release's own cost, CSAT sums."""

    day = models.DateField()
    channel = models.CharField(max_length=16)
    kind = models.CharField(max_length=8)  # model, prompt
    release = models.CharField(max_length=255)
    conversations = models.PositiveIntegerField()
    handed_off = models.PositiveIntegerField()
    dropped = models.PositiveIntegerField()
    cost = models.DecimalField(max_digits=20, decimal_places=8, null=True)
    rated = models.PositiveIntegerField()
    csat_sum = models.BigIntegerField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "channel", "kind", "release"],
                                               name="release_daily_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} {self.kind} {self.release}"


class HandoffDaily(models.Model):
    """Handoffs requested on `day` in `channel`. Distinct-conversation counts are exact
    over any set of days: `shared` lists, per count, the conversations that also have a
    handoff requested in another cell (day x channel), so a sum can subtract them and add
    back their union. Times to human are kept whole (exact percentiles); SLA waits as
    counts, plus the deadlines of waits still open (breached once `now` passes them)."""

    day = models.DateField()
    channel = models.CharField(max_length=16)
    handoffs = models.PositiveIntegerField()
    reached = models.PositiveIntegerField()
    stalled = models.PositiveIntegerField()
    conversations = models.PositiveIntegerField()
    dropped = models.PositiveIntegerField()
    returned = models.PositiveIntegerField()
    shared = models.JSONField(default=dict)  # {"conversations"|"dropped"|"returned": [ids]}
    # Packed float64 arrays (audit.rollups): a month at a million conversations is
    # about 100,000 values, which JSON took 100 ms to decode and numpy reads at once.
    time_to_human = models.BinaryField(default=b"")
    time_to_human_business = models.BinaryField(default=b"")
    sla = models.JSONField(default=dict)  # {kind: {"waits": n, "met": n, "breached": n}}
    # (Wait.Kind index, deadline epoch seconds) pairs of the waits still open.
    sla_open = models.BinaryField(default=b"")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "channel"],
                                               name="handoff_daily_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel}: {self.handoffs} handoffs"
