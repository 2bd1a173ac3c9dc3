"""`make bench-events`: applied events/s through the applier (conversations/applier.py)
with the handoff machine, from signed batches of events spread over 100,000 customers.

The webhook only stores (one raw event per event of a batch, one INSERT per request); the
applier applies. Everything runs in the database `handoff_auditor_bench_events` (or
BENCH_EVENTS_DB), dropped, re-created and migrated first; Celery uses Redis db 10.

1. Backlog drain. A gunicorn with APPLIER_WAKE=none stores BENCH_EVENTS_BACKLOG events
   (POST /hooks/events/, batches of 100, 4 client threads; the store rate is printed too).
   Then `manage.py apply_events` drains them: (a) 1 applier; then a second backlog of the
   same size (new events, the same customers) with (b) 2 appliers at once (two processes;
   they share the work through the partition advisory locks). Timed from the appliers'
   start to the last one's exit; a progress bar follows the pending count.
2. Profile (BENCH_PROFILE=1, the default): a third, smaller backlog (BENCH_PROFILE_EVENTS)
   drained in one process under pyinstrument (bench/profile_apply.py): where the time goes.
3. Lag. A gunicorn with APPLIER_WAKE=task (broker Redis db 10) and a Celery worker with 1,
   then 2 processes as appliers, woken by the webhooks. A client posts batches of
   BENCH_LAG_BATCH (10) events at a steady BENCH_LAG_RATE (1,000 events/s) for
   BENCH_LAG_SECONDS (20). Reported: the lag from the webhook's commit
   (RawEvent.received_at) to applied (processed_at), p50/p99/max (events still pending count
   with their age, a lower bound); the fraction still pending when the posting stopped, and
   how long the appliers took to catch up after (at most BENCH_LAG_WAIT, 45 s).
4. Checks: every posted batch answered 2xx, each event stored once, applied once (Message
   rows = message.created events, status rows = message.status events), none failed.
   Exit 0 on a missed target (this reports); non-zero if the run itself broke.

Environment: BENCH_EVENTS_CUSTOMERS (100,000), BENCH_EVENTS_BACKLOG (20,000 events),
BENCH_PROFILE (1), BENCH_PROFILE_EVENTS (5,000), BENCH_LAG_RATE, BENCH_LAG_BATCH,
BENCH_LAG_SECONDS, BENCH_LAG_WAIT, BENCH_LAG_APPLIERS ("1,2"), BENCH_WORKERS (3 gunicorn
workers). See bench/README.md.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import random
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import ingest as bench  # bench/ is sys.path[0] when run as a script
import psycopg
from ingest import Drain, RunBroken, verdict
from jsonschema import Draft202012Validator
from tqdm import tqdm

from tests.support.signing import events_headers  # ingest put ROOT on sys.path

# Its own database (BENCH_EVENTS_DB to pick another, e.g. when two checkouts bench at once).
DB_NAME = os.environ.get("BENCH_EVENTS_DB", "handoff_auditor_bench_events")
DATABASE_URL = f"{bench.PG}/{DB_NAME}"
SECRET = "whsec_" + base64.b64encode(b"bench-events-secret-0123456789ab").decode()
EVENTS_PATH = "/hooks/events/"
BATCH = 100
# The customers the batches are spread over (issue 12: 100,000). Few customers make
# concurrent batches share conversations, and so partitions (see bench/README.md).
CUSTOMERS = int(os.environ.get("BENCH_EVENTS_CUSTOMERS", "100000"))
BACKLOG = int(os.environ.get("BENCH_EVENTS_BACKLOG", "20000"))
PROFILE = os.environ.get("BENCH_PROFILE", "1") != "0"
PROFILE_EVENTS = int(os.environ.get("BENCH_PROFILE_EVENTS", "5000"))
LAG_RATE = float(os.environ.get("BENCH_LAG_RATE", "1000"))
LAG_BATCH = int(os.environ.get("BENCH_LAG_BATCH", "10"))
LAG_SECONDS = float(os.environ.get("BENCH_LAG_SECONDS", "20"))
LAG_WAIT = float(os.environ.get("BENCH_LAG_WAIT", "45"))
LAG_APPLIERS = [int(n) for n in os.environ.get("BENCH_LAG_APPLIERS", "1,2").split(",") if n]
CLIENT_THREADS = 4
STATUS_SHARE = 0.1  # of the events in a batch: message.status for an earlier message
TOLERANCE = 300  # seconds the server accepts a signature timestamp for

TARGET_EVENTS = 10_000.0
TARGET_LAG_P99_MS = 1000.0  # issue 12: p99 lag < 1 s at 1,000 events/s

# --- requests ---------------------------------------------------------------------------

WIDGETS = ["widget:brisa-home", "widget:brisa-shop"]
BUSINESS = {"web": WIDGETS, **bench.BUSINESS}
AI_REPLIES = [
    "Hi {name}! I can help with order #{n}. Could you confirm the e-mail on the account?",
    "¡Hola {name}! Siento mucho lo del pedido 😔 Te paso con una persona del equipo.",
    "Bonjour {name}, je vérifie la livraison n°{n} tout de suite.",
    "Ich habe Ihre Bestellung {n} gefunden. Einen Moment bitte…",
    "ご注文{n}の状況を確認しています。少々お待ちください。",
    "مرحبا {name}، سأحوّلك إلى أحد موظفينا الآن 🙏",
    "Olá {name}! Já reenviei a fatura do pedido #{n} para o seu e-mail ✉️",
]
AGENTS = [("lucia.fernandez", "Lucía Fernández"), ("j.gross", "Jürgen Groß"),
          ("mei.chen", "陈美"), ("o.nowak", "Oliwia Nowak")]
MODELS = ["gpt-4.1-mini", "claude-sonnet-4", "gemini-2.5-flash"]
OFFSETS = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5)),
           timezone(timedelta(hours=9)), timezone(timedelta(hours=5, minutes=30))]
STATUSES = ["sent", "delivered", "delivered", "read", "failed"]


def customers(rng: random.Random) -> list[tuple[str, str, str, str]]:
    """(channel, customer address, business address, name) per customer."""
    out = []
    for i in range(CUSTOMERS):
        roll = rng.random()
        channel = "web" if roll < 0.3 else "whatsapp" if roll < 0.75 else "sms"
        if channel == "web":
            address = f"visitor-{i:04d}{rng.getrandbits(32):08x}"
        else:
            address = f"{bench.COUNTRIES[i % len(bench.COUNTRIES)][0]}{i:05d}"
        out.append((channel, address, rng.choice(BUSINESS[channel]), rng.choice(bench.NAMES)))
    return out


def stamp(at: datetime, rng: random.Random) -> str:
    """RFC 3339 with an offset, in one of several zones, sometimes with milliseconds."""
    local = at.astimezone(rng.choice(OFFSETS))
    return local.isoformat(timespec="milliseconds" if rng.random() < 0.5 else "seconds")


def message_created(req: int, j: int, rng: random.Random, customer: tuple[str, ...],
                    at: datetime) -> dict[str, Any]:
    channel, address, business, name = customer
    roll, n = rng.random(), rng.randrange(1000, 99999)
    data: dict[str, Any] = {
        "channel": channel,
        "conversation": {"business_address": business, "customer_address": address},
        # Unique per event: request and position, padded with randomness.
        "provider_message_id": f"ev{req:06d}{j:02d}{rng.getrandbits(64):016x}",
        "sent_at": stamp(at, rng),
    }
    if roll < 0.6:
        data.update(direction="inbound", author={"kind": "customer", "id": address,
                                                 "name": name},
                    body=rng.choice(bench.BODIES).format(n=n))
        if channel == "whatsapp" and rng.random() < 0.08:
            data["media"] = [{"url": f"https://media.example.com/{rng.getrandbits(64):016x}",
                              "content_type": rng.choice(bench.MEDIA_TYPES)}]
    elif roll < 0.9:
        data.update(direction="outbound", author={"kind": "ai", "id": "support-bot",
                                                  "name": "Ava (AI)"},
                    body=rng.choice(AI_REPLIES).format(name=name or "there", n=n),
                    metadata={"model": rng.choice(MODELS), "prompt_version": "returns-v7"})
    else:
        agent_id, agent_name = rng.choice(AGENTS)
        data.update(direction="outbound", author={"kind": "human", "id": agent_id,
                                                  "name": agent_name},
                    body=rng.choice(AI_REPLIES).format(name=name or "", n=n))
    return {"type": "message.created", "timestamp": stamp(at, rng), "data": data}


def batch(req: int, rng: random.Random, people: list[tuple[str, ...]],
          at: datetime, size: int = BATCH) -> tuple[list[dict[str, Any]], int]:
    """One request's `size` events, and how many of them are message.created."""
    events: list[dict[str, Any]] = []
    unreported: list[str] = []  # this batch's messages without a status yet
    created = 0
    for j in range(size):
        at += timedelta(milliseconds=rng.randrange(50, 4000))
        if unreported and rng.random() < STATUS_SHARE:
            pmid = unreported.pop(rng.randrange(len(unreported)))
            status = rng.choice(STATUSES)
            data = {"provider_message_id": pmid, "status": status,
                    "occurred_at": stamp(at, rng)}
            if status == "failed":
                data.update(error_code="63016", error_message="Outside the 24 h window")
            events.append({"type": "message.status", "timestamp": stamp(at, rng),
                           "data": data})
        else:
            event = message_created(req, j, rng, rng.choice(people), at)
            events.append(event)
            unreported.append(event["data"]["provider_message_id"])
            created += 1
    return events, created


