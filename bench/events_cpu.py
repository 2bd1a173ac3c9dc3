"""`make bench-events-cpu`: where one 100-event batch's CPU goes, phase by phase, in one
process (no HTTP server, no concurrency), against PostgreSQL.

bench-events gives the end-to-end figure; this says what it is made of. Same generated
batches as bench-events (bench/events.py), a database of its own (BENCH_EVENTS_CPU_DB,
default handoff_auditor_bench_events_cpu, dropped and re-created). For BENCH_BATCHES batches
(default 300, after 20 warm-up) it times, with the process's CPU clock:

  verify     standardwebhooks signature check (channels.events.StandardWebhooksValidator)
  check      JSON parse + schema and time checks of every event (batch_checked, uncached)
  normalize  events -> normalized events (EventsWebhookView.normalize)
  apply      raw_event_ingest: store the batch as one raw event (the webhook stores one
             per event; the applier takes both) and apply it at once through the applier
             (conversations.applier), Python side only
  request    the whole POST through Django's handler (test client, no socket): since the
             webhook only stores, this is verify + check + one raw event per event of the
             batch in one INSERT (APPLIER_WAKE=none: nothing is applied in the request)

and, for apply, the wall time (Python + waiting on PostgreSQL) and the CPU time of the
PostgreSQL backend serving this process (read from /proc/<pid>/stat: the server runs on
this machine), per batch over the apply phase (it includes the raw event's INSERT, the
transaction's commit and the after-commit look-up).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import events as bench_events  # noqa: E402 - bench/ on sys.path
import ingest as bench  # noqa: E402

DB_NAME = os.environ.get("BENCH_EVENTS_CPU_DB", "handoff_auditor_bench_events_cpu")
BATCHES = int(os.environ.get("BENCH_BATCHES", "300"))
WARM_UP = 20


def main() -> int:
    bench.database_recreate(DB_NAME)
    os.environ["DATABASE_URL"] = f"{bench.PG}/{DB_NAME}"
    os.environ["HANDOFF_AUDITOR_EVENTS_SECRETS"] = bench_events.SECRET
    # The webhook only stores; nothing wakes an applier in this process.
    os.environ["HANDOFF_AUDITOR_APPLIER_WAKE"] = "none"
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    # The scoring the applier publishes goes to the benches' Redis db, to a queue no one reads.
    os.environ["CELERY_BROKER_URL"] = bench.BROKER_URL
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client, RequestFactory

    from channels import events as ev
    from conversations.applier import raw_event_ingest
    from tests.support.signing import events_headers

    call_command("migrate", verbosity=0)
    rng = random.Random(20241122)
    people = bench_events.customers(rng)
    at = datetime.now(tz=UTC) - timedelta(days=1)
    run = f"{rng.getrandbits(32):08x}"
    bodies: list[tuple[str, dict[str, str]]] = []
    for req in range(2 * (BATCHES + WARM_UP)):
        events, _ = bench_events.batch(req, rng, people, at)
        at += timedelta(seconds=30)
        body = json.dumps(events, ensure_ascii=False, separators=(",", ":"))
        bodies.append((body, events_headers(body.encode(), bench_events.SECRET,
                                            msg_id=f"msg_cpu{run}{req:07d}")))
    factory, client, validator = RequestFactory(), Client(), ev.StandardWebhooksValidator()
    view = ev.EventsWebhookView

    from django.db import connection

    def backend_cpu_ms() -> float:
        """utime + stime of our PostgreSQL backend, in ms."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")

    def cpu(fn: Callable[[], object]) -> float:
        start = time.process_time()
        fn()
        return (time.process_time() - start) * 1000

    phases: dict[str, list[float]] = {k: [] for k in (
        "verify", "check", "normalize", "apply", "request")}
    apply_wall: list[float] = []
    half = BATCHES + WARM_UP
    backend_start = 0.0
    for i, (body, headers) in enumerate(bodies[:half]):
        if i == WARM_UP:
            backend_start = backend_cpu_ms()
        request = factory.post("/hooks/events/", body.encode(), content_type="application/json",
                               headers=headers)
        verify = cpu(lambda request=request: validator.validate_request(request))
        ev.batch_checked.cache_clear()
        check = cpu(lambda body=body: ev.batch_checked(body))
        wall = time.perf_counter()
        holder: dict[str, object] = {}
        apply = cpu(lambda body=body, headers=headers, holder=holder: holder.update(
            result=raw_event_ingest(provider="events", kind="events",
                                    dedupe_key=f"webhook:{headers['webhook-id']}", body=body,
                                    content_type="application/json")))
        wall = (time.perf_counter() - wall) * 1000
        raw = holder["result"].raw_event  # type: ignore[attr-defined]
        assert raw.status == "processed", raw.error
        normalize = cpu(lambda raw=raw: view.normalize(raw))
        if i >= WARM_UP:
            for name, value in (("verify", verify), ("check", check),
                                ("normalize", normalize), ("apply", apply - normalize)):
                phases[name].append(value)
            apply_wall.append(wall)
    backend = (backend_cpu_ms() - backend_start) / BATCHES
    for i, (body, headers) in enumerate(bodies[half:]):
        # Signed again now: a slow first half must not age these past the 5-minute tolerance.
        headers = events_headers(body.encode(), bench_events.SECRET, msg_id=headers["webhook-id"])
        ev.batch_checked.cache_clear()
        spent = cpu(lambda body=body, headers=headers: client.post(
            "/hooks/events/", body.encode(), content_type="application/json", headers=headers))
        if i >= WARM_UP:
            phases["request"].append(spent)

    print(f"== bench-events-cpu: {BATCHES} batches of {bench_events.BATCH} events, "
          f"one process, PostgreSQL ({DB_NAME}) ==")
    print("CPU ms per batch (median / p90):")
    for name, values in phases.items():
        values.sort()
        print(f"  {name:<10} {statistics.median(values):7.2f} / "
              f"{values[int(len(values) * 0.9)]:7.2f}")
    parts = sum(statistics.median(phases[k]) for k in ("verify", "check"))
    print(f"  request - (verify + check) = Django, HTTP parsing, storing the raw events, "
          f"response: {statistics.median(phases['request']) - parts:.2f}")
    apply_wall.sort()
    print(f"apply wall ms per batch (Python + waiting on PostgreSQL): median "
          f"{statistics.median(apply_wall):.2f}, p90 {apply_wall[int(len(apply_wall) * 0.9)]:.2f}")
    print(f"PostgreSQL backend CPU ms per batch during apply (mean, clock ticks of "
          f"{1000 / os.sysconf('SC_CLK_TCK'):.0f} ms): {backend:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
