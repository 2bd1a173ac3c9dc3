import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create (or reset) the demo login printed by `make run`. Idempotent."

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        username = os.environ.get("HANDOFF_AUDITOR_DEMO_USER", "demo")
        password = os.environ.get("HANDOFF_AUDITOR_DEMO_PASSWORD", "demo")
        user, created = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"demo login {'created' if created else 'ready'}: {username}")