def validators() -> dict[str, Draft202012Validator]:
    schemas = bench.ROOT / "channels" / "schemas"
    return {t: Draft202012Validator(json.loads((schemas / f"{t}.json").read_text()))
            for t in ("message.created", "message.status")}


class Generator:
    """The stream of batches every phase draws from: unique events and webhook ids, the same
    customers, times moving forward (30 s a batch)."""

    def __init__(self) -> None:
        self.rng = random.Random(20241122)
        self.people = customers(self.rng)
        self.at = datetime.now(tz=UTC) - timedelta(days=2)
        self.req = 0
        self.run = f"{self.rng.getrandbits(32):08x}"
        self.check = validators()

    def batches(self, events: int, size: int, label: str) -> list[tuple[str, str]]:
        """(webhook id, JSON body) for `events` events in batches of `size`."""
        out = []
        for _ in tqdm(range(max(1, events // size)), desc=f"generating {label}", unit="req",
                      unit_scale=True):
            batch_events, _ = batch(self.req, self.rng, self.people, self.at, size)
            self.at += timedelta(seconds=30)
            if self.req < 3:  # the generator, checked against the schemas the server uses
                for index, event in enumerate(batch_events):
                    for error in self.check[event["type"]].iter_errors(event):
                        raise RunBroken(f"generated event {index} is invalid: {error.message}")
            # ensure_ascii=False: bodies go over the wire as UTF-8.
            body = json.dumps(batch_events, ensure_ascii=False, separators=(",", ":"))
            out.append((f"msg_bench{self.run}{self.req:07d}", body))
            self.req += 1
        return out


# --- the client -------------------------------------------------------------------------


@dataclass(frozen=True)
class Posted:
    requests: int
    events: int
    seconds: float
    non2xx: list[str]
    latencies_ms: list[float]
    load: str

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0

    def line(self) -> str:
        return (f"{self.requests} requests, {self.events} events in {self.seconds:.1f} s = "
                f"{self.events_per_second:,.0f} events/s stored; per request p50 "
                f"{self.pct(0.5):.1f} ms, p99 {self.pct(0.99):.1f} ms")


def post_all(port: int, batches: list[tuple[str, str]], label: str, *,
             rate: float | None = None) -> Posted:
    """POST every batch once (signed now), from CLIENT_THREADS threads; with `rate`
    (requests/s), request k leaves at start + k / rate (or as soon after as a thread is
    free). A progress bar counts the answers."""
    signed_at = datetime.now(tz=UTC)
    reqs = []
    for msg_id, body in batches:
        data = body.encode()
        headers = events_headers(data, SECRET, msg_id=msg_id, timestamp=signed_at)
        headers.update({"Content-Type": "application/json", "User-Agent": "bench-events/2"})
        reqs.append((headers, data))
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    non2xx: list[str] = []
    latencies: list[float] = []
    # At a steady rate, enough threads that a slow answer never holds the next request.
    threads = CLIENT_THREADS if rate is None else 32
    started = time.monotonic()

    def work() -> None:
        while True:
            with lock:
                k = state["next"]
                state["next"] += 1
            if k >= len(reqs):
                return
            if rate is not None:
                delay = started + k / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            headers, data = reqs[k]
            sent = time.monotonic()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("POST", EVENTS_PATH, data, headers)
                response = conn.getresponse()
                answer = response.read()
                conn.close()
                failure = None if 200 <= response.status < 300 else \
                    f"{response.status} {answer[:200]!r}"
            except OSError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            with lock:
                latencies.append((time.monotonic() - sent) * 1000)
                state["done"] += 1
                if failure:
                    non2xx.append(failure)

    pool = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    with tqdm(total=len(reqs), desc=f"  {label}", unit="req", unit_scale=True) as bar:
        while any(t.is_alive() for t in pool):
            time.sleep(0.25)
            bar.n = state["done"]
            bar.refresh()
        bar.n = state["done"]
        bar.refresh()
    seconds = time.monotonic() - started
    events = sum(len(json.loads(body)) for _, body in batches)
    return Posted(len(reqs), events, seconds, non2xx, latencies, bench.machine_load())


# --- verification -----------------------------------------------------------------------


def stored_counts(after_id: int = 0) -> dict[str, int]:
    """The events provider's raw events (id > after_id) by status, and what was applied."""
    with psycopg.connect(DATABASE_URL) as conn:
        row = conn.execute(
            """
            WITH ev AS (
              SELECT id, status, body::jsonb->>'type' AS type FROM conversations_rawevent
              WHERE provider = 'events' AND id > %(after)s
            )
            SELECT
              (SELECT count(*) FROM ev),
              (SELECT count(*) FROM ev WHERE status = 'pending'),
              (SELECT count(*) FROM ev WHERE status = 'failed'),
              (SELECT count(*) FROM ev WHERE type = 'message.created'),
              (SELECT count(*) FROM ev WHERE type = 'message.status'),
              (SELECT count(*) FROM conversations_message m JOIN ev ON m.raw_event_id = ev.id),
              (SELECT count(*) FROM conversations_messagestatusevent s
                 JOIN ev ON s.raw_event_id = ev.id),
              (SELECT count(*) FROM conversations_messagestatusevent s
                 JOIN ev ON s.raw_event_id = ev.id WHERE s.message_id IS NULL
                 AND EXISTS (SELECT 1 FROM conversations_message m
                             WHERE m.provider = s.provider
                             AND m.provider_message_id = s.provider_message_id)),
              (SELECT count(*) FROM conversations_conversation),
              (SELECT count(*) FROM handoffs_handoff)
            """, {"after": after_id},
        ).fetchone()
    assert row is not None
    keys = ["raw_events", "pending", "failed", "created_events", "status_events", "messages",
            "status_rows", "status_unjoined", "conversations", "handoffs"]
    return dict(zip(keys, row, strict=True))


def stored_check(label: str, counts: dict[str, int], events: int,
                 posted: Posted | None) -> list[str]:
    """Every answered batch's events stored once; after applying, applied once."""
    problems = []
    if posted and posted.non2xx:
        problems.append(f"{label}: {len(posted.non2xx)} non-2xx answers, e.g. "
                        f"{posted.non2xx[0]}")
    if counts["raw_events"] != events:
        problems.append(f"{label}: {counts['raw_events']} raw events stored for {events} "
                        "events posted")
    if counts["pending"] == 0:
        if counts["failed"]:
            problems.append(f"{label}: {counts['failed']} raw events failed")
        if counts["messages"] != counts["created_events"]:
            problems.append(f"{label}: Message rows {counts['messages']} != message.created "
                            f"events {counts['created_events']}")
        if counts["status_rows"] != counts["status_events"]:
            problems.append(f"{label}: status rows {counts['status_rows']} != message.status "
                            f"events {counts['status_events']}")
    return problems


# --- run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LagRun:
    appliers: int
    posted: Posted
    pending_at_end: int
    caught_up: float  # seconds after the posting until nothing was pending (or gave up)
    pending_after: int
    lag: dict[str, float]
    cpu: dict[str, float]  # cores busy by group while posting
    counts: dict[str, int]


def lag_run(gen: Generator, tmp: str, appliers: int) -> LagRun:
    env = bench.server_env(tmp, DATABASE_URL, wake="task")
    env["HANDOFF_AUDITOR_EVENTS_SECRETS"] = SECRET
    bench.broker_flush()
    start_id = bench.last_raw_id(DATABASE_URL)
    batches = gen.batches(int(LAG_RATE * LAG_SECONDS), LAG_BATCH, f"lag, {appliers} applier(s)")
    worker = bench.celery_start(env, appliers, Path(tmp, f"celery-{appliers}.log"))
    port = bench.free_port()
    server = bench.gunicorn_start(env, port)
    try:
        bench.gunicorn_wait(server, port)
        print(f"lag: {LAG_RATE:,.0f} events/s in batches of {LAG_BATCH} for {LAG_SECONDS:.0f} "
              f"s; Celery worker with {appliers} process(es), APPLIER_WAKE=task", flush=True)
        before = bench.cpu_sample(DB_NAME)
        posted = post_all(port, batches, f"posting, {appliers} applier(s)",
                          rate=LAG_RATE / LAG_BATCH)
        after = bench.cpu_sample(DB_NAME)
        pending_at_end = bench.pending_count(DATABASE_URL, start_id)
        caught_up = bench.wait_applied(DATABASE_URL, start_id, "catching up", LAG_WAIT)
        pending_after = bench.pending_count(DATABASE_URL, start_id)
        lag = bench.lag_ms(DATABASE_URL, start_id, time.time())
    finally:
        bench.gunicorn_stop(server)
        bench.celery_stop(worker)
    cpu = bench.cpu_split(before, after, server.pid, 0.0, worker.pid)
    cores = {k: v / posted.seconds for k, v in cpu.items() if k != "wrk"}
    if pending_after:
        # Not part of the figure: the next phase starts with nothing pending.
        bench.drain(env, 1, "leftover (untimed)", db_name=DB_NAME, database_url=DATABASE_URL)
    counts = stored_counts(start_id)
    return LagRun(appliers, posted, pending_at_end, caught_up, pending_after, lag, cores,
                  counts)


def backlog(gen: Generator, port: int, events: int, label: str) -> tuple[Posted, int]:
    start_id = bench.last_raw_id(DATABASE_URL)
    posted = post_all(port, gen.batches(events, BATCH, label), f"storing {label}")
    return posted, start_id


def report(store: list[Posted], drains: list[Drain], checks: list[dict[str, int]],
           lags: list[LagRun], profile: str) -> None:
    print(f"""
== bench-events: applier with the handoff machine, PostgreSQL ({DB_NAME}), batches of \
{BATCH} over {CUSTOMERS:,} customers; the machine has {os.cpu_count()} cores ==
store (gunicorn {bench.WORKERS} workers, APPLIER_WAKE=none, {CLIENT_THREADS} client threads):""")
    for posted in store:
        print(f"  {posted.line()}   [{posted.load}]")
    print("backlog drain (manage.py apply_events):")
    for n, (drained, counts) in enumerate(zip(drains, checks, strict=True), 1):
        print(f"  {n} applier{'s' if n > 1 else ''}: {drained.line()}   [{drained.load}]")
        print(f"    Message {counts['messages']} (= message.created "
              f"{counts['created_events']}), status reports {counts['status_rows']} "
              f"(= message.status {counts['status_events']}), failed {counts['failed']}")
        if counts["status_unjoined"]:
            print(f"    DEFECT: {counts['status_unjoined']} status reports not joined to "
                  "their message, which is recorded (applied in another partition first; "
                  "only beat's reconcile_delivery_statuses joins them)")
        for out in drained.outputs:
            print(f"    applier: {out.splitlines()[-1] if out else '(no output)'}")
    if len(drains) == 2:
        print(f"  2 appliers / 1 applier: {drains[1].per_second / drains[0].per_second:.2f}x")
    for lag in lags:
        cores = ", ".join(f"{k} {v:.2f}" for k, v in lag.cpu.items())
        print(f"""lag, {lag.appliers} Celery applier process(es), {LAG_RATE:,.0f} events/s \
asked in batches of {LAG_BATCH}:
  posted: {lag.posted.line()}   [{lag.posted.load}]
  lag stored -> applied: p50 {lag.lag['p50']:,.0f} ms, p99 {lag.lag['p99']:,.0f} ms, max \
{lag.lag['max']:,.0f} ms
  pending when the posting stopped: {lag.pending_at_end} of {lag.posted.events} \
({lag.pending_at_end / max(lag.posted.events, 1):.1%}); all applied \
{lag.caught_up:.1f} s later{f', {lag.pending_after} still pending then' if lag.pending_after
                            else ''}
  cores busy while posting: {cores}""")
    best = max((d.per_second for d in drains), default=0.0)
    print(f"""
targets
  applied events/s >= {TARGET_EVENTS:,.0f} (best drain): {best:8,.0f}   \
{verdict(best >= TARGET_EVENTS)}""")
    for lag in lags:
        print(f"  lag p99 < {TARGET_LAG_P99_MS:,.0f} ms at {LAG_RATE:,.0f} events/s, "
              f"{lag.appliers} applier(s): {lag.lag['p99']:8,.0f}   "
              f"{verdict(lag.lag['p99'] < TARGET_LAG_P99_MS and not lag.pending_after)}")
    if profile:
        print("\nprofile of one applier draining (bench/profile_apply.py, pyinstrument):")
        print(profile)


def main() -> int:
    print(f"machine: {bench.machine_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        env = bench.server_env(tmp, DATABASE_URL)
        env["HANDOFF_AUDITOR_EVENTS_SECRETS"] = SECRET
        print(f"database {DB_NAME}: drop, create, migrate", flush=True)
        bench.database_recreate(DB_NAME)
        bench.migrate(env)
        gen = Generator()
        problems: list[str] = []
        store: list[Posted] = []
        drains: list[Drain] = []
        checks: list[dict[str, int]] = []
        profile = ""
        port = bench.free_port()
        server = bench.gunicorn_start(env, port)
        try:
            bench.gunicorn_wait(server, port)
            print(f"gunicorn: {bench.WORKERS} workers on 127.0.0.1:{port}, APPLIER_WAKE=none",
                  flush=True)
            for appliers in (1, 2):
                label = f"backlog {appliers}"
                posted, start_id = backlog(gen, port, BACKLOG, label)
                store.append(posted)
                drains.append(bench.drain(env, appliers, f"draining, {appliers} applier(s)",
                                          db_name=DB_NAME, database_url=DATABASE_URL))
                checks.append(stored_counts(start_id))
                problems += stored_check(label, checks[-1], posted.events, posted)
            if PROFILE:
                posted, start_id = backlog(gen, port, PROFILE_EVENTS, "profile backlog")
                print("profiling one applier (pyinstrument)...", flush=True)
                done = subprocess.run([bench.PY, "bench/profile_apply.py"], cwd=bench.ROOT,
                                      env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    raise RunBroken(f"profile_apply.py failed:\n{done.stdout}{done.stderr}")
                profile = done.stdout.rstrip()
                problems += stored_check("profile", stored_counts(start_id), posted.events,
                                         posted)
        finally:
            bench.gunicorn_stop(server)
        lags = []
        for appliers in LAG_APPLIERS:
            lags.append(lag_run(gen, tmp, appliers))
            problems += stored_check(f"lag {appliers}", lags[-1].counts,
                                     lags[-1].posted.events, lags[-1].posted)
        bench.broker_flush()
        report(store, drains, checks, lags, profile)
        if problems:
            raise RunBroken("\n".join(problems))
        print("run OK: every batch answered 2xx, each event stored once and applied once")
    return 0


if __name__ == "__main__":
    bench.cli(main, "bench-events")
