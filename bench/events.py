"""`make bench-events`: signed batches of 100 events over HTTP, beside the single-event
Twilio webhook, through gunicorn into PostgreSQL.

1. (Re)create the database `handoff_auditor_bench_events` (or BENCH_EVENTS_DB) and migrate it.
2. The single-event figure: bench-ingest's webhook phase (pre-signed Twilio inbound webhooks,
   3 s warm-up on /healthz, then BENCH_SECONDS of webhooks), on its own gunicorn server;
   stop it and check what was stored, as bench-ingest does.
3. Generate unique POST /hooks/events/ requests, each a JSON array of 100 valid events
   (mostly message.created, some message.status for a message earlier in the batch; a few
   thousand web/WhatsApp/SMS customers, multilingual bodies), each with its own webhook-id
   and signed (Standard Webhooks, tests/support/signing.py events_headers) right before the run:
   the server refuses signatures more than 5 minutes old.
4. A fresh gunicorn with HANDOFF_AUDITOR_EVENTS_SECRETS set: 3 s warm-up, then BENCH_SECONDS
   of batches, each request sent exactly once (bench/replay.lua, format "events").
5. Count what the database holds against what wrk was answered, print the figures and
   PASS/MISS against 10,000 events/s. Exit 0 on a miss; non-zero if the run itself broke.

The gunicorn, wrk, CPU and counting machinery is bench/ingest.py's. Environment: as for
bench-ingest (BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_WORKERS, ...), plus
BENCH_EVENT_REQUESTS (batches to sign; default 150 per second of run, i.e. 15,000 events/s),
BENCH_EVENTS_CUSTOMERS (3000: how many customers the batches are spread over).
See bench/README.md.
"""

from __future__ import annotations

import base64
import json
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import ingest as bench  # bench/ is sys.path[0] when run as a script
import psycopg
from ingest import RunBroken, WrkResult, verdict
from jsonschema import Draft202012Validator
from tqdm import tqdm

from tests.support.signing import events_headers  # ingest put ROOT on sys.path

# Its own database (BENCH_EVENTS_DB to pick another, e.g. when two checkouts bench at once).
DB_NAME = os.environ.get("BENCH_EVENTS_DB", "handoff_auditor_bench_events")
DATABASE_URL = f"{bench.PG}/{DB_NAME}"
SECRET = "whsec_" + base64.b64encode(b"bench-events-secret-0123456789ab").decode()
EVENTS_PATH = "/hooks/events/"
BATCH = 100
REQUESTS = int(os.environ.get("BENCH_EVENT_REQUESTS", str(150 * bench.SECONDS)))
# The customers the batches are spread over. Few customers make concurrent batches share
# conversations, and so wait for each other's row locks (see bench/README.md).
CUSTOMERS = int(os.environ.get("BENCH_EVENTS_CUSTOMERS", "3000"))
STATUS_SHARE = 0.1  # of the events in a batch: message.status for an earlier message
TOLERANCE = 300  # seconds the server accepts a signature timestamp for

TARGET_EVENTS = 10_000.0

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
          at: datetime) -> tuple[list[dict[str, Any]], int]:
    """One request's 100 events, and how many of them are message.created."""
    events: list[dict[str, Any]] = []
    unreported: list[str] = []  # this batch's messages without a status yet
    created = 0
    for j in range(BATCH):
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


def requests_write(path: Path, count: int) -> float:
    """Write `count` signed batches to `path`, one line each:
    webhook-id, webhook-timestamp, webhook-signature, JSON body (tab-separated).
    Returns time.monotonic() at signing: the signatures expire TOLERANCE s after it."""
    rng = random.Random(20241122)
    people = customers(rng)
    signed_at = datetime.now(tz=UTC)
    signed_mono = time.monotonic()
    run = f"{rng.getrandbits(32):08x}"
    check = validators()
    at = signed_at - timedelta(days=2)
    with path.open("w", encoding="utf-8") as out:
        for req in tqdm(range(count), desc="signing batches", unit="req", unit_scale=True):
            events, _ = batch(req, rng, people, at)
            at += timedelta(seconds=30)
            if req < 3:  # the generator, checked against the schemas the server uses
                for index, event in enumerate(events):
                    for error in check[event["type"]].iter_errors(event):
                        raise RunBroken(f"generated event {index} is invalid: {error.message}")
            # ensure_ascii=False: bodies go over the wire as UTF-8; JSON escapes any tab or
            # newline inside strings, so a body never breaks the line format.
            body = json.dumps(events, ensure_ascii=False, separators=(",", ":"))
            headers = events_headers(body.encode(), SECRET, msg_id=f"msg_bench{run}{req:07d}",
                                     timestamp=signed_at)
            out.write(f"{headers['webhook-id']}\t{headers['webhook-timestamp']}\t"
                      f"{headers['webhook-signature']}\t{body}\n")
    return signed_mono


