"""Writes for the API: issuing tokens."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def api_token_issue(*, user: AbstractBaseUser, rotate: bool = False) -> str:
    """The user's API token (one per user), made if missing; `rotate` replaces it, so the
    old one stops working."""
    if rotate:
        Token.objects.filter(user=user).delete()
    token, _ = Token.objects.get_or_create(user=user)
    return token.key
