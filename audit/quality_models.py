"""The daily rollup behind the dashboards' answer-quality figures (audit.quality_figures)."""

from django.db import models


class QualityDaily(models.Model):
    """Conversations started on `day` in `channel` in which the AI took part (dimension
    "channel", release "") or in which a release took a step (dimension "model" or
    "prompt"), and, per answer-quality flag kind, how many of those have at least one
    flag of that kind (any status) attributed to them. Counts, so days and channels add
    up."""

    day = models.DateField()
    channel = models.CharField(max_length=16)
    dimension = models.CharField(max_length=8)  # channel, model, prompt
    release = models.CharField(max_length=255, blank=True)
    conversations = models.PositiveIntegerField()
    flagged = models.JSONField(default=dict)  # {flag kind: conversations}

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["day", "channel", "dimension", "release"], name="quality_daily_key")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel} {self.dimension} {self.release}"
