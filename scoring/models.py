"""Judgments about messages and conversations: brand voices, the brand a conversation
belongs to, scores (automated and human, on the same footing) and their daily aggregates.

scoring depends on conversations, never the reverse: no column is added to a
conversations table; the conversation -> brand link lives here.
"""

from django.db import models
from django.db.models import Q

from conversations.models import AuthorKind, Channel, Conversation, Message


class BrandVoice(models.Model):
    """The style guide a tone score is measured against.

    Per-channel settings are JSON dicts keyed by channel (`sms`, `whatsapp`, `email`,
    `web`); a channel missing from a dict has no rule of that kind.
    """

    class FirstPerson(models.TextChoices):
        WE = "we", "We (the company speaks)"
        I = "i", "I (the agent speaks)"  # noqa: E741
        ANY = "any", "Either"

    name = models.SlugField(max_length=64, unique=True)
    display_name = models.CharField(max_length=255, blank=True)
    # The brand used for conversations no address rule or assignment places elsewhere.
    is_default = models.BooleanField(default=False)
    # Business addresses (Twilio numbers, mailboxes, widget ids) whose conversations belong
    # to this brand unless a ConversationBrand row says otherwise.
    business_addresses = models.JSONField(default=list, blank=True)
    # The brand name(s) exactly as they must be written ("Brisa Home").
    brand_names = models.JSONField(default=list, blank=True)
    # Bands on the 0-1 scales of the formality and warmth scorers.
    formality_min = models.FloatField(default=0.45)
    formality_max = models.FloatField(default=0.85)
    warmth_min = models.FloatField(default=0.55)
    warmth_max = models.FloatField(default=1.0)
    # Highest Flesch-Kincaid grade a reply may need.
    max_reading_grade = models.FloatField(default=8.0)
    # {"sms": {"max_segments": 2}, "whatsapp": {"max_chars": 1000}, ...}
    length_limits = models.JSONField(default=dict, blank=True)
    # {"sms": 0, "whatsapp": 2, ...}: most emoji allowed; a missing channel is unlimited.
    emoji_max = models.JSONField(default=dict, blank=True)
    # {"email": ["Hi", "Hello", "Dear"]}: a reply on that channel must open with one.
    greetings = models.JSONField(default=dict, blank=True)
    # {"email": ["Best regards", "Kind regards"]}: a reply must close with one.
    signoffs = models.JSONField(default=dict, blank=True)
    banned_phrases = models.JSONField(default=list, blank=True)
    # {"email": ["Brisa Home"]}: phrases a reply on that channel must contain.
    required_phrases = models.JSONField(default=dict, blank=True)
    first_person = models.CharField(
        max_length=8, choices=FirstPerson.choices, default=FirstPerson.ANY
    )
    # Messages that sound exactly right (exemplar similarity compares against them).
    exemplars = models.JSONField(default=list, blank=True)
    # A reply under this overall score (0-100) raises tone_off_brand.
    tone_threshold = models.PositiveSmallIntegerField(default=60)
    # Rules whose break raises tone_off_brand whatever the overall score: any of
    # banned_phrase, brand_spelling, required_phrase, first_person, emoji, length,
    # greeting, signoff.
    critical_rules = models.JSONField(default=list, blank=True)
    # Phone numbers and e-mail addresses the brand may give out (pii_leak ignores them).
    allowed_contacts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="brand_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.name


class ConversationBrand(models.Model):
    """An explicit assignment of a conversation to a brand (beats the address rule)."""

    conversation = models.OneToOneField(
        Conversation, on_delete=models.CASCADE, related_name="brand_assignment"
    )
    brand = models.ForeignKey(BrandVoice, on_delete=models.CASCADE, related_name="assignments")
    assigned_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.conversation_id} -> {self.brand}"


