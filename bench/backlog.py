"""`make bench-backlog`: the applier's memory while it drains a large backlog (issue 12:
"batch size capped; RSS stays flat while draining a 1M backlog").

Stores BENCH_BACKLOG_EVENTS (1,000,000) events through the signed events webhook with
APPLIER_WAKE=none (batches of 100 over BENCH_EVENTS_CUSTOMERS customers, the same stream
as bench-events, generated and posted a chunk at a time so the client stays small), then
one `manage.py apply_events` drains them all. The applier's resident set (VmRSS) is
sampled every 0.25 s; printed at each tenth of the drain, with the growth from the first
tenth to the end. Its own database (BENCH_EVENTS_DB, default
handoff_auditor_bench_backlog), dropped and re-created. See bench/README.md.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("BENCH_EVENTS_DB", "handoff_auditor_bench_backlog")
os.environ.setdefault("BENCH_DRAIN_SECONDS", "7200")

import events  # noqa: E402  (bench/ is sys.path[0] when run as a script)
import ingest as bench  # noqa: E402
from ingest import RunBroken  # noqa: E402

EVENTS = int(os.environ.get("BENCH_BACKLOG_EVENTS", "1000000"))
CHUNK = 50_000  # events generated, then posted, at a time
TARGET_GROWTH = 1.10  # "flat": the end within 10% of the first tenth's resident set


def rss_at_tenths(samples: tuple[tuple[int, float], ...], total: int) -> list[tuple[int, float]]:
    """The resident set when 10%, 20%, ... 100% of the backlog had been applied."""
    out = []
    for tenth in range(1, 11):
        want = total * tenth // 10
        hit = next((s for s in samples if s[0] >= want), samples[-1])
        out.append((tenth * 10, hit[1]))
    return out


def main() -> int:
    print(f"machine: {bench.machine_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-backlog-") as tmp:
        env = bench.server_env(tmp, events.DATABASE_URL)
        env["HANDOFF_AUDITOR_EVENTS_SECRETS"] = events.SECRET
        print(f"database {events.DB_NAME}: drop, create, migrate", flush=True)
        bench.database_recreate(events.DB_NAME)
        bench.migrate(env)
        gen = events.Generator()
        port = bench.free_port()
        server = bench.gunicorn_start(env, port)
        posted_events, seconds, problems = 0, 0.0, []
        try:
            bench.gunicorn_wait(server, port)
            start_id = bench.last_raw_id(events.DATABASE_URL)
            for first in range(0, EVENTS, CHUNK):
                size = min(CHUNK, EVENTS - first)
                posted = events.post_all(port, gen.batches(size, events.BATCH, "chunk"),
                                         f"storing {first + size:,} of {EVENTS:,}")
                problems += [f"non-2xx: {n}" for n in posted.non2xx[:3]]
                posted_events += posted.events
                seconds += posted.seconds
        finally:
            bench.gunicorn_stop(server)
        print(f"stored {posted_events:,} events in {seconds:.0f} s "
              f"({posted_events / seconds:,.0f} events/s)   [{bench.machine_load()}]", flush=True)
        drained = bench.drain(env, 1, "draining, 1 applier", db_name=events.DB_NAME,
                              database_url=events.DATABASE_URL)
        counts = events.stored_counts(start_id)
        problems += events.stored_check("backlog", counts, posted_events, None)
        if not drained.rss:
            raise RunBroken("no resident-set samples: the applier exited at once?")
        tenths = rss_at_tenths(drained.rss, drained.events)
        peak = max(r for _, r in drained.rss)
        growth = tenths[-1][1] / tenths[0][1]
        print(f"""
== bench-backlog: one applier draining {drained.events:,} raw events \
(APPLIER_BATCH_SIZE batches), PostgreSQL ({events.DB_NAME}) ==
drain: {drained.line()}   [{drained.load}]
applier resident set (MiB) by share of the backlog applied:""")
        print("  " + "  ".join(f"{pct}%: {rss:,.0f}" for pct, rss in tenths))
        print(f"  peak {peak:,.0f} MiB; end / first tenth: {growth:.2f}x")
        print(f"  Message {counts['messages']:,} (= message.created {counts['created_events']:,}),"
              f" status reports {counts['status_rows']:,}, failed {counts['failed']}")
        if counts["status_unjoined"]:
            problems.append(f"{counts['status_unjoined']} status reports not joined to their "
                            "recorded message")
        print(f"\ntargets\n  resident set flat (end <= {TARGET_GROWTH:.2f}x the first tenth): "
              f"{growth:.2f}x   {bench.verdict(growth <= TARGET_GROWTH)}")
        if problems:
            raise RunBroken("\n".join(problems))
        print("run OK: every batch answered 2xx, each event stored once and applied once")
    return 0


if __name__ == "__main__":
    bench.cli(main, "bench-backlog")
