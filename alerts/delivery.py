"""Sending the outbox: claim a delivery (a lease, so two workers never send it at once and a
killed worker's delivery is taken again), send it, record the outcome; exponential backoff
between attempts, a dead letter after ALERTS_MAX_ATTEMPTS. Also the digests and the
"send test" of a destination."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .conf import alerts_setting
from .models import Delivery, Destination, Rule
from .netguard import UnsafeDestination
from .outbox import deliveries_queue
from .payloads import digest_payload, test_payload
from .senders import SENDERS, SendFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    sent: bool
    retry_in: float | None = None  # seconds, when it should be tried again
    error: str = ""


def backoff_seconds(attempts: int) -> float:
    """Wait before the next attempt after `attempts` failed ones: base * 2^(n-1), capped."""
    base = float(alerts_setting("ALERTS_BACKOFF_SECONDS"))
    cap = float(alerts_setting("ALERTS_BACKOFF_MAX_SECONDS"))
    return min(base * 2 ** max(attempts - 1, 0), cap)


def _claimable(delivery_id: int, now: datetime) -> QuerySet[Delivery]:
    # of=self: locking the joined destination too would make concurrent workers skip
    # each other's deliveries to the same destination.
    return (Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("destination")
            .filter(pk=delivery_id, status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)))


def delivery_claim(*, delivery_id: int, now: datetime) -> Delivery | None:
    """Take a due delivery for one attempt, or None (sent, dead, not due, or held by a
    live worker)."""
    lease = now + timedelta(seconds=float(alerts_setting("ALERTS_CLAIM_SECONDS")))
    with transaction.atomic():
        delivery = _claimable(delivery_id, now).first()
        if delivery is None:
            return None
        delivery.claimed_until = lease
        delivery.attempts += 1
        delivery.save(update_fields=["claimed_until", "attempts"])
    return delivery


def delivery_attempt(*, delivery_id: int) -> Attempt | None:
    """One attempt at a delivery; None when there was nothing to do."""
    now = timezone.now()
    delivery = delivery_claim(delivery_id=delivery_id, now=now)
    if delivery is None:
        return None
    destination = delivery.destination
    retry = True
    try:
        if not destination.enabled:
            raise UnsafeDestination("The destination is disabled.")
        SENDERS[destination.kind](delivery, destination)
    except UnsafeDestination as exc:
        error, retry = str(exc), False
    except SendFailed as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 — a sender bug must not lose the delivery
        log.exception("alert delivery %s failed", delivery.pk)
        error = f"Unexpected error: {type(exc).__name__}"
    else:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.SENT, sent_at=timezone.now(), claimed_until=None,
            last_error="")
        Delivery.objects.filter(digest=delivery).update(status=Delivery.Status.BUNDLED,
                                                        sent_at=timezone.now())
        return Attempt(delivery.pk, sent=True)
    if not retry or delivery.attempts >= int(alerts_setting("ALERTS_MAX_ATTEMPTS")):
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.DEAD, claimed_until=None, last_error=error)
        return Attempt(delivery.pk, sent=False, error=error)
    wait = backoff_seconds(delivery.attempts)
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=wait), claimed_until=None,
        last_error=error)
    return Attempt(delivery.pk, sent=False, retry_in=wait, error=error)


def deliveries_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Pending deliveries whose time has come and that no live worker holds: what a lost
    broker message, a killed worker, quiet hours or a retry left (beat, every 15 s)."""
    now = now or timezone.now()
    return list(Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
                .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
                .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def delivery_retry(*, delivery: Delivery) -> Delivery:
    """Give a dead letter another round of attempts (the page's "retry" button)."""
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.DEAD).update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=timezone.now(),
        claimed_until=None)
    transaction.on_commit(lambda: deliveries_queue([delivery.pk]))
    delivery.refresh_from_db()
    return delivery


def digests_build(*, period: str, now: datetime | None = None) -> list[Delivery]:
    """Bundle the held events of the rules in `period` digest mode into one delivery per
    destination (beat: hourly, and daily at midnight)."""
    now = now or timezone.now()
    made = []
    with transaction.atomic():
        held = list(Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(status=Delivery.Status.DIGEST, alert__rule__digest=period)
                    .order_by("created_at", "pk"))
        by_destination: dict[int, list[Delivery]] = {}
        for item in held:
            by_destination.setdefault(item.destination_id, []).append(item)
        for destination_id, items in by_destination.items():
            bundle = Delivery.objects.create(
                key=f"digest-{period}-{now:%Y%m%dT%H%M}-to-{destination_id}-{items[0].pk}",
                destination_id=destination_id, event=Delivery.Event.DIGEST,
                payload=digest_payload(items, period=period, at=now), next_attempt_at=now,
                created_at=now)
            Delivery.objects.filter(pk__in=[i.pk for i in items]).update(
                digest=bundle, status=Delivery.Status.BUNDLED)
            made.append(bundle)
        ids = [b.pk for b in made]
        transaction.on_commit(lambda: deliveries_queue(ids))
    return made


def destination_test(*, destination: Destination) -> Attempt:
    """Send a test message now, in this request (the "send test" button): the answer says
    whether it arrived."""
    now = timezone.now()
    delivery = Delivery.objects.create(
        key=f"test-{destination.pk}-{now:%Y%m%dT%H%M%S%f}", destination=destination,
        event=Delivery.Event.TEST, payload=test_payload(at=now, destination_name=destination.name),
        next_attempt_at=now, created_at=now)
    attempt = delivery_attempt(delivery_id=delivery.pk)
    assert attempt is not None
    if not attempt.sent:  # a test is tried once; it never waits in the outbox
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.DEAD)
    return attempt


DIGEST_PERIODS = [p for p in Rule.Digest.values if p]