class Score(models.Model):
    """One judgment: a dimension's value 0-1 for a message or a conversation.

    Automated scores have source `auto` and author `<scorer>@<version>`; a reviewer's
    scorecard answers have source `human` and the reviewer as author. Unique per subject,
    name, source and author, so re-running a scorer overwrites its own row and nothing else.
    """

    class Source(models.TextChoices):
        AUTO = "auto", "Automated"
        HUMAN = "human", "Human reviewer"

    class SubjectType(models.TextChoices):
        MESSAGE = "message", "Message"
        CONVERSATION = "conversation", "Conversation"

    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    subject_id = models.BigIntegerField()
    # No single-column index on conversation or brand: score_conversation starts with the
    # conversation, brands are rarely deleted, and every index costs each of the ~8 rows a
    # message writes.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="scores", db_index=False
    )
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="scores"
    )
    brand = models.ForeignKey(
        BrandVoice, on_delete=models.SET_NULL, null=True, blank=True, related_name="scores",
        db_index=False,
    )
    name = models.CharField(max_length=64)
    value = models.FloatField()
    source = models.CharField(max_length=8, choices=Source.choices)
    author = models.CharField(max_length=150)
    # [{"rule": ..., "detail": ..., "words": [...], "spans": [[start, end], ...]}, ...] plus
    # figures (measured level, band, fit).
    explanations = models.JSONField(default=dict, blank=True)
    # Copied from the message so aggregates and dashboards need no join.
    channel = models.CharField(max_length=16, choices=Channel.choices)
    author_kind = models.CharField(max_length=16, choices=AuthorKind.choices)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subject_type", "subject_id", "name", "source", "author"],
                name="score_unique_judgment",
            ),
            models.CheckConstraint(
                condition=Q(value__gte=0) & Q(value__lte=1), name="score_value_0_1"
            ),
        ]
        indexes = [
            models.Index(fields=["name", "occurred_at"], name="score_name_time"),
            models.Index(fields=["conversation", "name"], name="score_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value:.2f} ({self.author})"


class ScoreDaily(models.Model):
    """Per day, brand, channel, author kind and dimension: count, mean and spread of the
    automated scores of that day's messages (kept when message bodies are purged)."""

    day = models.DateField()
    brand = models.ForeignKey(BrandVoice, on_delete=models.CASCADE, related_name="daily")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    author_kind = models.CharField(max_length=16, choices=AuthorKind.choices)
    name = models.CharField(max_length=64)
    count = models.PositiveIntegerField()
    mean = models.FloatField()
    # Population standard deviation of the day's values.
    stddev = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "daily score"
        verbose_name_plural = "daily scores"
        constraints = [
            models.UniqueConstraint(
                fields=["day", "brand", "channel", "author_kind", "name"],
                name="score_daily_unique",
            ),
        ]
        indexes = [models.Index(fields=["brand", "name", "day"], name="score_daily_series")]

    def __str__(self) -> str:
        return f"{self.day} {self.channel}/{self.author_kind} {self.name} {self.mean:.2f}"


from .qa_models import *  # noqa: E402,F401,F403  QA annotation models (issue 7, docs/qa.md)


class BrandExample(models.Model):
    """A reply the brand likes (or dislikes), uploaded in the admin or through the API:
    what `brand_fit` learns from (scoring/calibration.py)."""

    brand = models.ForeignKey(BrandVoice, on_delete=models.CASCADE, related_name="examples")
    text = models.TextField()
    liked = models.BooleanField()
    channel = models.CharField(max_length=16, choices=Channel.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "text"], name="brand_example_unique_text"),
        ]

    def __str__(self) -> str:
        return f"{'liked' if self.liked else 'disliked'}: {self.text[:60]}"


class BrandCalibration(models.Model):
    """What was learned for one brand: the brand-fit model from its examples, and the
    dimension weights fitted to its QA reviewers' brand-tone answers, each with the
    figures that say how well it does (scoring/calibration.py)."""

    brand = models.OneToOneField(BrandVoice, on_delete=models.CASCADE,
                                 related_name="calibration")
    # brand_fit: logistic regression over the features of scoring.calibration.FEATURES.
    fit_model = models.JSONField(default=dict, blank=True)
    fit_examples = models.PositiveIntegerField(default=0)
    # Cross-validated ROC AUC of brand_fit on the examples (None: too few to tell).
    fit_cv_auc = models.FloatField(null=True, blank=True)
    fit_at = models.DateTimeField(null=True, blank=True)
    # Per-dimension weights of brand_tone fitted to the reviewers' answers ({} = defaults).
    qa_weights = models.JSONField(default=dict, blank=True)
    qa_conversations = models.PositiveIntegerField(default=0)
    # Pearson r of brand_tone with the reviewers' brand-tone answer, before (default
    # weights) and after (fitted weights, leave-one-out: never judged on its own answers).
    qa_r_before = models.FloatField(null=True, blank=True)
    qa_r_after = models.FloatField(null=True, blank=True)
    qa_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"calibration of {self.brand}"
