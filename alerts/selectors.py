"""Reads for the alert pages and the API."""

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import Alert, Delivery, Destination, Rule


def alert_conversation_ids(*, alert_id: int) -> list[int]:
    """The conversations behind an alert (the inbox's `alert` filter)."""
    ids = Alert.objects.filter(pk=alert_id).values_list("conversation_ids", flat=True)
    return ids.first() or []


def alerts_needing_attention(*, now: datetime | None = None) -> QuerySet[Alert]:
    """Firing, not acknowledged, not muted, not snoozed: the header's count."""
    now = now or timezone.now()
    return Alert.objects.filter(state=Alert.State.FIRING, acknowledged_at__isnull=True,
                                muted=False).filter(
        Q(snoozed_until__isnull=True) | Q(snoozed_until__lte=now))


def alerts_list(*, state: str = "", rule_id: int | None = None) -> QuerySet[Alert]:
    qs = Alert.objects.select_related("rule").order_by("-last_fired_at", "-pk")
    if state in Alert.State.values:
        qs = qs.filter(state=state)
    if rule_id:
        qs = qs.filter(rule_id=rule_id)
    return qs


def alert_detail(*, alert_id: int) -> Alert:
    return (Alert.objects.select_related("rule")
            .prefetch_related("events", "deliveries__destination").get(pk=alert_id))


def rules_list() -> QuerySet[Rule]:
    return Rule.objects.prefetch_related("destinations").order_by("kind", "name")


def dead_letters() -> QuerySet[Delivery]:
    return (Delivery.objects.filter(status=Delivery.Status.DEAD)
            .select_related("destination", "alert").order_by("-created_at")[:200])


def destinations_list() -> QuerySet[Destination]:
    return Destination.objects.order_by("name")
