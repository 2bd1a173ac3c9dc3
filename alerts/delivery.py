"""Sending the outbox: claim a delivery (a lease, so two workers never send it at once and a
killed worker's delivery is taken again), send it, record the outcome; exponential backoff
between attempts, a dead letter after ALERTS_MAX_ATTEMPTS. Also the digests and the
"send test" of a destination."""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
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


def _claimable(ids: list[int] | None, now: datetime) -> QuerySet[Delivery]:
    """The due deliveries no live worker holds, locked, skipping the locked ones. of=self:
    locking the joined destination too would make concurrent workers skip each other's
    deliveries to the same destination."""
    due = (Delivery.objects.select_for_update(skip_locked=True, of=("self",))
           .select_related("destination")
           .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
           .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)))
    return due.filter(pk__in=ids) if ids is not None else due


def deliveries_claim(*, now: datetime, limit: int, ids: list[int] | None = None
                     ) -> list[Delivery]:
    """Take up to `limit` due deliveries (of `ids`, or the most overdue) for one attempt
    each, in one statement: UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)
    RETURNING id; then one read of them with their destinations."""
    lease = now + timedelta(seconds=float(alerts_setting("ALERTS_CLAIM_SECONDS")))
    pick = _claimable(ids, now).order_by("next_attempt_at", "pk").values("pk")[:limit]
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        sql, params = pick.query.sql_with_params()  # FOR UPDATE compiles in a transaction
        cursor.execute(f"UPDATE {table} SET claimed_until = %s, attempts = attempts + 1 "
                       f"WHERE id IN ({sql}) RETURNING id", [lease, *params])
        claimed = [row[0] for row in cursor.fetchall()]
    if not claimed:
        return []
    return list(Delivery.objects.select_related("destination").filter(pk__in=claimed)
                .order_by("next_attempt_at", "pk"))


def delivery_claim(*, delivery_id: int, now: datetime) -> Delivery | None:
    """Take a due delivery for one attempt, or None (sent, dead, not due, or held by a
    live worker)."""
    claimed = deliveries_claim(now=now, limit=1, ids=[delivery_id])
    return claimed[0] if claimed else None


def _send(delivery: Delivery) -> Attempt:
    """Send once (no database access: safe in a thread); the outcome, not yet recorded."""
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
        return Attempt(delivery.pk, sent=True)
    if not retry or delivery.attempts >= int(alerts_setting("ALERTS_MAX_ATTEMPTS")):
        return Attempt(delivery.pk, sent=False, error=error)
    return Attempt(delivery.pk, sent=False, retry_in=backoff_seconds(delivery.attempts),
                   error=error)


def attempts_record(deliveries: list[Delivery], attempts: list[Attempt]) -> int:
    """Write the outcomes of claimed deliveries in a few statements: the sent ones (and
    the digest items they carried), the retries with their backoff, the dead letters.
    A destination that took a delivery is back: its other deliveries waiting out a
    backoff (not those that just failed) are made due now, so the next sweep sends them
    instead of each waiting up to the backoff cap.
    Returns how many were made due."""
    now = timezone.now()
    by_pk = {d.pk: d for d in deliveries}
    sent = [a.delivery_id for a in attempts if a.sent]
    if sent:
        Delivery.objects.filter(pk__in=sent).update(
            status=Delivery.Status.SENT, sent_at=now, claimed_until=None, last_error="")
        Delivery.objects.filter(digest_id__in=sent).update(status=Delivery.Status.BUNDLED,
                                                           sent_at=now)
    failed = []
    for attempt in attempts:
        if attempt.sent:
            continue
        delivery = by_pk[attempt.delivery_id]
        delivery.claimed_until, delivery.last_error = None, attempt.error
        if attempt.retry_in is None:
            delivery.status = Delivery.Status.DEAD
        else:
            delivery.next_attempt_at = now + timedelta(seconds=attempt.retry_in)
        failed.append(delivery)
    if failed:
        Delivery.objects.bulk_update(failed, ["status", "next_attempt_at", "claimed_until",
                                              "last_error"])
    back = {by_pk[pk].destination_id for pk in sent}
    if not back:
        return 0
    return (Delivery.objects.filter(
        destination_id__in=back, status=Delivery.Status.PENDING, attempts__gt=0,
        next_attempt_at__gt=now, claimed_until__isnull=True)
        .exclude(pk__in=list(by_pk)).update(next_attempt_at=now))


def delivery_attempt(*, delivery_id: int) -> Attempt | None:
    """One attempt at a delivery; None when there was nothing to do."""
    delivery = delivery_claim(delivery_id=delivery_id, now=timezone.now())
    if delivery is None:
        return None
    attempt = _send(delivery)
    attempts_record([delivery], [attempt])
    return attempt


def deliveries_send_due(*, limit: int = 200, now: datetime | None = None) -> list[Attempt]:
    """Claim up to `limit` due deliveries at once and send them: one thread per
    destination (so a receiver that hangs delays only its own deliveries), each over
    its host's kept-alive connection; the outcomes recorded together."""
    claimed = deliveries_claim(now=now or timezone.now(), limit=limit)
    if not claimed:
        return []
    by_destination: dict[int, list[Delivery]] = {}
    for delivery in claimed:
        by_destination.setdefault(delivery.destination_id, []).append(delivery)
    groups = list(by_destination.values())
    workers = min(len(groups), int(alerts_setting("ALERTS_SEND_THREADS")))
    if workers <= 1:
        results = [[_send(d) for d in group] for group in groups]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda group: [_send(d) for d in group], groups))
    ordered = [d for group in groups for d in group]
    attempts = [a for result in results for a in result]
    attempts_record(ordered, attempts)
    return attempts


def deliveries_sweep(*, now: datetime | None = None) -> int:
    """Send due deliveries batch after batch until none is due or ALERTS_SWEEP_SECONDS
    have passed; returns how many were attempted. Due means due when the sweep began:
    a delivery that fails in this sweep waits for its backoff and a later sweep."""
    now = now or timezone.now()
    deadline = time.monotonic() + float(alerts_setting("ALERTS_SWEEP_SECONDS"))
    done = 0
    while time.monotonic() < deadline:
        attempts = deliveries_send_due(limit=int(alerts_setting("ALERTS_SWEEP_BATCH")),
                                       now=now)
        if not attempts:
            break
        done += len(attempts)
    return done


def deliveries_due(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Pending deliveries whose time has come and that no live worker holds: what a lost
    broker message, a killed worker, quiet hours or a retry left."""
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
