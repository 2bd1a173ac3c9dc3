"""The audit app declares the permissions its roles are made of (see roles.py) and keeps the
QA review queues (qa_models.py)."""

from django.db import models

from .qa_models import QueueItem, QueueSlot, ReviewQueue  # noqa: F401  (QA queues)


class AuditorAccess(models.Model):
    """Not a table: a home for the auditor's permissions (Django attaches permissions to a
    model). Roles (groups) bundle them; see roles.py."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_auditor", "Can open the inbox, replays and dashboards"),
            ("view_pii", "Can see customer contact details and PII unmasked"),
            ("act_on_flags", "Can acknowledge, resolve and dismiss flags"),
            ("export_data", "Can export CSV reports"),
            ("annotate", "Can annotate conversations (QA scorecards)"),
            ("view_raw_events", "Can see the raw events behind a conversation"),
            ("lead_qa", "Can set up QA queues and see every reviewer's answers"),
        ]

    def __str__(self) -> str:
        return "auditor access"
