from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    label = "demo"
    verbose_name = "Handoff Auditor demo data"
    default_auto_field = "django.db.models.BigAutoField"
