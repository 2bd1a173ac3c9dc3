"""The alert lifecycle: fire (or group a repeat into the firing alert of the same rule and
group key), resolve, acknowledge, snooze, mute. Each change writes its history row and its
outbox rows in the same transaction (outbox.outbox_write)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Alert, AlertEvent, Rule
from .outbox import outbox_write

KEEP_CONVERSATIONS = 200


def alert_firing(*, rule: Rule, group_key: str) -> Alert | None:
    return (Alert.objects.select_for_update()
            .filter(rule=rule, group_key=group_key, state=Alert.State.FIRING).first())


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
    """Open an alert, or fold this occurrence into the firing one. `repeat`: this is a new
    occurrence (a new flag) worth a history line; False for a condition that simply still
    holds (a metric still over its threshold), which only refreshes the figures.
    Returns (alert, opened)."""
    ids = list(dict.fromkeys(conversation_ids))
    fields = {"title": title[:255], "summary": summary, "value": value, "threshold": threshold,
              "sample": sample, "evidence": evidence or {}, "channel": channel}
    with transaction.atomic():
        alert = alert_firing(rule=rule, group_key=group_key)
        if alert is None:
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        rule=rule, group_key=group_key, severity=rule.severity,
                        first_fired_at=at, last_fired_at=at,
                        conversation_ids=ids[-KEEP_CONVERSATIONS:], **fields)
            except IntegrityError:  # another evaluator opened it meanwhile
                alert = alert_firing(rule=rule, group_key=group_key)
                assert alert is not None
            else:
                event = AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.FIRED,
                                                  at=at, data=_figures(alert))
                outbox_write(alert=alert, event=event)
                return alert, True
        for name, value_ in fields.items():
            setattr(alert, name, value_)
        merged = list(dict.fromkeys([*alert.conversation_ids, *ids]))
        alert.conversation_ids = merged[-KEEP_CONVERSATIONS:]
        alert.last_fired_at = max(alert.last_fired_at, at)
        if repeat:
            alert.occurrences += 1
            AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.REPEATED, at=at,
                                      data=_figures(alert))
        alert.save()
        return alert, False


def alert_resolve(*, alert: Alert, at: datetime | None = None, note: str = "") -> Alert:
    at = at or timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_for_update().get(pk=alert.pk)
        if alert.state == Alert.State.RESOLVED:
            return alert
        alert.state = Alert.State.RESOLVED
        alert.resolved_at = at
        alert.save(update_fields=["state", "resolved_at"])
        event = AlertEvent.objects.create(alert=alert, kind=AlertEvent.Kind.RESOLVED, at=at,
                                          note=note)
        outbox_write(alert=alert, event=event)
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
    n = 0
    for alert in Alert.objects.filter(rule=rule, state=Alert.State.FIRING).exclude(
            group_key__in=keep):
        alert_resolve(alert=alert, at=at, note=note)
        n += 1
    return n


def _figures(alert: Alert) -> dict[str, Any]:
    return {"value": alert.value, "threshold": alert.threshold, "sample": alert.sample,
            "summary": alert.summary}
