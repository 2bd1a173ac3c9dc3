from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import (
    AIStep,
    Conversation,
    ConversationEvent,
    ConversationKey,
    Flag,
    Message,
    MessageStatusEvent,
    Outcome,
    Participant,
    RawEvent,
)
from .signals import admin_record_viewed


class ReadOnly:
    """An admin that shows records and never adds, changes or deletes one."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    """Raw and audit records: what happened, as received or as the rules derived it. They
    are viewed here, never added, changed or deleted by hand (raw events are reprocessed,
    derived rows rebuilt from them, flags acted on in the app so their history is kept)."""

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = self.get_object(request, object_id)
            conversation_id = (obj.pk if isinstance(obj, Conversation)
                               else getattr(obj, "conversation_id", None))
            admin_record_viewed.send(sender=self.model, request=request, object_id=object_id,
                                     conversation_id=conversation_id)
        return response


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("sent_at", "direction", "author_kind", "body", "status", "error_code")
    readonly_fields = fields
    ordering = ("sent_at", "id")
    show_change_link = True


class StatusEventInline(admin.TabularInline):
    model = MessageStatusEvent
    extra = 0
    fields = ("occurred_at", "status", "provider_status", "error_code", "error_message")
    readonly_fields = fields
    ordering = ("occurred_at", "id")


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "channel",
        "customer_address",
        "business_address",
        "status",
        "message_count",
        "last_activity_at",
    )
    list_filter = ("channel", "status")
    search_fields = ("customer_address", "business_address", "subject")
    date_hierarchy = "last_activity_at"
    inlines = [ParticipantInline, MessageInline]
    show_full_result_count = False


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "external_id", "display_name", "conversation")
    list_filter = ("kind",)
    search_fields = ("external_id", "display_name")
    raw_id_fields = ("conversation",)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "sent_at",
        "direction",
        "author_kind",
        "short_body",
        "status",
        "error_code",
        "conversation",
    )
    list_filter = ("direction", "author_kind", "status", "provider")
    search_fields = ("provider_message_id", "body")
    raw_id_fields = ("conversation", "participant", "raw_event")
    inlines = [StatusEventInline]
    show_full_result_count = False

    @admin.display(description="body")
    def short_body(self, obj: Message) -> str:
        return obj.body[:80]


@admin.register(MessageStatusEvent)
class MessageStatusEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "occurred_at", "provider_message_id", "status", "error_code", "message")
    list_filter = ("status", "provider")
    search_fields = ("provider_message_id",)
    raw_id_fields = ("message", "conversation", "raw_event")


@admin.register(RawEvent)
class RawEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "received_at", "provider", "kind", "dedupe_key", "status", "attempts")
    list_filter = ("provider", "kind", "status")
    search_fields = ("dedupe_key",)
    readonly_fields = ("received_at", "processed_at", "attempts")
    show_full_result_count = False
    actions = ["reprocess"]

    @admin.action(description="Reprocess selected raw events")
    def reprocess(self, request, queryset):  # noqa: ANN001 - admin action signature
        from .applier import raw_events_reprocess

        counts = raw_events_reprocess(raw_events=queryset.order_by("received_at", "id"))
        self.message_user(request, f"Reprocessed: {counts}")


@admin.register(Flag)
class FlagAdmin(ReadOnlyAdmin):
    list_display = ("id", "raised_at", "kind", "severity", "status", "conversation")
    list_filter = ("kind", "severity", "status")
    raw_id_fields = ("conversation",)


@admin.register(ConversationKey)
class ConversationKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "conversation", "created_at")
    search_fields = ("key",)
    raw_id_fields = ("conversation",)


@admin.register(AIStep)
class AIStepAdmin(ReadOnlyAdmin):
    list_display = ("id", "occurred_at", "operation", "response_model", "prompt_name",
                    "prompt_version", "tool_name", "finish_reason", "conversation")
    list_filter = ("operation", "response_model", "prompt_version")
    search_fields = ("external_id", "tool_name", "prompt_name")
    raw_id_fields = ("conversation", "message", "raw_event")


@admin.register(ConversationEvent)
class ConversationEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "occurred_at", "type", "actor_kind", "actor_id", "conversation")
    list_filter = ("type",)
    raw_id_fields = ("conversation", "raw_event")


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyAdmin):
    list_display = ("id", "occurred_at", "csat", "resolved", "converted", "escalated",
                    "verdict", "conversation")
    raw_id_fields = ("conversation", "raw_event")
