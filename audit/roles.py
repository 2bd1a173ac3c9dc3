"""Roles: Django groups bundling the auditor's permissions, created (and kept in step) after
every migrate. Superusers have every permission.

- manager: everything: flag actions, CSV export, raw events, annotation, QA lead (queues,
  every reviewer's answers), the access log;
- qa_reviewer: reads everything unmasked and annotates;
- viewer: reads, with customer contact details and PII masked.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission

APP = "audit"
VIEW, PII, FLAGS, EXPORT, ANNOTATE, RAW, LEAD, ACCESS_LOG = (
    "view_auditor", "view_pii", "act_on_flags", "export_data", "annotate", "view_raw_events",
    "lead_qa", "view_access_log",
)
ROLES: dict[str, tuple[str, ...]] = {
    "manager": (VIEW, PII, FLAGS, EXPORT, ANNOTATE, RAW, LEAD, ACCESS_LOG),
    "qa_reviewer": (VIEW, PII, ANNOTATE),
    "viewer": (VIEW,),
}


def roles_ensure(**_: Any) -> None:
    """Create the role groups and give each exactly its permissions (post_migrate)."""
    permissions = {p.codename: p for p in Permission.objects.filter(content_type__app_label=APP)}
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set([permissions[c] for c in codenames if c in permissions])


def can(user: AbstractBaseUser | AnonymousUser, codename: str) -> bool:
    return bool(user.is_authenticated and user.has_perm(f"{APP}.{codename}"))


def role_of(user: AbstractBaseUser | AnonymousUser) -> str:
    """The most capable role a user holds, for display."""
    if not user.is_authenticated:
        return ""
    if user.is_superuser:
        return "manager"
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in ROLES if role in names), "")
