"""The applier: turns pending raw events into rows, in batches, in arrival order.

    webhook ──store──▶ RawEvent (pending) ──wake──▶ applier
    applier: one transaction per batch
      claim   partitions with pending events (PostgreSQL: pg_try_advisory_xact_lock, so one
              applier at a time works a partition), each one's oldest pending ids, and the
              batch's oldest of those, in id order, `FOR UPDATE SKIP LOCKED`
      apply   each raw event through its adapter's normalizer (a failure: that raw event is
              failed), then all their events at once through services.events_apply in a
              savepoint (messages, statuses, AI steps, outcomes, lifecycle events, and the
              handoff machine through journey_recorded); if that raises, each raw event
              again in a savepoint of its own, so that only the broken one fails
      mark    applied rows processed in one UPDATE, failed ones with their error
    commit; after commit, the work that can wait is queued (scoring, rollups).

Events of one conversation share a partition (the adapters name it: addresses or external
id), so they are applied in arrival order even with N appliers; different partitions go in
parallel. A killed applier's transaction rolls back and its rows are claimed again. A
database error (deadlock, lock timeout, lost connection) leaves the batch pending for the
next run; a raw event that fails that way alone in HEAD_TRIES runs is marked failed, so
that it does not hold up its partition for ever. On SQLite writers are serialized
(IMMEDIATE transactions), so no partition locks are needed.
"""

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from .conf import auditor_settings
from .events import NormalizationError, NormalizedEvent
from .models import RawEvent
from .raw_events import IngestResult, RawEventSpec, StoreResult, raw_events_store
from .services import events_apply, normalizer_get
from .sql import TRANSIENT_DATABASE_ERRORS, Statements

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock(APPLIER_LOCK_SPACE, partition): one applier per partition.
APPLIER_LOCK_SPACE = 0x4841  # "HA"
# Tries of a batch that hits a database error, before its head event is applied alone.
BATCH_TRIES = 3
# Runs in which a raw event failed alone on a database error before it is marked failed.
HEAD_TRIES = 5
TASK_NAME = "conversations.tasks.apply_raw_events"

_PARTITIONS_LOCK = f"""
    SELECT t.p FROM unnest(%s::int[]) AS t(p)
    WHERE CASE WHEN EXISTS (SELECT 1 FROM {RawEvent._meta.db_table} r
                            WHERE r.status = 'pending' AND r.partition = t.p)
               THEN pg_try_advisory_xact_lock({APPLIER_LOCK_SPACE}, t.p) ELSE false END
    LIMIT %s"""


# The claim's heads: per locked partition its oldest pending ids (the partial index
# raw_event_pending is (partition, id)), the batch's oldest of them, each row locked
# through the primary key (`FOR UPDATE … SKIP LOCKED`). Read back by id afterwards.
_HEADS_LOCK = f"""
    SELECT r.id FROM (
        SELECT k.id FROM unnest(%s::int[]) AS t(p)
        CROSS JOIN LATERAL (
            SELECT id FROM {RawEvent._meta.db_table}
            WHERE status = 'pending' AND partition = t.p ORDER BY id LIMIT %s) AS k
        ORDER BY k.id LIMIT %s) AS heads
    JOIN {RawEvent._meta.db_table} r ON r.id = heads.id AND r.status = 'pending'
    ORDER BY r.id FOR UPDATE OF r SKIP LOCKED"""


@dataclass
class ApplyCounts:
    batches: int = 0
    processed: int = 0
    failed: int = 0
    # Raw events still pending when the run stopped because of database errors.
    deferred: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return self.processed + self.failed

    def add(self, other: "ApplyCounts") -> None:
        self.batches += other.batches
        self.processed += other.processed
        self.failed += other.failed
        self.deferred += other.deferred
        self.errors += other.errors