# --- verification -----------------------------------------------------------------------


def stored_counts() -> dict[str, int]:
    with psycopg.connect(DATABASE_URL) as conn:
        row = conn.execute(
            """
            WITH ev AS (
              SELECT id, status, body::jsonb AS events FROM conversations_rawevent
              WHERE provider = 'events'
            ), items AS (
              SELECT e->>'type' AS type FROM ev, jsonb_array_elements(ev.events) e
            )
            SELECT
              (SELECT count(*) FROM ev),
              (SELECT count(*) FROM ev WHERE status <> 'processed'),
              (SELECT count(*) FROM conversations_rawevent WHERE status <> 'processed'),
              (SELECT count(*) FROM items),
              (SELECT count(*) FROM items WHERE type = 'message.created'),
              (SELECT count(*) FROM items WHERE type = 'message.status'),
              (SELECT count(*) FROM conversations_message m JOIN ev ON m.raw_event_id = ev.id),
              (SELECT count(*) FROM conversations_messagestatusevent s
                 JOIN ev ON s.raw_event_id = ev.id),
              (SELECT count(*) FROM conversations_messagestatusevent s
                 JOIN ev ON s.raw_event_id = ev.id WHERE s.message_id IS NULL),
              (SELECT count(*) FROM conversations_message),
              (SELECT count(*) FROM conversations_conversation),
              (SELECT coalesce(sum(message_count), 0) FROM conversations_conversation)
            """
        ).fetchone()
    assert row is not None
    keys = ["raw_events", "raw_not_processed", "all_raw_not_processed", "events",
            "created_events", "status_events", "messages", "status_rows", "status_unjoined",
            "all_messages", "conversations", "conversation_message_count"]
    return dict(zip(keys, row, strict=True))


def stored_check(counts: dict[str, int], result: WrkResult) -> list[str]:
    """Every 2xx batch stored once, plus at most the batches cut off in flight (see
    bench/ingest.py stored_check); every event of every stored batch applied once."""
    problems = []
    stored = counts["raw_events"]
    cut_off = result.sent - result.responses
    if stored < result.ok:
        problems.append(f"lost: {result.ok} batches answered 2xx but only {stored} stored")
    if stored > result.ok + cut_off:
        problems.append(f"stored {stored} batches > 2xx {result.ok} + cut off {cut_off}")
    if counts["events"] != stored * BATCH:
        problems.append(f"{counts['events']} events in {stored} stored batches of {BATCH}")
    if counts["messages"] != counts["created_events"]:
        problems.append(f"Message rows {counts['messages']} != message.created events "
                        f"{counts['created_events']} in the stored batches")
    if counts["status_rows"] != counts["status_events"]:
        problems.append(f"status rows {counts['status_rows']} != message.status events "
                        f"{counts['status_events']} in the stored batches")
    if counts["status_unjoined"]:
        problems.append(f"{counts['status_unjoined']} status reports not joined to a message")
    if counts["all_raw_not_processed"]:
        problems.append(f"{counts['all_raw_not_processed']} raw events not processed")
    if counts["conversation_message_count"] != counts["all_messages"]:
        problems.append("conversation message counts do not add up to the messages "
                        f"({counts['conversation_message_count']} != {counts['all_messages']})")
    return problems


# --- run --------------------------------------------------------------------------------


def phase(wrk: str, env: dict[str, str], port: int, label: str, path: str,
          requests_file: Path, floor_file: Path, request_format: str,
          before_run: Any = None) -> WrkResult:
    """A fresh gunicorn: 3 s warm-up on /healthz, one timed run, graceful stop."""
    print(f"gunicorn: {bench.WORKERS} {bench.WORKER_CLASS} workers on 127.0.0.1:{port}",
          flush=True)
    server = bench.gunicorn_start(env, port)
    try:
        bench.gunicorn_wait(server, port)
        bench.wrk_run(wrk, "warm-up", server.pid, port, bench.FLOOR_PATH, floor_file, 3,
                      db_name=DB_NAME)
        if before_run:
            before_run()
        return bench.wrk_run(wrk, label, server.pid, port, path, requests_file,
                             bench.SECONDS, db_name=DB_NAME, request_format=request_format)
    finally:
        bench.gunicorn_stop(server)


