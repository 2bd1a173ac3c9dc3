"""`make bench-alerts`: one evaluation pass of 200 rules, and delivery throughput.

1. (Re)create the database `ha_bench_alerts`, migrate, bulk-insert `--conversations`
   conversations spread over the last 8 weeks on four channels, 20% with a handoff (10% of
   those dropped, with a handoff_dropped flag).
2. `--rules` rules: 40% metric, 25% anomaly, 25% flag, 10% release. Time `alerts_evaluate`
   (`--repeats` passes, each after `--new-flags` new dropped-handoff flags, so the flag rules
   have their steady-state work): p50/p95 and rules per second. The floor, in the same run: as many
   primary-key reads as there are rules (the least a pass could cost).
3. `--deliveries` deliveries to a local HTTP receiver from `--threads` threads (each a
   `delivery_attempt`: claim, send, record): deliveries/s. The floor: bare POSTs of the same
   body to the same receiver from the same threads.

Exit 0 whether or not the figures please (they are a report); non-zero when the run broke.
Target (issue 14): 200 rules over 1,000,000 conversations in < 1 s; >= 200 deliveries/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import ingest as bench  # bench/ is sys.path[0] when run as a script
from ingest import RunBroken
from sweep import django_setup

DB_NAME = "ha_bench_alerts"
DATABASE_URL = f"{bench.PG}/{DB_NAME}"
CHANNELS = ("whatsapp", "sms", "email", "web")


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def seed(n: int) -> None:
    from django.utils import timezone
    from tqdm import tqdm

    from conversations.models import Conversation, Flag
    from handoffs.models import Handoff

    now = timezone.now()
    span = 8 * 7 * 86400
    batch = 5000
    with tqdm(total=n, unit="conv", file=sys.stderr) as bar:
        for first in range(0, n, batch):
            rows = []
            for i in range(first, min(n, first + batch)):
                at = now - timedelta(seconds=span * (i / max(n, 1)))
                rows.append(Conversation(
                    channel=CHANNELS[i % 4], business_address="+14155550100",
                    customer_address=f"+1555{i:08d}", status="closed", started_at=at,
                    last_activity_at=at))
            made = Conversation.objects.bulk_create(rows)
            handoffs = [Handoff(conversation=c, number=1, channel=c.channel,
                                state="abandoned" if c.pk % 50 == 0 else "engaged",
                                state_entered_at=c.started_at, requested_at=c.started_at,
                                engaged_at=None if c.pk % 50 == 0 else c.started_at,
                                time_to_human=None if c.pk % 50 == 0 else 60.0 + c.pk % 900,
                                dropped_at=c.started_at if c.pk % 50 == 0 else None)
                        for c in made if c.pk % 5 == 0]
            Handoff.objects.bulk_create(handoffs)
            Flag.objects.bulk_create([
                Flag(conversation_id=h.conversation_id, kind="handoff_dropped",
                     severity="high", raised_at=h.requested_at, subject_type="handoff",
                     subject_id=h.pk, evidence={}) for h in handoffs if h.dropped_at])
            bar.update(len(rows))


def new_flags(n: int) -> None:
    """n dropped handoffs flagged just now, as the applier would between two passes."""
    from django.utils import timezone

    from conversations.models import Conversation, Flag
    from handoffs.models import Handoff

    now = timezone.now()
    made = Conversation.objects.bulk_create(
        Conversation(channel=CHANNELS[i % 4], business_address="+14155550199",
                     customer_address=f"+1777{time.time_ns() % 10**8:08d}{i}",
                     status="closed", started_at=now, last_activity_at=now)
        for i in range(n))
    handoffs = Handoff.objects.bulk_create(
        Handoff(conversation=c, number=1, channel=c.channel, state="abandoned",
                state_entered_at=now, requested_at=now, dropped_at=now) for c in made)
    Flag.objects.bulk_create(
        Flag(conversation_id=h.conversation_id, kind="handoff_dropped", severity="high",
             raised_at=now, subject_type="handoff", subject_id=h.pk, evidence={})
        for h in handoffs)


def make_rules(count: int) -> None:
    from alerts.rules import rule_save

    metrics = [("dropped_rate", 5.0, "above"), ("sla_met", 90.0, "below"),
               ("handoff_rate", 30.0, "above"), ("time_to_human_p90", 10.0, "above"),
               ("handoffs", 100.0, "above"), ("csat", 3.5, "below")]
    for i in range(count):
        share = i / count
        if share < 0.4:
            metric, threshold, comparison = metrics[i % len(metrics)]
            data = {"kind": "metric", "metric": metric, "threshold": threshold,
                    "comparison": comparison, "group_by": "channel",
                    "window_minutes": (30, 60, 240)[i % 3]}
        elif share < 0.65:
            data = {"kind": "anomaly", "metric": ("handoffs", "dropped_rate")[i % 2],
                    "window_minutes": 60, "min_sample": 5}
        elif share < 0.9:
            data = {"kind": "flag", "flag_kinds": ["handoff_dropped"],
                    "group_by": ("channel", "", "queue")[i % 3]}
        else:
            data = {"kind": "release", "metric": "handoff_rate", "group_by": "prompt_version",
                    "window_minutes": 7 * 1440}
        rule_save(data={"name": f"bench rule {i}", **data}, by="bench")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def threaded(threads: int, items: list, work) -> float:
    from django.db import connection

    chunks = [items[i::threads] for i in range(threads)]
    errors: list[BaseException] = []

    def run(chunk):
        try:
            for item in chunk:
                work(item)
        except BaseException as exc:  # reported after the threads end
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise RunBroken(f"a thread failed: {errors[0]!r}")
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-flags", type=int, default=20)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    bench.database_recreate(DB_NAME)
    env = bench.server_env(tempfile.mkdtemp(prefix="bench-alerts-"), DATABASE_URL)
    bench.migrate(env)
    django_setup(env)
    import requests
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from alerts.delivery import delivery_attempt
    from alerts.models import Delivery, Destination, FlagWatermark, Rule
    from alerts.services import alerts_evaluate
    from conversations.models import Conversation, Flag

    seed(args.conversations)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    make_rules(args.rules)
    # As after install: the scan starts at the newest flag; each pass then finds
    # --new-flags flags raised since the last one (beat's steady state).
    top = Flag.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    FlagWatermark.objects.update_or_create(pk=1, defaults={"last_id": top, "gaps": {}})
    print("evaluating...", file=sys.stderr)
    t0 = time.perf_counter()
    alerts_evaluate()
    first_s = time.perf_counter() - t0
    passes, floors = [], []
    some = list(Conversation.objects.values_list("pk", flat=True)[:args.rules])
    for _ in range(args.repeats):
        new_flags(args.new_flags)
        t0 = time.perf_counter()
        alerts_evaluate()
        passes.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for pk in some:
            Conversation.objects.filter(pk=pk).first()
        floors.append(time.perf_counter() - t0)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "ALERTS_ALLOW_HTTP": True,
                                "ALERTS_ALLOW_PRIVATE_ADDRESSES": True}
    hook = Destination.objects.create(name="bench", kind="webhook", target=url,
                                      secret="whsec_" + "A" * 32)
    now = timezone.now()
    payload = {"schema_version": 1, "type": "alert.test", "timestamp": now.isoformat(),
               "summary": "bench " * 40}
    made = Delivery.objects.bulk_create(
        Delivery(key=f"bench-{i}", destination=hook, event="test", payload=payload,
                 next_attempt_at=now, created_at=now) for i in range(args.deliveries))
    deliver_s = threaded(args.threads, [d.pk for d in made],
                         lambda pk: delivery_attempt(delivery_id=pk))
    sent = Delivery.objects.filter(status="sent").count()
    if sent != args.deliveries:
        errors = set(Delivery.objects.exclude(status="sent").values_list(
            "status", "attempts", "last_error", "claimed_until")[:5])
        raise RunBroken(f"{sent} of {args.deliveries} deliveries sent: {errors}")
    body = b"x" * 600
    floor_s = threaded(args.threads, list(range(args.deliveries)),
                       lambda _: requests.post(url, data=body, timeout=5))
    server.shutdown()

    rules = Rule.objects.count()
    p50, p95 = percentile(passes, 50), percentile(passes, 95)
    floor = percentile(floors, 50)
    print(f"\nalerts bench: {args.conversations:,} conversations, {rules} rules")
    print(f"evaluation pass: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
          f"({rules / p50:.0f} rules/s; {args.new_flags} new flags each); "
          f"first pass {first_s:.2f} s; "
          f"floor ({rules} pk reads) {floor * 1000:.0f} ms; ratio {p50 / floor:.1f}x; "
          f"target < 1 s: {'met' if p50 < 1 else 'missed'}")
    print(f"delivery: {args.deliveries / deliver_s:.0f} deliveries/s over {args.threads} "
          f"threads; floor (bare POSTs) {args.deliveries / floor_s:.0f}/s; ratio "
          f"{floor_s / deliver_s:.2f}; target >= 200/s: "
          f"{'met' if args.deliveries / deliver_s >= 200 else 'missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