def _partitions_lock(sql: Statements) -> list[int]:
    total = auditor_settings.APPLIER_PARTITIONS
    start = random.randrange(total)  # appliers start at different places, and rotate
    order = [(start + i) % total for i in range(total)]
    rows = sql.all(_PARTITIONS_LOCK, [order, auditor_settings.APPLIER_PARTITIONS_PER_BATCH])
    return [row[0] for row in rows]


def _claim(batch_size: int, only: list[int] | None = None) -> list[RawEvent]:
    pending = RawEvent.objects.filter(status=RawEvent.Status.PENDING)
    if only is not None:
        pending = pending.filter(pk__in=only)
    if connection.vendor != "postgresql":
        return list(pending.order_by("pk")[:batch_size])
    with Statements() as sql:
        partitions = _partitions_lock(sql)
        if not partitions:
            return []
        if only is None:
            # Each partition's oldest pending ids through the pending index, then the
            # batch's oldest of those, locked: what a claim reads follows the batch, not
            # the backlog (ordering every pending row of the partitions read 137,000 rows
            # per batch at a 560,000-event backlog: 310 ms, against 80 ms).
            ids = [row[0] for row in sql.all(_HEADS_LOCK, [partitions, batch_size, batch_size])]
            return list(RawEvent.objects.filter(pk__any=ids).order_by("pk")) if ids else []
    pending = pending.filter(partition__in=partitions).select_for_update(skip_locked=True)
    return list(pending.order_by("pk")[:batch_size])


def _why(raw: RawEvent, exc: Exception) -> str:
    expected = isinstance(exc, NormalizationError)
    (logger.info if expected else logger.error)(
        "raw event %s %s/%s failed: %s", raw.pk, raw.provider, raw.dedupe_key, exc,
        exc_info=None if expected else exc)
    return f"{type(exc).__name__}: {exc}"[:4000]


def _normalized(raw: RawEvent) -> list[NormalizedEvent]:
    """The raw event's normalized events, each naming it as its source."""
    events = normalizer_get(provider=raw.provider, kind=raw.kind)(raw)
    return [replace(event, raw_event_id=raw.pk) for event in events]


def _apply(events: list[NormalizedEvent]) -> Exception | None:
    """events_apply in a savepoint; the exception that rolled it back, if any. Database
    errors propagate: they are no event's fault, and the batch is retried."""
    try:
        with transaction.atomic():
            events_apply(events=events)
    except TRANSIENT_DATABASE_ERRORS:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever broke, the raw events must survive
        return exc
    return None


def _mark(processed: list[int], failed: dict[int, str], at: datetime) -> None:
    if processed:
        RawEvent.objects.filter(pk__any=processed).update(
            status=RawEvent.Status.PROCESSED, error="", processed_at=at,
            attempts=F("attempts") + 1)
    for pk, error in failed.items():
        RawEvent.objects.filter(pk=pk).update(
            status=RawEvent.Status.FAILED, error=error, processed_at=at,
            attempts=F("attempts") + 1)


def raw_events_apply_batch(*, batch_size: int | None = None,
                           only: list[int] | None = None) -> ApplyCounts:
    """Claim and apply one batch of pending raw events in one transaction."""
    size = batch_size or auditor_settings.APPLIER_BATCH_SIZE
    counts = ApplyCounts()
    with transaction.atomic():
        raws = _claim(size, only)
        if not raws:
            return counts
        failed: dict[int, str] = {}
        ready: list[tuple[RawEvent, list[NormalizedEvent]]] = []
        for raw in raws:
            try:
                ready.append((raw, _normalized(raw)))
            except Exception as exc:  # noqa: BLE001 - kept failed, with why
                failed[raw.pk] = _why(raw, exc)
        # The whole batch at once (set-based where it can be); if any event breaks it, each
        # raw event again on its own, so that only the broken one fails.
        together = [event for _, events in ready for event in events]
        if len(ready) > 1 and _apply(together) is None:
            processed = [raw.pk for raw, _ in ready]
        else:
            processed = []
            for raw, events in ready:
                exc = _apply(events)
                if exc is None:
                    processed.append(raw.pk)
                else:
                    failed[raw.pk] = _why(raw, exc)
        _mark(processed, failed, timezone.now())
    counts.batches, counts.processed, counts.failed = 1, len(processed), len(failed)
    return counts


