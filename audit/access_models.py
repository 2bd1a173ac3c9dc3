"""The access log: who opened raw events or unmasked personal data, when, from where.

Rows are only ever added (audit.access_log.access_record); the admin shows them read-only,
the model refuses to save an existing row or delete one, and on PostgreSQL a trigger
refuses UPDATE (but clearing a removed user) and DELETE (migration 0007)."""

from django.conf import settings
from django.db import models


class AccessEntry(models.Model):
    class Kind(models.TextChoices):
        RAW_EVENTS = "raw_events", "Raw events viewed"
        PII = "pii", "Unmasked personal data viewed"
        EXPORT = "export", "CSV export with personal data"
        ADMIN = "admin", "Admin record viewed"

    at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="auditor_accesses")
    # Kept as written: the entry still says who after the user is renamed or removed.
    username = models.CharField(max_length=150)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What was opened: a page name ("replay", "customer", "api conversation", ...).
    what = models.CharField(max_length=64)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    # Other objects, as "<model label>:<id>" (a customer, an admin record) or the count of
    # rows an export or a list held.
    objects_label = models.CharField(max_length=255, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        verbose_name = "access log entry"
        verbose_name_plural = "access log"
        indexes = [
            models.Index(fields=["user", "-at"], name="access_entry_user"),
            models.Index(fields=["kind", "-at"], name="access_entry_kind"),
            models.Index(fields=["conversation_id"], name="access_entry_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.username} {self.kind} {self.what} at {self.at:%Y-%m-%d %H:%M}"

    class ReadOnly(Exception):
        """An access log entry is never changed or deleted."""

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise AccessEntry.ReadOnly("access log entries are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AccessEntry.ReadOnly("access log entries are never deleted")
