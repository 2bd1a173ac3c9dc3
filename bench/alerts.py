"""`make bench-alerts`: one evaluation pass of 200 rules, and delivery throughput.

1. (Re)create the database `ha_bench_alerts` (BENCH_ALERTS_DB; `--reuse` keeps one already
   seeded: bench/alerts_seed.py), migrate, bulk-insert `--conversations`
   conversations spread over the last 8 weeks on four channels, 20% with a handoff (10% of
   those dropped, with a handoff_dropped flag).
2. `--rules` rules: 40% metric, 25% anomaly, 25% flag, 10% release. Time `alerts_evaluate`
   (`--repeats` passes, each after `--new-flags` new dropped-handoff flags, so the flag rules
   have their steady-state work): p50/p95 and rules per second. The floor, in the same run: as many
   primary-key reads as there are rules (the least a pass could cost). Then `--repeats`
   passes with no new flag, and the SQL statements of one pass.
3. `--deliveries` deliveries to a local HTTP receiver from `--threads` threads (each a
   `delivery_attempt`: claim, send, record, as the Celery task does): deliveries/s; then as
   many through the beat sweep's batched sender (`deliveries_sweep`, one process). The
   floor: bare POSTs of the same body to the same receiver from the same threads.
The outage case (receiver down, then back) is bench/alerts_outage.py.

Exit 0 whether or not the figures please (they are a report); non-zero when the run broke.
Target (issue 14): 200 rules over 1,000,000 conversations in < 1 s; >= 200 deliveries/s.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from alerts_seed import (
    Receiver,
    RunBroken,
    database_prepare,
    make_rules,
    new_flags,
    percentile,
    threaded,
    watermark_at_newest,
)
from ingest import machine_load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-flags", type=int, default=20)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--reuse", action="store_true",
                        help="keep an already seeded bench database (BENCH_ALERTS_REUSE=1)")
    args = parser.parse_args()

    database_prepare(args.conversations, reuse=args.reuse)
    import requests
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from alerts.delivery import deliveries_sweep, delivery_attempt
    from alerts.models import Delivery, Destination, Rule
    from alerts.services import alerts_evaluate
    from conversations.models import Conversation

    make_rules(args.rules)
    # As after install: the scan starts at the newest flag; each pass then finds
    # --new-flags flags raised since the last one (beat's steady state).
    watermark_at_newest()
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
    quiet = []  # passes with no new flag
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        alerts_evaluate()
        quiet.append(time.perf_counter() - t0)
    new_flags(args.new_flags)
    with CaptureQueriesContext(connection) as queries:
        alerts_evaluate()
    statements = len(queries.captured_queries)

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
    # The beat sweep's batched sender (claimed in batches, one thread per destination,
    # a kept-alive connection), one process.
    made = Delivery.objects.bulk_create(
        Delivery(key=f"bench-sweep-{i}", destination=hook, event="test", payload=payload,
                 next_attempt_at=now, created_at=now) for i in range(args.deliveries))
    t0 = time.perf_counter()
    while deliveries_sweep():
        pass
    sweep_s = time.perf_counter() - t0
    sent = Delivery.objects.filter(status="sent").count()
    if sent != 2 * args.deliveries:
        raise RunBroken(f"the sweep sent {sent - args.deliveries} of {args.deliveries}")
    body = b"x" * 600
    floor_s = threaded(args.threads, list(range(args.deliveries)),
                       lambda _: requests.post(url, data=body, timeout=5))
    server.shutdown()

    rules = Rule.objects.count()
    p50, p95 = percentile(passes, 50), percentile(passes, 95)
    floor = percentile(floors, 50)
    print(f"\nalerts bench: {args.conversations:,} conversations, {rules} rules; "
          f"{machine_load()}")
    print(f"evaluation pass: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
          f"({rules / p50:.0f} rules/s; {args.new_flags} new flags each); "
          f"first pass {first_s:.2f} s; "
          f"floor ({rules} pk reads) {floor * 1000:.0f} ms; ratio {p50 / floor:.1f}x; "
          f"target < 1 s: {'met' if p50 < 1 else 'missed'}")
    print(f"evaluation pass without new flags: p50 {percentile(quiet, 50) * 1000:.0f} ms, "
          f"p95 {percentile(quiet, 95) * 1000:.0f} ms; one pass after {args.new_flags} new "
          f"flags: {statements} SQL statements")
    print(f"delivery: {args.deliveries / deliver_s:.0f} deliveries/s over {args.threads} "
          f"threads; floor (bare POSTs) {args.deliveries / floor_s:.0f}/s; ratio "
          f"{floor_s / deliver_s:.2f}; target >= 200/s: "
          f"{'met' if args.deliveries / deliver_s >= 200 else 'missed'}")
    print(f"delivery, batched sweep (one process): {args.deliveries / sweep_s:.0f} "
          f"deliveries/s; ratio to the floor {floor_s / sweep_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