def _head_alone(exc: Exception) -> bool:
    """After a batch failed BATCH_TRIES times on database errors: apply its first pending
    event alone. If that fails the same way, count a try on it; after HEAD_TRIES such runs
    it is marked failed (kept, reprocessable) so that its partition moves on. Returns
    whether anything was applied or marked."""
    try:
        if raw_events_apply_batch(batch_size=1).applied:
            return True
    except TRANSIENT_DATABASE_ERRORS as again:
        exc = again
    error = f"{type(exc).__name__}: {exc}"[:4000]
    try:
        with transaction.atomic():
            head = _claim(1)
            if not head:
                return False
            raw = head[0]
            if raw.attempts + 1 < HEAD_TRIES:
                RawEvent.objects.filter(pk=raw.pk).update(
                    attempts=F("attempts") + 1, error=error)
                return False
            logger.warning("raw event %s failed on a database error %d times: %s",
                           raw.pk, HEAD_TRIES, error)
            _mark([], {raw.pk: error}, timezone.now())
        return True
    except TRANSIENT_DATABASE_ERRORS:
        return False  # the database itself is unwell: leave everything pending


def raw_events_apply(
    *,
    batch_size: int | None = None,
    max_seconds: float | None = None,
    idle_seconds: float = 0.0,
    on_batch: Callable[[ApplyCounts], object] | None = None,
) -> ApplyCounts:
    """Apply pending raw events, batch after batch, until none is left.

    `idle_seconds`: keep polling that long for new events after the last batch (a woken
    task covers the events that commit right after it). `max_seconds`: stop after that
    long (the caller hands over to a fresh run). Database errors are retried with a short
    backoff; what still fails stays pending (see the module docstring).
    """
    counts = ApplyCounts()
    started = last_work = time.monotonic()
    tries = 0
    while max_seconds is None or time.monotonic() - started < max_seconds:
        try:
            batch = raw_events_apply_batch(batch_size=batch_size)
            tries = 0
        except TRANSIENT_DATABASE_ERRORS as exc:
            tries += 1
            logger.warning("applier batch rolled back (try %d): %s", tries, exc)
            if tries < BATCH_TRIES:
                time.sleep(random.uniform(0.01, 0.05) * tries)
                continue
            tries = 0
            if _head_alone(exc):
                continue
            counts.deferred += RawEvent.objects.filter(status=RawEvent.Status.PENDING).count()
            counts.errors.append(f"{type(exc).__name__}: {exc}")
            break
        if batch.batches:
            counts.add(batch)
            last_work = time.monotonic()
            if on_batch:
                on_batch(batch)
            continue
        if time.monotonic() - last_work >= idle_seconds:
            break
        time.sleep(0.05)
    return counts


# --- waking the applier -------------------------------------------------------------------

# Per process: when the next wake may go out at once, and the latest trailing wake queued.
_next_wake: float = 0.0
_trailing: float = 0.0


