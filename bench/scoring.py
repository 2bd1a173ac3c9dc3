"""`make bench-scoring`: brand-tone scoring throughput, in one process and end to end.

1. In this process, no database: the default scorers (and, separately, scorers + the
   reasoning/PII checks) over BENCH_SCORING_INPROCESS synthetic messages on all four
   channels, in batches as the worker runs them; the floor is tokenizing the same messages
   (the least any text scorer does). Then the embeddings extra (exemplar similarity) on
   its own, model load not counted. Then the answer-quality checks, which run in the
   applier's decide layer (bench/scoring_quality.py): messages/s through the quality
   decider against a floor (the applier process's share, read against the same 2,000 msg/s
   per process target), and, for scale, scoring + deciding each message in one process;
   with the embeddings variant too.
2. End to end: (re)create the database `ha_bench_scoring`, migrate, insert a backlog of
   BENCH_SCORING_MESSAGES outbound AI/human messages (default 100,000) in 2,000
   conversations, start ONE Celery worker process (solo pool) on Redis db 8, queue the
   backlog in tasks of SCORING_BATCH_SIZE (200) messages and time the drain into
   PostgreSQL. The floor: the same worker first drains the same tasks with a task that
   only reads the batch (bench/scoring_floor.py).
3. Check every message has exactly one score per dimension, print throughput, latency
   percentiles (per task from the worker log; per message from queueing to its stored
   score), the ratio to the floor, and PASS/MISS against the targets (2,000 msg/s per
   process for the scorers, 1,000 msg/s per worker end to end). Exit 0 on a miss; non-zero
   if the run broke.

Environment: BENCH_SCORING_MESSAGES (100000), BENCH_SCORING_INPROCESS (20000),
BENCH_SCORING_EMBEDDINGS (512; 0 skips), BENCH_SCORING_QUALITY (20000),
BENCH_SCORING_QUALITY_EMBEDDINGS (2000; 0 skips). Needs PostgreSQL and Redis on 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import ingest as bench  # bench/ is sys.path[0] when run as a script; puts ROOT on sys.path
from ingest import RunBroken, cli, verdict
from scoring_quality import quality_in_process, quality_lines

DB_NAME = "ha_bench_scoring"
DATABASE_URL = f"{bench.PG}/{DB_NAME}"
BROKER_URL = "redis://127.0.0.1:6379/8"
QUEUE = "bench-scoring"
MESSAGES = int(os.environ.get("BENCH_SCORING_MESSAGES", "100000"))
INPROCESS = int(os.environ.get("BENCH_SCORING_INPROCESS", "20000"))
EMBEDDINGS = int(os.environ.get("BENCH_SCORING_EMBEDDINGS", "512"))
CONVERSATIONS = 2000
TARGET_PROCESS = 2000.0
TARGET_WORKER = 1000.0

_tmp = tempfile.mkdtemp(prefix="bench-scoring-")
os.environ.update(DATABASE_URL=DATABASE_URL, CELERY_BROKER_URL=BROKER_URL,
                  HANDOFF_AUDITOR_DATA_DIR=_tmp, DJANGO_SETTINGS_MODULE="config.settings",
                  LOG_LEVEL="WARNING")

# --- synthetic messages ------------------------------------------------------------------

CHANNELS = ["sms", "whatsapp", "email", "web"]
BODIES = {
    "sms": [
        "Brisa Home: your delivery is booked for Tuesday 9-12. Reply HELP for help.",
        "Thanks for waiting! Order {n} ships today and arrives Friday.",
        "hey lol ur order {n} is gonna be late 😂 calm down",
        "Your refund of $49.00 for order {n} is on its way. It can take 3-5 days to show.",
        "We're sorry about the mix-up. A new lamp ships tomorrow, no need to return the old "
        "one. Tracking follows by text. " * 2,
    ],
    "whatsapp": [
        "Thanks so much for your patience! We're happy to help 😊 Order {n} ships today.",
        "Hi! We have rebooked your delivery for Tuesday between 9 and 12. Anything else?",
        "I checked my system and I'll get back to you. brisa home rocks!!",
        "<think>customer is upset, offer 10%</think>Sorry about that! Here is 10% off.",
        "Sure, your courier is on +44 20 7946 0958 if you need them.",
    ],
    "email": [
        "Hi Maria,\n\nThank you for getting in touch. We have rebooked your delivery for "
        "Tuesday, and you will get a confirmation shortly.\n\nKind regards,\nThe Brisa Home "
        "team",
        "Hello Sam,\n\nWe are sorry your sofa arrived damaged. A replacement for order {n} "
        "leaves our warehouse this week; the courier will collect the damaged one at the same "
        "time, at no cost to you.\n\nBest regards,\nBrisa Home",
        "ok 👍 done!! we r gonna ship it lol",
        "Dear customer,\n\nNotwithstanding the aforementioned contractual stipulations, "
        "reimbursement eligibility determination necessitates documentation.\n\nKind "
        "regards,\nBrisa Home",
    ],
    "web": [
        "Thanks for waiting! Your parcel arrives Tuesday.",
        "As an AI language model, I cannot issue refunds. Please contact a human agent.",
        "We've found your order {n}. It left our warehouse this morning 🎉",
        "Of course. We have updated your address; the change applies to order {n}.",
    ],
}


def synthetic(rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    """(channel, author kind, body) for n messages."""
    out = []
    for i in range(n):
        channel = rng.choice(CHANNELS)
        out.append((channel, "ai" if rng.random() < 0.7 else "human",
                    rng.choice(BODIES[channel]).format(n=100000 + i)))
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}

    def at(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": values[-1]}


# --- 1. in one process -------------------------------------------------------------------


def in_process(brand) -> dict[str, float]:  # noqa: ANN001
    from scoring.checks import CheckInput, pii_leak_check, reasoning_leak_check
    from scoring.language import language_detect
    from scoring.scorer_set import DEFAULT_SCORERS, BrandTone
    from scoring.scorers import ScoringInput
    from scoring.services import scorer_set_current, scorers_warm
    from scoring.textmodel import tokens
    from scoring.tone import score_for_languages

    rng = random.Random(5)
    msgs = synthetic(rng, INPROCESS)
    items = [ScoringInput(body, channel, kind, brand) for channel, kind, body in msgs]
    tone: BrandTone = scorer_set_current()
    batch = 200

    def floor() -> None:
        for item in items:
            tokens(item.text)

    def scorers() -> None:
        # As the worker does: detect each message's language, run each scorer on the
        # messages in languages it knows, combine.
        for i in range(0, len(items), batch):
            chunk = [ScoringInput(it.text, it.channel, it.author_kind, it.brand,
                                  language_detect(it.text)[0]) for it in items[i:i + batch]]
            per = [score_for_languages(s, chunk) for s in DEFAULT_SCORERS]
            for j in range(len(chunk)):
                tone.combine([p[j] for p in per if p[j] is not None], brand)

    def with_checks() -> None:
        scorers()
        for item in items:
            check = CheckInput(text=item.text, channel=item.channel,
                               customer_addresses=frozenset({"+12125550147"}))
            reasoning_leak_check(check)
            pii_leak_check(check)

    # As a worker starts (scoring/tasks.py, worker_init): models loaded, then frozen out of
    # the garbage collector's way; then one pass to warm the remaining caches.
    scorers_warm()
    scorers()
    figures = {}
    for label, fn in (("floor", floor), ("scorers", scorers), ("scorers+checks", with_checks)):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        figures[label] = len(items) / (time.perf_counter() - start)
        figures[f"{label} cpu"] = len(items) / (time.process_time() - cpu)
    if EMBEDDINGS:
        from scoring.embeddings import ExemplarSimilarity, embeddings_available

        if embeddings_available():
            sim = ExemplarSimilarity()
            sim.score_batch(items[:64])  # load the model, encode the exemplars
            start, cpu = time.perf_counter(), time.process_time()
            sim.score_batch(items[:EMBEDDINGS])
            figures["embeddings"] = EMBEDDINGS / (time.perf_counter() - start)
            figures["embeddings cpu"] = EMBEDDINGS / (time.process_time() - cpu)
    return figures


# --- 2. end to end -----------------------------------------------------------------------


def backlog_insert(brand) -> list[int]:  # noqa: ANN001
    from django.utils import timezone

    from conversations.models import Conversation, Message
    from scoring.models import ConversationBrand

    rng = random.Random(7)
    now = timezone.now()
    conversations = Conversation.objects.bulk_create([
        Conversation(channel=CHANNELS[i % 4], business_address=f"biz-{i % 4}",
                     customer_address=f"+1212555{i:04d}", started_at=now, last_activity_at=now,
                     status="closed")
        for i in range(CONVERSATIONS)
    ])
    ConversationBrand.objects.bulk_create(
        [ConversationBrand(conversation=c, brand=brand) for c in conversations])
    by_channel = {ch: [c for c in conversations if c.channel == ch] for ch in CHANNELS}
    rows = []
    for i, (channel, kind, body) in enumerate(synthetic(rng, MESSAGES)):
        conversation = by_channel[channel][i % len(by_channel[channel])]
        rows.append(Message(conversation=conversation, direction="outbound", author_kind=kind,
                            body=body, provider="bench", provider_message_id=f"B{i}",
                            sent_at=now - timedelta(seconds=MESSAGES - i)))
    Message.objects.bulk_create(rows, batch_size=5000)
    return [m.pk for m in rows]


def worker_start(log: Path) -> subprocess.Popen:
    # drain() counts the worker's "succeeded" lines (quiet by default; README, Settings).
    env = {**os.environ, "LOG_LEVEL": "INFO", "LOG_LEVEL_TASKS": "INFO"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-Q", QUEUE,
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
         "--include", "bench.scoring_floor", "-n", f"bench-scoring-{os.getpid()}@%h"],
        cwd=bench.ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )


_SUCCEEDED = re.compile(r"Task (\S+)\[[^\]]+\] succeeded in ([0-9.]+)s")


def drain(task, ids: list[int], log: Path, proc: subprocess.Popen,  # noqa: ANN001
          batch: int) -> dict[str, float]:
    """Queue the ids in tasks of `batch`, wait until the worker logged every one done."""
    name = task.name
    before = sum(1 for m in _SUCCEEDED.finditer(log.read_text()) if m.group(1) == name)
    cpu_before = _cpu_seconds(proc.pid)
    machine_before = bench.cpu_sample(DB_NAME)
    tasks = 0
    start = time.perf_counter()
    for i in range(0, len(ids), batch):
        task.apply_async(args=[ids[i:i + batch]], queue=QUEUE)
        tasks += 1
    queued = time.perf_counter() - start
    while True:
        done = [float(m.group(2)) for m in _SUCCEEDED.finditer(log.read_text())
                if m.group(1) == name][before:]
        if len(done) >= tasks:
            break
        if proc.poll() is not None:
            raise RunBroken(f"the worker died:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    split = _cpu_split(machine_before, bench.cpu_sample(DB_NAME), proc.pid)
    return {"seconds": seconds, "per_second": len(ids) / seconds, "tasks": tasks,
            "queued_s": queued, "cpu_s": _cpu_seconds(proc.pid) - cpu_before,
            "task_s": percentiles(done), "start": start, "split": split}


def _cpu_split(before, after, worker_pid: int) -> dict[str, float]:  # noqa: ANN001
    """CPU seconds between two samples: the worker, PostgreSQL (this database's backends
    and the server's own processes), everything else on the machine (other engineers'
    tests, this script polling)."""
    groups = {"worker": 0.0, "postgres": 0.0, "other processes": 0.0}
    for pid, (comm, _ppid, ticks) in after.procs.items():
        old = before.procs.get(pid)
        delta = (ticks - (old[2] if old else 0)) / bench.CLOCK_TICKS
        if pid == worker_pid:
            groups["worker"] += delta
        elif comm == "postgres":
            groups["postgres"] += delta
        else:
            groups["other processes"] += delta
    return groups


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def end_to_end(brand) -> dict[str, dict]:  # noqa: ANN001
    from django.db import connection

    from bench.scoring_floor import load_batch
    from conversations.conf import auditor_settings
    from scoring.tasks import score_messages

    print(f"backlog: inserting {MESSAGES} messages", flush=True)
    ids = backlog_insert(brand)
    batch = auditor_settings.SCORING_BATCH_SIZE
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)
    log = Path(_tmp, "worker.log")
    proc = worker_start(log)
    try:
        while "ready." not in log.read_text():
            if proc.poll() is not None:
                raise RunBroken(f"the worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        print("floor: the worker drains read-only tasks", flush=True)
        floor = drain(load_batch, ids, log, proc, batch)
        print("scoring: the worker drains the backlog", flush=True)
        wall_start = time.time()
        real = drain(score_messages, ids, log, proc, batch)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*), count(DISTINCT subject_id), "
            "percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY "
            "extract(epoch FROM created_at) - %s), "
            "max(extract(epoch FROM created_at) - %s) "
            "FROM scoring_score WHERE name = 'brand_tone'", [wall_start, wall_start])
        rows, distinct, pcts, latest = cur.fetchone()
        cur.execute("SELECT name, count(*) FROM scoring_score GROUP BY name")
        per_name = dict(cur.fetchall())
        cur.execute("SELECT kind, count(*) FROM conversations_flag GROUP BY kind ORDER BY kind")
        flags = dict(cur.fetchall())
    if rows != MESSAGES or distinct != MESSAGES:
        raise RunBroken(f"{rows} brand_tone rows for {distinct} messages, expected {MESSAGES}")
    uneven = {n: c for n, c in per_name.items() if c != MESSAGES}
    if uneven:
        raise RunBroken(f"dimensions with a count other than {MESSAGES}: {uneven}")
    real["message_latency_s"] = dict(zip(["p50", "p95", "p99"], pcts, strict=True),
                                     max=latest)
    real["scores"] = sum(per_name.values())
    real["flags"] = flags
    return {"floor": floor, "real": real}


def report(fig: dict[str, float], floor: dict, real: dict, quality: dict) -> None:
    lat, emb = real["message_latency_s"], fig.get("embeddings")
    ms = {k: v * 1000 for k, v in real["task_s"].items()}
    floor_ms = {k: v * 1000 for k, v in floor["task_s"].items()}
    emb_line = (f"{emb:9.0f} msg/s (exemplar similarity alone, model load not counted)"
                if emb else "not run")
    lines = [
        "",
        f"== bench-scoring: {os.cpu_count()} cores, PostgreSQL + Redis on 127.0.0.1 ==",
        f"in one process ({INPROCESS} messages, 4 channels, batches of 200)",
        f"  floor (tokenize only)      {fig['floor']:9.0f} msg/s   "
        f"({fig['floor cpu']:.0f} per CPU-second)",
        f"  default scorers + overall  {fig['scorers']:9.0f} msg/s   "
        f"({fig['scorers cpu']:.0f} per CPU-second)   "
        f"ratio to floor {fig['scorers'] / fig['floor']:.3f}",
        f"  scorers + leak/PII checks  {fig['scorers+checks']:9.0f} msg/s   "
        f"({fig['scorers+checks cpu']:.0f} per CPU-second)",
        f"  embeddings extra           {emb_line}"
        + (f" ({fig['embeddings cpu']:.0f} per CPU-second, torch threads)" if emb else ""),
        *quality_lines(quality, fig["scorers"], TARGET_PROCESS),
        f"end to end, 1 worker process (solo pool), {MESSAGES} outbound messages, "
        f"{real['tasks']} tasks",
        f"  floor (read-only tasks)    {floor['per_second']:9.0f} msg/s   "
        f"{floor['seconds']:.1f} s   task p50 {floor_ms['p50']:.0f} ms "
        f"p99 {floor_ms['p99']:.0f} ms",
        f"  scoring into PostgreSQL    {real['per_second']:9.0f} msg/s   {real['seconds']:.1f} s   "
        f"task p50 {ms['p50']:.0f} ms p95 {ms['p95']:.0f} ms p99 {ms['p99']:.0f} ms",
        f"  ratio to floor             {real['per_second'] / floor['per_second']:9.3f}",
        f"  worker CPU                 {real['cpu_s']:.1f} s = "
        f"{real['cpu_s'] * 1000 / MESSAGES:.2f} ms/msg "
        f"({MESSAGES / max(real['cpu_s'], 1e-9):.0f} msg per CPU-second)",
        "  CPU seconds per message    worker "
        f"{real['split']['worker'] * 1000 / MESSAGES:.2f} ms, PostgreSQL "
        f"{real['split']['postgres'] * 1000 / MESSAGES:.2f} ms; other processes kept "
        f"{real['split']['other processes'] / real['seconds']:.2f} of "
        f"{os.cpu_count()} cores busy meanwhile (floor run: "
        f"{floor['split']['other processes'] / floor['seconds']:.2f})",
        f"  queued -> scored latency   p50 {lat['p50']:.1f} s  p95 {lat['p95']:.1f} s  "
        f"p99 {lat['p99']:.1f} s  max {lat['max']:.1f} s (a backlog: the last waits for all)",
        f"  stored                     {real['scores']} scores, one per message and "
        "dimension, none twice",
        f"  flags raised               {sum(real['flags'].values())} "
        f"({sum(real['flags'].values()) / MESSAGES:.0%} of messages; a stress mix): "
        + ", ".join(f"{k} {v}" for k, v in real["flags"].items()),
        "",
        "targets",
        f"  scorers >= {TARGET_PROCESS:.0f} msg/s per process:   {fig['scorers']:8.0f}   "
        f"{verdict(fig['scorers'] >= TARGET_PROCESS)}",
        f"  quality decider >= {TARGET_PROCESS:.0f} msg/s per process: {quality['quality']:8.0f}   "
        f"{verdict(quality['quality'] >= TARGET_PROCESS)}",
        f"  end to end >= {TARGET_WORKER:.0f} msg/s per worker: {real['per_second']:8.0f}   "
        f"{verdict(real['per_second'] >= TARGET_WORKER)}",
    ]
    print("\n".join(lines), flush=True)


def main() -> int:
    print(f"database {DB_NAME}: drop, create, migrate; broker {BROKER_URL}", flush=True)
    bench.database_recreate(DB_NAME)
    bench.migrate({**os.environ})
    import django

    django.setup()
    from scoring.models import BrandVoice
    from tests.support.scoring_brand import BRISA

    brand = BrandVoice.objects.create(**BRISA, is_default=True)
    print(f"in one process: {INPROCESS} messages", flush=True)
    fig = in_process(brand)
    print("answer-quality checks: the labelled conversations through the quality decider",
          flush=True)
    quality = quality_in_process()
    e2e = end_to_end(brand)
    report(fig, e2e["floor"], e2e["real"], quality)
    return 0


if __name__ == "__main__":
    cli(main, "bench-scoring")
