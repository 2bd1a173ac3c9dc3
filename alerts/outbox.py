"""The outbox: what each alert event must send to each of its rule's destinations, written
in the transaction that changed the alert; Celery sends it after commit (tasks.deliver) and
a beat sweep sends what a lost message or a killed worker left (delivery.deliveries_sweep).

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
from .models import Alert, AlertEvent, Delivery, Destination, Rule
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


def _rows(alert: Alert, event: AlertEvent, destinations: list[Destination]) -> list[Delivery]:
    """Pure: the deliveries one alert event makes to its rule's enabled destinations."""
    if event.kind not in SENT_EVENTS or alert.muted:
        return []
    if alert.snoozed_until is not None and alert.snoozed_until > event.at:
        return []
    rule = alert.rule
    payload = alert_payload(alert, event.kind, at=event.at)
    rows = []
    for destination in destinations:
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
    return rows


def rules_destinations(rule_ids: set[int]) -> dict[int, list[Destination]]:
    """Each rule's enabled destinations, in one read."""
    out: dict[int, list[Destination]] = {pk: [] for pk in rule_ids}
    for link in (Rule.destinations.through.objects.select_related("destination")
                 .filter(rule_id__in=rule_ids, destination__enabled=True)
                 .order_by("destination_id")):
        out[link.rule_id].append(link.destination)
    return out


def outbox_events_write(events: list[AlertEvent]) -> list[Delivery]:
    """The outbox rows of saved alert events, in one INSERT; queued to Celery at commit."""
    sent = [e for e in events if e.kind in SENT_EVENTS and not e.alert.muted]
    if not sent:
        return []
    destinations = rules_destinations({e.alert.rule_id for e in sent})
    rows = [row for e in sent for row in _rows(e.alert, e, destinations[e.alert.rule_id])]
    Delivery.objects.bulk_create(rows)
    now = timezone.now()
    due_now = [d.pk for d in rows if d.status == Delivery.Status.PENDING
               and d.next_attempt_at <= now]
    if due_now:
        transaction.on_commit(lambda: deliveries_queue(due_now))
    return rows


def outbox_write(*, alert: Alert, event: AlertEvent) -> list[Delivery]:
    return outbox_events_write([event])


def deliveries_queue(ids: list[int]) -> None:
    """Hand deliveries to Celery; if the broker is down the beat sweep finds them."""
    from .tasks import deliver  # tasks import the services

    queue = alerts_setting("ALERTS_QUEUE") or None
    for pk in ids:
        try:
            deliver.apply_async(args=[pk], queue=queue)
        except Exception:  # noqa: BLE001 — broker down: the sweep picks it up
            return