def applier_wake() -> None:
    """Called after a webhook committed its raw events (see APPLIER_WAKE).

    "task": at most two tasks per APPLIER_WAKE_SECONDS from one process — one at once
    (leading edge) and one when the interval ends (trailing edge, with a countdown), so
    that every commit is followed by a task that starts after it, while a burst of
    webhooks does not queue a task each. A task that finds nothing pending ends at once.
    """
    global _next_wake, _trailing
    mode = auditor_settings.APPLIER_WAKE
    if mode == "inline":
        try:
            raw_events_apply()
        except Exception:  # noqa: BLE001 - stored is stored: the beat safety net applies it
            logger.exception("inline apply failed; the events stay pending")
        return
    if mode != "task":
        return
    now = time.monotonic()
    if now >= _next_wake:
        countdown = None
        _next_wake = now + auditor_settings.APPLIER_WAKE_SECONDS
    elif _trailing < _next_wake:
        countdown = _next_wake - now
        _trailing = _next_wake
    else:
        return  # the trailing wake already queued starts after this commit
    try:
        from celery import current_app

        current_app.send_task(TASK_NAME, retry=False, countdown=countdown,
                              queue=auditor_settings.APPLIER_QUEUE or None)
    except Exception:  # noqa: BLE001 - broker down: beat's safety net applies them later
        logger.warning("could not wake the applier; beat will apply pending events",
                       exc_info=True)


# --- entry points that apply now ------------------------------------------------------------


def raw_events_refresh(raws: Iterable[RawEvent]) -> None:
    """Read back status, error and attempts of raws (after the applier ran)."""
    listed = list(raws)
    fresh = {r.pk: r for r in RawEvent.objects.filter(pk__any=[r.pk for r in listed]).only(
        "status", "error", "attempts", "processed_at")}
    for raw in listed:
        if raw.pk in fresh:
            got = fresh[raw.pk]
            raw.status, raw.error = got.status, got.error
            raw.attempts, raw.processed_at = got.attempts, got.processed_at


def raw_events_store_and_apply(*, provider: str, specs: list[RawEventSpec],
                               received_at: datetime | None = None) -> StoreResult:
    """Store, then apply what is pending now in this process (seeders, scenarios, imports
    that want the rows before they go on)."""
    stored = raw_events_store(provider=provider, specs=specs, received_at=received_at)
    if not stored.all_duplicate:
        raw_events_apply()
        raw_events_refresh(stored.raw_events)
    return stored


def raw_event_ingest(
    *,
    provider: str,
    kind: str,
    dedupe_key: str,
    body: str,
    content_type: str = "",
    headers: dict[str, str] | None = None,
    url: str = "",
    received_at: datetime | None = None,
    partition_key: str = "",
) -> IngestResult:
    """Store one raw event and apply it now (see raw_events_store_and_apply). A second
    delivery with the same dedupe key changes nothing and reports `duplicate`; a payload
    that cannot be normalized is kept as a failed raw event."""
    stored = raw_events_store_and_apply(provider=provider, received_at=received_at, specs=[
        RawEventSpec(kind=kind, dedupe_key=dedupe_key, body=body, content_type=content_type,
                     headers=headers or {}, url=url, partition_key=partition_key)])
    return IngestResult(raw_event=stored.raw_events[0], duplicate=stored.duplicate[0])


def raw_events_reprocess(
    *, raw_events: Iterable[RawEvent], on_progress: Callable[[int], object] | None = None
) -> dict[str, int]:
    """Queue stored raw events to the applier again, and drain it (in arrival order).
    Idempotent: rows that exist are found, not duplicated. `on_progress(n)` after each
    batch with the number of raw events it applied."""
    ids: list[int] = []
    chunk: list[int] = []
    for raw in raw_events:
        chunk.append(raw.pk)
        if len(chunk) == 1000:
            RawEvent.objects.filter(pk__in=chunk).update(status=RawEvent.Status.PENDING)
            ids += chunk
            chunk = []
    if chunk:
        RawEvent.objects.filter(pk__in=chunk).update(status=RawEvent.Status.PENDING)
        ids += chunk
    raw_events_apply(on_batch=(lambda c: on_progress(c.applied)) if on_progress else None)
    counts = {str(RawEvent.Status.PROCESSED): 0, str(RawEvent.Status.FAILED): 0}
    for start in range(0, len(ids), 1000):
        for status in RawEvent.objects.filter(pk__in=ids[start:start + 1000]).values_list(
                "status", flat=True):
            counts[str(status)] = counts.get(str(status), 0) + 1
    return counts
