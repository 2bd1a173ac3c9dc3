from django.contrib import admin

from conversations.admin import ReadOnlyAdmin

from .models import BusinessCalendar, Handoff, HandoffTransition, HumanAsk, SLAPolicy, Wait


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ("name", "timezone", "holidays_country")


@admin.register(SLAPolicy)
class SLAPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "channel",
        "queue",
        "calendar",
        "requested_limit",
        "queued_limit",
        "assigned_limit",
        "reply_limit",
        "auto_resolve",
        "active",
    )
    list_filter = ("channel", "active")


class TransitionInline(admin.TabularInline):
    model = HandoffTransition
    extra = 0
    fields = (
        "occurred_at",
        "trigger",
        "from_state",
        "to_state",
        "applied",
        "reason",
        "source_type",
        "source_id",
    )
    readonly_fields = fields
    ordering = ("occurred_at", "id")
    can_delete = False


class WaitInline(admin.TabularInline):
    model = Wait
    extra = 0
    fields = (
        "kind",
        "started_at",
        "deadline_at",
        "ended_at",
        "waited_seconds",
        "allowed_seconds",
        "met",
        "stalled_at",
    )
    readonly_fields = fields
    ordering = ("started_at", "id")
    can_delete = False


@admin.register(Handoff)
class HandoffAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "conversation",
        "number",
        "channel",
        "state",
        "queue",
        "agent_name",
        "requested_at",
        "engaged_at",
        "time_to_human",
        "stalled_count",
    )
    list_filter = ("channel", "state")
    search_fields = ("queue", "agent_id", "agent_name")
    raw_id_fields = ("conversation",)
    date_hierarchy = "requested_at"
    inlines = [TransitionInline, WaitInline]
    show_full_result_count = False


@admin.register(HumanAsk)
class HumanAskAdmin(ReadOnlyAdmin):
    list_display = ("id", "conversation", "asked_at", "matched", "ai_turns", "status")
    list_filter = ("status",)
    raw_id_fields = ("conversation", "message", "handoff")
