"""The alert lifecycle: fire (or group a repeat into the firing alert of the same rule and
group key), resolve, acknowledge, snooze, mute. Each change writes its history row and its
outbox rows in the same transaction (outbox.outbox_write)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from .changes import Clearing, Firing, alerts_write
from .models import Alert, AlertEvent, Rule
from .outbox import outbox_write


def alert_fire(
    *,
    rule: Rule,
    group_key: str,
    title: str,
    summary: str,
    at: datetime,
    value: float | None = None,
    threshold: float | None = None,
    sample: int | None = None,
    evidence: dict[str, Any] | None = None,
    conversation_ids: Iterable[int] = (),
    channel: str = "",
    repeat: bool = True,
) -> tuple[Alert, bool]:
    """Open an alert, or fold this occurrence into the firing one (changes.alerts_write
    with one Firing). Returns (alert, opened)."""
    written = alerts_write([Firing(
        rule=rule, group_key=group_key, title=title, summary=summary, at=at, value=value,
        threshold=threshold, sample=sample, evidence=evidence or {},
        conversation_ids=conversation_ids, channel=channel, repeat=repeat)])
    return written.alerts[0]


def alert_resolve(*, alert: Alert, at: datetime | None = None, note: str = "") -> Alert:
    at = at or timezone.now()
    alerts_write(clearings=[Clearing(rule=alert.rule, keep=None, note=note, at=at,
                                     only={alert.pk})])
    alert.refresh_from_db()
    return alert


def alert_acknowledge(*, alert: Alert, by: str, note: str = "") -> Alert:
    at = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.acknowledged_at is not None:
            return alert
        alert.acknowledged_at, alert.acknowledged_by = at, by
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
        event = AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.ACKNOWLEDGED,
                                          at=at, by=by, note=note)
        outbox_write(alert=alert, event=event)
    return alert


def alert_snooze(*, alert: Alert, by: str, until: datetime, note: str = "") -> Alert:
    """No notification about this alert until `until` (its history still grows)."""
    at = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        alert.snoozed_until = until
        alert.save(update_fields=["snoozed_until"])
        AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.SNOOZED, at=at, by=by,
                                  note=note, data={"until": until.isoformat()})
    return alert


def alert_mute(*, alert: Alert, by: str, muted: bool = True, note: str = "") -> Alert:
    """A muted alert notifies no one, even when it resolves."""
    at = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.muted == muted:
            return alert
        alert.muted = muted
        alert.save(update_fields=["muted"])
        AlertEvent.objects.create(
            alert=alert, kind=AlertEvent.Kind.MUTED if muted else AlertEvent.Kind.UNMUTED,
            at=at, by=by, note=note)
    return alert


def alerts_resolve_others(*, rule: Rule, keep: set[str], at: datetime, note: str) -> int:
    """Resolve the rule's firing alerts whose group no longer breaks the rule."""
    return len(alerts_write(clearings=[Clearing(rule=rule, keep=keep, note=note,
                                                at=at)]).resolved)
