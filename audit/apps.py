from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .roles import roles_ensure

        post_migrate.connect(roles_ensure, sender=self, dispatch_uid="audit.roles")
