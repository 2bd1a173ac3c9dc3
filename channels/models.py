"""The adapters' own records: OTLP senders' bearer tokens (channels/otlp.py)."""

from django.db import models


class OTLPToken(models.Model):
    """A bearer token one sender (an agent service, a collector) sends traces with. Only
    its SHA-256 is kept. Rotation: issue a new token for the sender, switch the sender,
    revoke the old one; both work in between (`manage.py otlp_token`)."""

    sender = models.CharField(max_length=100)
    token_sha256 = models.CharField(max_length=64, unique=True)
    # The first characters, to tell tokens apart in lists without keeping the secret.
    prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "OTLP token"
        indexes = [models.Index(fields=["sender"], name="otlp_token_sender")]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"{self.sender} {self.prefix}… ({state})"
