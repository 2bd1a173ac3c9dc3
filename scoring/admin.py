from django.contrib import admin

from conversations.admin import ReadOnlyAdmin

from .models import (
    BrandCalibration,
    BrandExample,
    BrandVoice,
    ConversationBrand,
    Score,
    ScoreDaily,
)
from .qa_models import Review, ReviewAnswer, Scorecard, ScorecardCategory, ScorecardVersion


class BrandExampleInline(admin.TabularInline):
    """Replies the brand likes and dislikes: brand_fit learns from them (20-100)."""

    model = BrandExample
    extra = 3
    fields = ("text", "liked", "channel")


@admin.register(BrandVoice)
class BrandVoiceAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "is_default", "tone_threshold", "first_person",
                    "updated_at")
    search_fields = ("name", "display_name")
    fieldsets = (
        (None, {"fields": ("name", "display_name", "is_default", "business_addresses",
                           "brand_names")}),
        ("Bands", {"fields": ("formality_min", "formality_max", "warmth_min", "warmth_max",
                              "max_reading_grade")}),
        ("Per channel", {"fields": ("length_limits", "emoji_max", "greetings", "signoffs",
                                    "required_phrases")}),
        ("Rules", {"fields": ("banned_phrases", "first_person", "critical_rules",
                              "tone_threshold", "allowed_contacts")}),
        ("Exemplars", {"fields": ("exemplars",)}),
    )
    inlines = [BrandExampleInline]
    actions = ["calibrate"]

    @admin.action(description="Calibrate: fit brand fit on the examples and the weights "
                              "on QA answers")
    def calibrate(self, request, queryset):  # noqa: ANN001, ANN201
        from conversations.conf import auditor_settings

        from .calibration import CalibrationError, brand_fit_train, brand_qa_calibrate

        for brand in queryset:
            for label, fn in (
                ("brand fit", lambda b: brand_fit_train(brand=b)),
                ("QA weights", lambda b: brand_qa_calibrate(
                    brand=b, default_weights=auditor_settings.SCORING_WEIGHTS)),
            ):
                try:
                    c = fn(brand)
                except CalibrationError as exc:
                    self.message_user(request, f"{brand}: {label} not fitted: {exc}",
                                      level="warning")
                    continue
                if label == "brand fit":
                    text = (f"brand fit learned from {c.fit_examples} examples "
                            f"(cross-validated AUC {c.fit_cv_auc})")
                else:
                    text = (f"weights fitted on {c.qa_conversations} reviewed conversations: "
                            f"r with reviewers {c.qa_r_before} before, {c.qa_r_after} after "
                            f"(leave-one-out)")
                self.message_user(request, f"{brand}: {text}")


@admin.register(BrandCalibration)
class BrandCalibrationAdmin(admin.ModelAdmin):
    list_display = ("brand", "fit_examples", "fit_cv_auc", "fit_at", "qa_conversations",
                    "qa_r_before", "qa_r_after", "qa_at")
    readonly_fields = ("brand", "fit_model", "fit_examples", "fit_cv_auc", "fit_at",
                       "qa_weights", "qa_conversations", "qa_r_before", "qa_r_after", "qa_at")


@admin.register(ConversationBrand)
class ConversationBrandAdmin(admin.ModelAdmin):
    list_display = ("conversation", "brand", "assigned_at")
    list_filter = ("brand",)
    raw_id_fields = ("conversation",)


@admin.register(Score)
class ScoreAdmin(ReadOnlyAdmin):
    list_display = ("name", "value", "source", "author", "channel", "author_kind",
                    "subject_type", "subject_id", "occurred_at")
    list_filter = ("name", "source", "channel", "author_kind", "brand")
    raw_id_fields = ("conversation", "message")
    readonly_fields = ("created_at",)


@admin.register(ScoreDaily)
class ScoreDailyAdmin(ReadOnlyAdmin):
    list_display = ("day", "brand", "channel", "author_kind", "name", "count", "mean",
                    "stddev")
    list_filter = ("brand", "channel", "author_kind", "name")
    date_hierarchy = "day"


# --- QA (issue 7 data layer): read-mostly, so reviews are checked where they are stored ---


class ScorecardCategoryInline(admin.TabularInline):
    model = ScorecardCategory
    extra = 0
    fields = ("position", "key", "label", "scale", "na_allowed", "weight", "critical")
    readonly_fields = fields  # versions are immutable: edit through scoring.qa.scorecard_edit
    can_delete = False


@admin.register(Scorecard)
class ScorecardAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "created_at")


@admin.register(ScorecardVersion)
class ScorecardVersionAdmin(admin.ModelAdmin):
    list_display = ("scorecard", "number", "note", "created_by", "created_at")
    inlines = [ScorecardCategoryInline]


class ReviewAnswerInline(admin.TabularInline):
    model = ReviewAnswer
    extra = 0
    can_delete = False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001, ANN201
        return False


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("conversation", "reviewer", "version", "status", "score_100", "failed",
                    "submitted_at")
    list_filter = ("status", "failed")
    raw_id_fields = ("conversation",)
    inlines = [ReviewAnswerInline]
