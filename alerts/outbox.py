"""The outbox: what each alert event must send to each of its rule's destinations, written
in the transaction that changed the alert; Celery sends it after commit (tasks.deliver) and
a beat sweep sends what a lost message or a killed worker left (delivery.deliveries_due).

Who gets what:
- fired and resolved go to every enabled destination of the rule; acknowledged goes to
  PagerDuty only (it acknowledges the incident); repeats are grouped, never sent;
- nothing is sent for a muted alert, or while it is snoozed;
- a rule in digest mode holds its events for the hourly/daily summary (PagerDuty excepted:
  an incident needs its trigger and resolve);
- in a destination's quiet hours a delivery waits for their end, unless critical."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from .conf import alerts_setting
from .models import Alert, AlertEvent, Delivery, Destination
from .payloads import alert_payload

SENT_EVENTS = {AlertEvent.Kind.FIRED, AlertEvent.Kind.RESOLVED, AlertEvent.Kind.ACKNOWLEDGED}


def quiet_until(destination: Destination, at: datetime) -> datetime | None:
    """The end of the destination's quiet hours if `at` falls inside them."""
    start, end = destination.quiet_start, destination.quiet_end
    if start is None or end is None or start == end:
        return None
    zone = ZoneInfo(destination.quiet_timezone or "UTC")
    local = at.astimezone(zone)
    now = local.time()
    inside = (start <= now < end) if start < end else (now >= start or now < end)
    if not inside:
        return None
    day = local.date() if now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(timezone.get_current_timezone())


def _wanted(destination: Destination, event: str, digest: str) -> str | None:
    """The status of the delivery to write, or None for none."""
    if event == AlertEvent.Kind.ACKNOWLEDGED:
        return Delivery.Status.PENDING if destination.kind == Destination.Kind.PAGERDUTY else None
    if digest and destination.kind != Destination.Kind.PAGERDUTY:
        return Delivery.Status.DIGEST
    return Delivery.Status.PENDING


def outbox_write(*, alert: Alert, event: AlertEvent) -> list[Delivery]:
    if event.kind not in SENT_EVENTS or alert.muted:
        return []
    if alert.snoozed_until is not None and alert.snoozed_until > event.at:
        return []
    rule = alert.rule
    payload = alert_payload(alert, event.kind, at=event.at)
    rows = []
    for destination in rule.destinations.filter(enabled=True):
        status = _wanted(destination, event.kind, rule.digest)
        if status is None:
            continue
        due = event.at
        if alert.severity != "critical" and status == Delivery.Status.PENDING:
            due = quiet_until(destination, event.at) or due
        rows.append(Delivery(
            key=f"alert-{alert.pk}-event-{event.pk}-to-{destination.pk}", alert=alert,
            destination=destination, event=event.kind, payload=payload, status=status,
            next_attempt_at=due, created_at=event.at))
    Delivery.objects.bulk_create(rows)
    due_now = [d.pk for d in rows if d.status == Delivery.Status.PENDING
               and d.next_attempt_at <= timezone.now()]
    if due_now:
        transaction.on_commit(lambda: deliveries_queue(due_now))
    return rows


def deliveries_queue(ids: list[int]) -> None:
    """Hand deliveries to Celery; if the broker is down the beat sweep finds them."""
    from .tasks import deliver  # tasks import the services

    queue = alerts_setting("ALERTS_QUEUE") or None
    for pk in ids:
        try:
            deliver.apply_async(args=[pk], queue=queue)
        except Exception:  # noqa: BLE001 — broker down: deliveries_due picks it up
            return

