"""`make bench-qa`: filling a QA queue and "take next" under concurrency.

1. (Re)create the database `ha_bench_qa`, migrate, bulk-insert `--conversations`
   conversations over four channels (2% with a pii_leak flag).
2. Fill a queue (10% of each channel, every pii_leak flag, 30% double) and time it:
   conversations examined per second and items added.
3. `--threads` reviewers (one connection each) take and finish `--takes` items each at once:
   p50/p95 of one `slot_take_next` (its SELECT … FOR UPDATE SKIP LOCKED and the claim).
   The floor, in the same run and threads: one primary-key read of a slot.
4. Check: no slot was given twice, no reviewer holds two slots of one item.

Exit 0 whether or not the figures please (they are a report); non-zero when the run broke.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta

import ingest as bench  # bench/ is sys.path[0] when run as a script
from ingest import RunBroken
from sweep import django_setup

DB_NAME = "ha_bench_qa"
DATABASE_URL = f"{bench.PG}/{DB_NAME}"
CHANNELS = ("whatsapp", "sms", "email", "web")


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def seed(n: int) -> None:
    from tqdm import tqdm

    from conversations.models import Conversation, Flag

    start = datetime(2026, 10, 1, tzinfo=UTC)
    batch = 5000
    with tqdm(total=n, unit="conv", file=sys.stderr) as bar:
        for first in range(0, n, batch):
            rows = [Conversation(channel=CHANNELS[i % 4], business_address="+14155550100",
                                 customer_address=f"+1555{i:08d}", status="closed",
                                 started_at=start + timedelta(seconds=i),
                                 last_activity_at=start + timedelta(seconds=i))
                    for i in range(first, min(n, first + batch))]
            made = Conversation.objects.bulk_create(rows)
            Flag.objects.bulk_create([
                Flag(conversation=c, kind="pii_leak", severity="high", raised_at=c.started_at,
                     subject_type="conversation", subject_id=c.pk, evidence={})
                for c in made if c.pk % 50 == 0])
            bar.update(len(rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--takes", type=int, default=200)
    args = parser.parse_args()

    bench.database_recreate(DB_NAME)
    env = bench.server_env(tempfile.mkdtemp(prefix="bench-qa-"), DATABASE_URL)
    bench.migrate(env)
    django_setup(env)
    from django.contrib.auth.models import User
    from django.db import connection

    from audit.qa_models import QueueSlot, ReviewQueue
    from audit.qa_queues import queue_fill, slot_take_next
    from scoring.qa import scorecard_default_ensure

    seed(args.conversations)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    version = scorecard_default_ensure()
    queue = ReviewQueue.objects.create(
        name="bench", scorecard=version.scorecard, channel_percent={c: 10 for c in CHANNELS},
        flag_kinds=["pii_leak"], double_percent=30)
    t0 = time.perf_counter()
    added = queue_fill(queue=queue)
    fill_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = queue_fill(queue=queue)
    refill_s = time.perf_counter() - t0
    if again:
        raise RunBroken(f"a second fill added {again} items")

    people = [User.objects.create_user(f"r{i}") for i in range(args.threads)]
    take_ms: list[float] = []
    floor_ms: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(people))
    any_slot = QueueSlot.objects.values_list("pk", flat=True).first()

    def reviewer(user: User) -> None:
        mine, base = [], []
        try:
            barrier.wait()
            for _ in range(args.takes):
                t = time.perf_counter()
                QueueSlot.objects.filter(pk=any_slot).first()
                base.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                slot = slot_take_next(queue=queue, reviewer=user)
                mine.append((time.perf_counter() - t) * 1000)
                if slot is None:
                    break
                QueueSlot.objects.filter(pk=slot.pk).update(done_at=datetime.now(UTC))
        except BaseException as exc:  # reported after the threads end
            errors.append(exc)
        finally:
            with lock:
                take_ms.extend(mine)
                floor_ms.extend(base)
            connection.close()

    threads = [threading.Thread(target=reviewer, args=(u,)) for u in people]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RunBroken(f"a reviewer thread failed: {errors[0]!r}")
    taken = QueueSlot.objects.filter(queue=queue, reviewer__isnull=False)
    if taken.count() != len(take_ms):
        raise RunBroken(f"{len(take_ms)} takes but {taken.count()} slots taken")
    from django.db.models import Count

    if taken.values("item", "reviewer").annotate(n=Count("id")).filter(n__gt=1).exists():
        raise RunBroken("a reviewer holds two slots of one item")

    p50, p95 = percentile(take_ms, 50), percentile(take_ms, 95)
    f50, f95 = percentile(floor_ms, 50), percentile(floor_ms, 95)
    print(f"""
== bench-qa: {args.conversations:,} conversations, PostgreSQL, {args.threads} reviewers at once ==
fill      {args.conversations / fill_s:10,.0f} conversations/s examined   {added:,} items \
added in {fill_s:.2f} s (refill, nothing to add: {refill_s:.2f} s)
take next p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   {len(take_ms) / wall:,.0f} takes/s over \
{len(take_ms):,} takes (each with its done UPDATE and a floor read)
floor     p50 {f50:6.2f} ms   p95 {f95:6.2f} ms   (one slot read by primary key, same threads)
ratio     take next p50 / floor p50: {p50 / f50:.1f}x   (mean {statistics.mean(take_ms):.2f} ms)
checks    no slot given twice, no reviewer with both slots of an item: PASS""")
    return 0


if __name__ == "__main__":
    bench.cli(main, "bench-qa")
