"""QA review queues (issue 7): which conversations reviewers should judge, and who judges
which. Imported by audit/models.py; writes in audit/qa_queues.py, reads in
audit/qa_selectors.py, the picture in docs/qa.md.

A queue's items are filled by its sampling rules (once per conversation); each item has one
slot per review it needs (two for a blind double review), each slot taken by a different
reviewer. The reviews themselves are scoring.Review rows.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from conversations.models import Conversation
from scoring.models import Review, Scorecard

PERCENT = [MinValueValidator(0), MaxValueValidator(100)]


class ReviewQueue(models.Model):
    """A named queue: sampling rules (union), filters (intersection), its reviewers and the
    share of items reviewed twice, blind."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    scorecard = models.ForeignKey(Scorecard, on_delete=models.PROTECT, related_name="queues")
    active = models.BooleanField(default=True, help_text="Filled by the periodic task.")
    # Sampling rules: a conversation is taken if any rule takes it.
    channel_percent = models.JSONField(
        default=dict, blank=True,
        help_text='Percent of conversations per channel, e.g. {"whatsapp": 10, "email": 5}.')
    flag_kinds = models.JSONField(default=list, blank=True,
                                  help_text="Every conversation with a flag of these kinds.")
    dropped_handoffs = models.BooleanField(
        default=False, help_text="Every conversation with a dropped handoff.")
    # Filters: a taken conversation must also match all of these (blank: no filter).
    brand = models.CharField(max_length=64, blank=True, help_text="A brand voice's name.")
    ai_model = models.CharField(max_length=255, blank=True)
    prompt_version = models.CharField(max_length=100, blank=True)
    since = models.DateField(null=True, blank=True, help_text="Conversations started on or after.")
    until = models.DateField(null=True, blank=True, help_text="Conversations started on or before.")
    reviewers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                       related_name="qa_queues",
                                       help_text="Who may take items (empty: every reviewer).")
    double_percent = models.PositiveSmallIntegerField(
        default=0, validators=PERCENT,
        help_text="Percent of items reviewed twice, blind, by two different reviewers.")
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    filled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(double_percent__lte=100),
                                   name="qa_queue_double_percent_lte_100"),
        ]

    def __str__(self) -> str:
        return self.name


class QueueItem(models.Model):
    """One conversation in a queue (added once), needing one review or, if `double`, two."""

    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="items")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE,
                                     related_name="qa_queue_items")
    double = models.BooleanField(default=False)
    # Which rule took it: "sample", "flag:<kind>", "dropped_handoff".
    reason = models.CharField(max_length=80, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "conversation"], name="qa_item_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.queue} #{self.conversation_id}"


class QueueSlot(models.Model):
    """One review an item needs. Free until a reviewer takes it; done when that reviewer's
    review of the conversation is submitted."""

    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="slots")
    number = models.PositiveSmallIntegerField(default=1)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 null=True, blank=True, related_name="qa_slots")
    # Denormalized from the item, so "take next" needs no join to order or filter.
    queue = models.ForeignKey(ReviewQueue, on_delete=models.CASCADE, related_name="slots")
    claimed_at = models.DateTimeField(null=True, blank=True)
    review = models.ForeignKey(Review, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="queue_slots")
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["item_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["item", "number"], name="qa_slot_unique_number"),
            # Two slots of one item are two different reviewers (blind double review).
            models.UniqueConstraint(fields=["item", "reviewer"], name="qa_slot_unique_reviewer"),
        ]
        indexes = [
            # "Take next": free slots of a queue in (item, number) order, so the first
            # one a reviewer may take is found without sorting the queue.
            models.Index(fields=["queue", "item", "number"], name="qa_slot_free",
                         condition=Q(reviewer__isnull=True)),
            models.Index(fields=["reviewer", "done_at"], name="qa_slot_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.item} slot {self.number}"

    @property
    def state(self) -> str:
        if self.done_at:
            return "done"
        return "in_progress" if self.reviewer_id else "to_do"