def report(events: WrkResult, counts: dict[str, int], twilio: WrkResult,
           twilio_counts: dict[str, int]) -> None:
    per_second = events.per_second * BATCH
    cut_off = events.sent - events.responses
    print(f"""
== bench-events: gunicorn {bench.WORKERS} {bench.WORKER_CLASS} workers x {bench.THREADS} \
thread(s), PostgreSQL, wrk -c{bench.CONNECTIONS} -t{bench.WRK_THREADS}, {bench.SECONDS} s each ==
batched POST {EVENTS_PATH} ({BATCH} events/request): {events.per_second:7.1f} req/s = \
{per_second:8.0f} events/s   p50 {events.ms('p50'):7.2f} ms   p99 {events.ms('p99'):7.2f} ms   \
max {events.ms('max'):.1f} ms
single  POST {bench.WEBHOOK_PATH} (Twilio, 1 event/request): {twilio.per_second:8.0f} events/s   \
p50 {twilio.ms('p50'):7.2f} ms   p99 {twilio.ms('p99'):7.2f} ms
batched / single events/s: {per_second / twilio.per_second:.1f}x
non-2xx responses: {events.non2xx} (single: {twilio.non2xx}); socket errors: \
{sum(events.errors.values())} (single: {sum(twilio.errors.values())})
stored  batched: RawEvent {counts['raw_events']} = {events.ok} answered 2xx + \
{counts['raw_events'] - events.ok} cut off in flight (of {cut_off} unanswered); \
{counts['events']} events: Message {counts['messages']} (= message.created \
{counts['created_events']}), status reports {counts['status_rows']} (= message.status \
{counts['status_events']}, all joined)
        single:  RawEvent {twilio_counts['raw_events']}, Message {twilio_counts['messages']} \
= {twilio.ok} answered 2xx + {twilio_counts['raw_events'] - twilio.ok} cut off in flight
        all: Conversation {counts['conversations']} (message_count sum \
{counts['conversation_message_count']} = Message {counts['all_messages']}), raw events not \
processed {counts['all_raw_not_processed']}
cpu     cores busy (CPU ms per request) by group, the machine has {os.cpu_count()}:
  batched: {events.cpu_line()}
  single:  {twilio.cpu_line()}

target
  events/s >= {TARGET_EVENTS:.0f} (batched): {per_second:8.0f}   \
{verdict(per_second >= TARGET_EVENTS)}
""", flush=True)
    for label, result in (("batched", events), ("single", twilio)):
        foreign = result.cpu["other processes"] / result.seconds
        if foreign > 0.15:
            print(f"WARNING: other processes kept {foreign:.2f} cores busy during the {label} "
                  "run: its figures are lower than this machine gives when quiet.", flush=True)


def main() -> int:
    wrk = bench.ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        env = bench.server_env(tmp, DATABASE_URL)
        env["HANDOFF_AUDITOR_EVENTS_SECRETS"] = SECRET
        print(f"database {DB_NAME}: drop, create, migrate", flush=True)
        bench.database_recreate(DB_NAME)
        bench.migrate(env)

        # The single-event figure: bench-ingest's webhook phase. The Twilio signature covers
        # the URL, so these are signed for the port that server listens on.
        floor_file = Path(tmp, "floor.txt")
        hooks_file = Path(tmp, "webhooks.txt")
        port = bench.free_port()
        signature, body = bench.requests_write(
            hooks_file, f"http://127.0.0.1:{port}{bench.WEBHOOK_PATH}", bench.REQUESTS)
        floor_file.write_text(f"{signature}\t{body}\n", encoding="utf-8")
        twilio = phase(wrk, env, port, "single (Twilio)", bench.WEBHOOK_PATH, hooks_file,
                       floor_file, "twilio")
        twilio_counts = bench.stored_counts(DATABASE_URL)
        problems = bench.wrk_check("single", twilio)
        problems += bench.stored_check(twilio_counts, twilio)
        hooks_file.unlink()

        # Batches, signed now: the whole run must stay within the 5-minute tolerance.
        events_file = Path(tmp, "events.txt")
        signed = requests_write(events_file, REQUESTS)

        def in_time() -> None:
            left = TOLERANCE - (time.monotonic() - signed)
            if left < bench.SECONDS + 20:
                raise RunBroken(f"signatures would expire mid-run ({left:.0f} s left); "
                                "lower BENCH_EVENT_REQUESTS or BENCH_SECONDS")

        events = phase(wrk, env, bench.free_port(), "batched (events)", EVENTS_PATH,
                       events_file, floor_file, "events", before_run=in_time)
        counts = stored_counts()
        report(events, counts, twilio, twilio_counts)
        problems += bench.wrk_check("batched", events) + stored_check(counts, events)
        if events.exhausted_threads:
            problems.append("(for the batches: raise BENCH_EVENT_REQUESTS)")
        if problems:
            raise RunBroken("\n".join(problems))
        print("run OK: nothing lost, nothing stored twice, every response 2xx")
    return 0


if __name__ == "__main__":
    bench.cli(main, "bench-events")
