"""The access log in the admin: read-only, for those who may read it (managers)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from conversations.admin import ReadOnly

from .access_models import AccessEntry
from .roles import ACCESS_LOG, can


@admin.register(AccessEntry)
class AccessEntryAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("at", "username", "kind", "what", "conversation_id", "objects_label", "ip")
    list_filter = ("kind",)
    search_fields = ("username",)
    date_hierarchy = "at"
    show_full_result_count = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can(request.user, ACCESS_LOG)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can(request.user, ACCESS_LOG)
