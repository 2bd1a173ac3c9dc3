from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .roles import roles_ensure

        post_migrate.connect(roles_ensure, sender=self, dispatch_uid="audit.roles")
        user_logged_in.connect(staff_session_limit, dispatch_uid="audit.staff_session")
        from conversations.signals import admin_record_viewed

        from .access_log import admin_record_viewed as log_admin_view

        admin_record_viewed.connect(log_admin_view, dispatch_uid="audit.access_log")


def staff_session_limit(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Staff sign-ins (admin rights over everyone's data) last STAFF_SESSION_SECONDS."""
    from conversations.conf import auditor_settings

    seconds = auditor_settings.STAFF_SESSION_SECONDS
    if seconds and getattr(user, "is_staff", False) and hasattr(request, "session"):
        request.session.set_expiry(min(seconds, settings.SESSION_COOKIE_AGE))
