"""QA annotation (issue 7): scorecards with immutable versions, reviewers' reviews of
conversations, their per-category answers, message notes and flag verdicts.

Imported by scoring/models.py so Django finds these models in the scoring app. The writes
are in scoring/qa.py, the reads and statistics in scoring/qa_selectors.py, the picture in
docs/qa.md. A submitted review's answers are also written as `human` Score rows
(`qa:<category key>`), beside the automated scores.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from conversations.models import Conversation, Flag, Message

__all__ = ["Review", "ReviewAnswer", "ReviewFlagVerdict", "ReviewMessageNote", "Scorecard",
           "ScorecardCategory", "ScorecardVersion"]


class Scorecard(models.Model):
    """A named scorecard; what it asks lives in its versions (the highest is current)."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ScorecardVersion(models.Model):
    """One immutable version of a scorecard. Editing a scorecard creates a new version;
    reviews point at the version they were filled against, so they never change meaning."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    note = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scorecard", "number"],
                                    name="qa_scorecard_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.scorecard.key} v{self.number}"


class ScorecardCategory(models.Model):
    """One question of a scorecard version."""

    class Scale(models.TextChoices):
        YES_NO = "yes_no", "Yes / no"
        ONE_FIVE = "one_five", "1-5"

    version = models.ForeignKey(ScorecardVersion, on_delete=models.CASCADE,
                                related_name="categories")
    # Stable across versions: Score rows are named qa:<key>, agreement and trends group by it.
    key = models.SlugField(max_length=48)
    label = models.CharField(max_length=255)
    help_text = models.TextField(blank=True)
    scale = models.CharField(max_length=16, choices=Scale.choices)
    na_allowed = models.BooleanField(default=False)
    # Share of the overall result; 0 records the answer without scoring it ("handoff needed?").
    weight = models.FloatField(default=1.0)
    # A failing answer (no; 1 or 2 on 1-5) fails the whole review.
    critical = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="qa_category_unique_key"),
            models.CheckConstraint(condition=Q(weight__gte=0), name="qa_category_weight_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.scale})"


class Review(models.Model):
    """A reviewer's scorecard for one conversation: a draft until submitted. One per
    reviewer, conversation and scorecard version."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"

    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="qa_reviews")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE,
                                     related_name="qa_reviews")
    version = models.ForeignKey(ScorecardVersion, on_delete=models.PROTECT,
                                related_name="reviews")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # Weighted result 0-100 over the answered (not N/A) categories with weight > 0; None
    # when nothing scorable was answered. Set on submit.
    score_100 = models.FloatField(null=True, blank=True)
    failed = models.BooleanField(default=False)
    # Keys of the critical categories that failed the review.
    failed_categories = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reviewer", "conversation", "version"],
                                    name="qa_review_unique"),
        ]
        indexes = [
            models.Index(fields=["conversation", "status"], name="qa_review_conversation"),
            models.Index(fields=["status", "submitted_at"], name="qa_review_submitted"),
        ]

    def __str__(self) -> str:
        return f"review of #{self.conversation_id} by {self.reviewer_id} ({self.status})"


class ReviewAnswer(models.Model):
    """One category's answer: a value on the category's scale, or N/A."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="answers")
    category = models.ForeignKey(ScorecardCategory, on_delete=models.PROTECT,
                                 related_name="answers")
    # yes/no: 1 yes, 0 no; 1-5: 1..5. Null when N/A.
    value = models.PositiveSmallIntegerField(null=True, blank=True)
    na = models.BooleanField(default=False)
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "category"], name="qa_answer_unique"),
            models.CheckConstraint(
                condition=(Q(na=True) & Q(value__isnull=True))
                | (Q(na=False) & Q(value__isnull=False)),
                name="qa_answer_value_or_na",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category.key}={'N/A' if self.na else self.value}"


class ReviewMessageNote(models.Model):
    """A label and comment on one message of the reviewed conversation."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="message_notes")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="qa_notes")
    label = models.CharField(max_length=64, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["message_id", "id"]

    def __str__(self) -> str:
        return f"{self.message_id}: {self.label}"


class ReviewFlagVerdict(models.Model):
    """A reviewer's verdict on a flag of the conversation (flag precision is built on these)."""

    class Verdict(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        FALSE_POSITIVE = "false_positive", "False positive"

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="flag_verdicts")
    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="qa_verdicts")
    # Copied from the flag: precision per kind needs no join, and survives a flag's re-raise.
    kind = models.CharField(max_length=64)
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "flag"], name="qa_verdict_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.flag_id}: {self.verdict}"
