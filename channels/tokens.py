"""OTLP bearer tokens: issue, revoke, check. Tokens are random (`secrets`), kept hashed."""

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from .models import OTLPToken

TOKEN_PREFIX = "hat_"
# last_used_at is written at most this often per token (not on every export).
USED_EVERY = timedelta(minutes=5)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def otlp_token_issue(*, sender: str) -> str:
    """A new token for `sender` (its other tokens keep working until revoked)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    OTLPToken.objects.create(sender=sender, token_sha256=_digest(token), prefix=token[:12],
                             created_at=timezone.now())
    return token


def otlp_tokens_revoke(*, sender: str, prefix: str = "") -> int:
    """Revoke the sender's tokens (only the one starting with `prefix`, if given)."""
    tokens = OTLPToken.objects.filter(sender=sender, revoked_at__isnull=True)
    if prefix:
        tokens = tokens.filter(prefix__startswith=prefix[:12])
    return tokens.update(revoked_at=timezone.now())


def otlp_token_sender(*, token: str) -> str | None:
    """The sender of an active token, or None."""
    if not token or len(token) > 200:
        return None
    row = (OTLPToken.objects.filter(token_sha256=_digest(token), revoked_at__isnull=True)
           .only("pk", "sender", "last_used_at").first())
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > USED_EVERY:
        OTLPToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.sender
