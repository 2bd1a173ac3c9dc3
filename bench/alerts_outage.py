"""`make bench-alerts-outage`: the receiver is down for a while, then back; is every alert
delivered, once, and how soon after it returns? (issue 14: "with the receiver down for 5
minutes, every alert is delivered once after it returns").

1. The seeded bench database (bench/alerts_seed.py; `--reuse` keeps one already seeded,
   BENCH_ALERTS_DB names it), one flag rule (one alert per conversation) sending to a
   signed webhook on 127.0.0.1, default backoff settings (10 s doubling, 8 attempts).
2. For BENCH_ALERTS_OUTAGE_S seconds (default 300; `--outage-s`) the receiver is down:
   the first half nothing listens (connections refused), the second half it answers 503.
   Meanwhile dropped-handoff flags are raised at a steady rate (`--alerts` in all) and
   the flag pass runs every 15 s, as beat runs it; the outbox sweep
   (`alerts.tasks.send_due_deliveries`'s service) runs every `--sweep-every` seconds (15,
   as beat). Nothing else sends (no Celery worker: the sweep is the path retries take).
3. Then the receiver answers 200 and records each webhook-id with the time it arrived.
   The run waits until every delivery is sent or dead (or `--give-up-s`).
4. Floor in the same run: as many fresh deliveries to the receiver while it is up,
   drained by back-to-back sweeps (deliveries/s of the batched sender).

Prints: alerts fired, deliveries, keys received once / twice or more / never, dead
letters, attempts per delivery, and the delay after the receiver's return (p50, p95,
last). Exit 0 whether or not the figures please; non-zero when the run broke.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from alerts_seed import RunBroken, database_prepare, new_flags, percentile, watermark_at_newest
from ingest import machine_load

QUEUE = "bench-alerts-outage-unconsumed"  # after-commit task messages nobody consumes


class Receiver:
    """Down (nothing listening), 503, or up (200), on one port."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float]] = []  # (webhook-id, monotonic time) on 200
        self.answered: Counter[int] = Counter()
        self.status = 503
        self.server: ThreadingHTTPServer | None = None
        with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
            self.port = probe.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def listen(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.status
                receiver.answered[status] += 1
                if status == 200:
                    receiver.received.append((self.headers.get("webhook-id", ""),
                                              time.monotonic()))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--outage-s", type=float,
                        default=float(os.environ.get("BENCH_ALERTS_OUTAGE_S", "300")))
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--sweep-every", type=float, default=15.0)
    parser.add_argument("--give-up-s", type=float, default=1800.0)
    args = parser.parse_args()

    database_prepare(args.conversations, reuse=args.reuse)
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from alerts.delivery import deliveries_sweep
    from alerts.models import Delivery, Destination
    from alerts.rules import rule_save
    from alerts.services import alerts_evaluate_flags

    receiver = Receiver()
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "ALERTS_ALLOW_HTTP": True,
                                "ALERTS_ALLOW_PRIVATE_ADDRESSES": True, "ALERTS_QUEUE": QUEUE}
    hook = Destination.objects.create(name="bench outage", kind="webhook", target=receiver.url,
                                      secret="whsec_" + "A" * 32)
    rule_save(data={"name": "bench outage: dropped handoffs", "kind": "flag",
                    "flag_kinds": ["handoff_dropped"], "group_by": "conversation"},
              by="bench", destinations=[hook])
    watermark_at_newest()

    stop = threading.Event()
    errors: list[BaseException] = []

    def every(seconds: float, work) -> threading.Thread:
        def run():
            try:
                while not stop.is_set():
                    work()
                    stop.wait(seconds)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)
                stop.set()
            finally:
                connection.close()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    sweeps = [every(args.sweep_every, deliveries_sweep)]
    print(f"receiver down for {args.outage_s:.0f} s ({args.alerts} alerts meanwhile)...",
          file=sys.stderr)
    t0 = time.monotonic()
    per_tick = max(1, round(args.alerts / max(args.outage_s / 15.0, 1)))
    fired = 0
    half = False
    while time.monotonic() - t0 < args.outage_s and not errors:
        if not half and time.monotonic() - t0 >= args.outage_s / 2:
            receiver.listen()  # now it answers 503
            half = True
        n = min(per_tick, args.alerts - fired)
        if n:
            new_flags(n)
            fired += n
        alerts_evaluate_flags()
        time.sleep(max(0.0, min(15.0, args.outage_s - (time.monotonic() - t0))))
    if not half:
        receiver.listen()
    if errors:
        raise RunBroken(f"a sweep failed: {errors[0]!r}")
    alerts_evaluate_flags()
    deliveries = Delivery.objects.filter(destination=hook).count()
    during = dict(receiver.answered)
    receiver.status = 200
    back = time.monotonic()
    print("receiver back...", file=sys.stderr)
    while time.monotonic() - back < args.give_up_s and not errors:
        if not Delivery.objects.filter(destination=hook, status="pending").exists():
            break
        time.sleep(0.5)
    settled = time.monotonic() - back
    stop.set()
    for thread in sweeps:
        thread.join(timeout=60)
    if errors:
        raise RunBroken(f"a sweep failed: {errors[0]!r}")

    keys = set(Delivery.objects.filter(destination=hook).values_list("key", flat=True))
    counts = Counter(k for k, _ in receiver.received)
    once = sum(1 for k in keys if counts[k] == 1)
    twice = sum(1 for k in keys if counts[k] > 1)
    never = sum(1 for k in keys if counts[k] == 0)
    strangers = sum(1 for k in counts if k not in keys)
    dead = Delivery.objects.filter(destination=hook, status="dead").count()
    attempts = list(Delivery.objects.filter(destination=hook).values_list("attempts", flat=True))
    delays = [at - back for _, at in receiver.received]

    # Floor: as many fresh deliveries while the receiver is up, back-to-back sweeps.
    now = timezone.now()
    payload = {"schema_version": 1, "type": "alert.test", "timestamp": now.isoformat(),
               "summary": "bench " * 40}
    Delivery.objects.bulk_create(
        Delivery(key=f"bench-floor-{i}", destination=hook, event="test", payload=payload,
                 next_attempt_at=now, created_at=now) for i in range(deliveries))
    t1 = time.perf_counter()
    while deliveries_sweep():
        pass
    floor_s = time.perf_counter() - t1
    receiver.close()
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(QUEUE)

    print(f"\nalerts outage bench: receiver down {args.outage_s:.0f} s (refused, then 503), "
          f"sweep every {args.sweep_every:.0f} s; {machine_load()}")
    print(f"alerts fired during the outage: {fired}; deliveries: {deliveries}; answered "
          f"while down: {during}")
    print(f"after the return: received once {once}, twice or more {twice}, never {never}, "
          f"unknown keys {strangers}; dead letters {dead}; attempts per delivery mean "
          f"{sum(attempts) / max(len(attempts), 1):.1f}, max {max(attempts, default=0)}")
    print(f"delay after the return: p50 {percentile(delays, 50):.1f} s, p95 "
          f"{percentile(delays, 95):.1f} s, last {max(delays, default=float('nan')):.1f} s; "
          f"all settled after {settled:.1f} s")
    print(f"floor: {deliveries} fresh deliveries to the receiver up in {floor_s:.2f} s "
          f"({deliveries / floor_s:.0f}/s, batched sweeps); ratio settled / floor "
          f"{settled / floor_s:.1f}x")
    verdict = "met" if once == len(keys) and not strangers else "missed"
    print(f"target: every alert delivered once after the return: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
