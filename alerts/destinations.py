"""Destinations are saved through this service: the target is checked (an e-mail list, or a
URL that passes the SSRF guard) and a webhook secret must be a Standard Webhooks secret."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from standardwebhooks import Webhook

from .models import Destination
from .netguard import UnsafeDestination, url_check

FIELDS = ["name", "kind", "target", "secret", "quiet_start", "quiet_end", "quiet_timezone",
          "enabled"]


def destination_validate(destination: Destination) -> None:
    errors: dict[str, str] = {}
    if destination.kind == Destination.Kind.EMAIL:
        addresses = [a.strip() for a in destination.target.split(",") if a.strip()]
        if not addresses:
            errors["target"] = "Give at least one e-mail address."
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                errors["target"] = f"{address} is not an e-mail address."
    elif destination.target or destination.kind != Destination.Kind.PAGERDUTY:
        try:
            url_check(destination.target)
        except UnsafeDestination as exc:
            errors["target"] = str(exc)
    if destination.kind == Destination.Kind.WEBHOOK:
        try:
            Webhook(destination.secret)
        except Exception:  # noqa: BLE001 — the library's own error types vary
            errors["secret"] = "Use a Standard Webhooks secret: whsec_ and base64."
        if not destination.secret.startswith("whsec_"):
            errors["secret"] = "Use a Standard Webhooks secret: whsec_ and base64."
    if destination.kind == Destination.Kind.PAGERDUTY and not destination.secret:
        errors["secret"] = "PagerDuty needs the integration's routing key."
    if (destination.quiet_start is None) != (destination.quiet_end is None):
        errors["quiet_end"] = "Give both the start and the end of the quiet hours."
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(destination.quiet_timezone or "UTC")
    except Exception:  # noqa: BLE001
        errors["quiet_timezone"] = "Not a time zone name (e.g. Europe/Berlin)."
    if errors:
        raise ValidationError(errors)


def destination_save(*, destination: Destination | None = None,
                     data: dict[str, Any]) -> Destination:
    """Create or change a destination; an empty secret keeps the one saved."""
    destination = destination or Destination()
    for name, value in data.items():
        if name not in FIELDS:
            raise ValidationError({name: "Not a field of a destination."})
        if name == "secret" and not value and destination.pk:
            continue
        setattr(destination, name, value)
    destination_validate(destination)
    destination.save()
    return destination
