import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from audit.roles import roles_ensure


class Command(BaseCommand):
    help = (
        "Create the demo logins printed by `make run` if they do not exist: the demo manager "
        "(also an admin), and one login per other role (<user>-qa, <user>-viewer) with the "
        "same password, to see what each role sees. An existing login is left as it is "
        "(a changed password is kept). For local use only."
    )

    def handle(self, *args, **options):  # noqa: ANN002, ANN003
        username = os.environ.get("HANDOFF_AUDITOR_DEMO_USER", "demo")
        password = os.environ.get("HANDOFF_AUDITOR_DEMO_PASSWORD", "demo")
        roles_ensure()
        users = get_user_model().objects
        for name, role, admin in (
            (username, "manager", True),
            (f"{username}-qa", "qa_reviewer", False),
            (f"{username}-viewer", "viewer", False),
        ):
            user, created = users.get_or_create(username=name)
            if created:  # a login someone changed since (password, rights) is left alone
                user.is_staff = user.is_superuser = admin
                user.set_password(password)
                user.save()
                user.groups.set([Group.objects.get(name=role)])
            self.stdout.write(f"demo login {'created' if created else 'ready'}: {name} ({role})")
