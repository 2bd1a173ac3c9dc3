"""What bench/alerts.py and bench/alerts_outage.py share: the seeded database (1M
conversations over 8 weeks; kept and reused with --reuse), the rules, new flags between
passes, a local receiver and a thread pool.

The database is `ha_bench_alerts` unless BENCH_ALERTS_DB names another. `--reuse` (or
BENCH_ALERTS_REUSE=1) keeps a database already seeded with at least --conversations
conversations: it only migrates it and empties the alerts tables, so a re-run takes
seconds instead of the minutes of seeding."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import ingest as bench  # bench/ is sys.path[0] when run as a script
import psycopg
from ingest import RunBroken
from sweep import django_setup

DB_NAME = os.environ.get("BENCH_ALERTS_DB") or "ha_bench_alerts"
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


def _seeded(n: int) -> bool:
    """The bench database exists and holds at least n conversations."""
    try:
        with psycopg.connect(DATABASE_URL, connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*) FROM conversations_conversation").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0] >= n)


def database_prepare(conversations: int, *, reuse: bool) -> None:
    """Seed a fresh database, or (reuse) keep a seeded one and empty the alerts tables.
    Leaves Django set up on it."""
    reuse = reuse or os.environ.get("BENCH_ALERTS_REUSE") == "1"
    reusing = reuse and _seeded(conversations)
    if not reusing:
        bench.database_recreate(DB_NAME)
    env = bench.server_env(tempfile.mkdtemp(prefix="bench-alerts-"), DATABASE_URL)
    bench.migrate(env)
    django_setup(env)
    from django.db import connection

    if reusing:
        print(f"reusing {DB_NAME} (at least {conversations:,} conversations)", file=sys.stderr)
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE alerts_delivery, alerts_flagmatch, alerts_alertevent, alerts_alert,"
                " alerts_ruleversion, alerts_rule_destinations, alerts_rule,"
                " alerts_destination, alerts_flagwatermark CASCADE")
        return
    seed(conversations)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def watermark_at_newest() -> None:
    """As after install: the flag scan starts at the newest flag."""
    from alerts.models import FlagWatermark
    from conversations.models import Flag

    top = Flag.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    FlagWatermark.objects.update_or_create(pk=1, defaults={"last_id": top, "gaps": {}})


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
