"""`make bench-ingest`: Twilio inbound webhooks through gunicorn into PostgreSQL, against a
floor; the webhook only stores (a raw event, pending), the applier applies afterwards.

1. (Re)create the database `handoff_auditor_bench` and migrate it.
2. Start gunicorn (config.wsgi) on a free loopback port with a Twilio auth token set and
   HANDOFF_AUDITOR_APPLIER_WAKE=none: the pure store figure, no applier woken.
3. Pre-sign unique inbound webhooks (SMS and WhatsApp, a few thousand customers, non-ASCII
   bodies, some media) for the exact URL gunicorn is reached at.
4. wrk, 16 connections: the floor first (POST /healthz, same-sized body: Django's request
   cycle without the database), then the webhooks, each request sent exactly once.
5. Count the raw events stored against what wrk was answered (every 2xx stored exactly
   once, all pending); then drain them with `manage.py apply_events` (one applier) and
   report applied events/s separately, and check every raw event became one message.
6. Unless BENCH_CELERY=0: the same webhooks (new ones) through a fresh gunicorn with
   APPLIER_WAKE=task (broker Redis db 10) and one Celery worker as the applier, woken by the
   webhooks while they come in: store figures, applied during and after the run, and the
   lag from stored to applied.
7. Print the figures, the machine's load average with each, and PASS/MISS per target.
   Exit 0 on a miss (this reports); non-zero if the run itself broke.

Environment: BENCH_SECONDS (20), BENCH_CONNECTIONS (16), BENCH_WORKERS (3 gunicorn workers),
BENCH_WORKER_CLASS (sync) and BENCH_THREADS (1), BENCH_REQUESTS (webhooks to pre-sign;
default 5,000 per second of run), BENCH_CELERY (1), BENCH_BROKER_URL
(redis://127.0.0.1:6379/10, flushed by the run). See bench/README.md.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import (  # noqa: E402,F401 - the shared part, re-exported: other benchmarks use `bench.<name>`
    BIN,
    BROKER_URL,
    CELERY_RUN,
    CLOCK_TICKS,
    CONNECTIONS,
    CUSTOMERS,
    DATABASE_URL,
    DB_NAME,
    DRAIN_LIMIT,
    FLOOR_PATH,
    LOOPBACK,
    LUA,
    PG,
    PY,
    REQUESTS,
    ROOT,
    SECONDS,
    TARGET_EVENTS,
    TARGET_P99_MS,
    TARGET_RATIO,
    THREADS,
    TOKEN,
    WEBHOOK_PATH,
    WORKER_CLASS,
    WORKERS,
    WRK_THREADS,
    CpuSample,
    RunBroken,
    WrkResult,
    _foreign_backend,
    broker_flush,
    cpu_sample,
    cpu_split,
    database_recreate,
    ensure_wrk,
    free_port,
    gunicorn_start,
    gunicorn_stop,
    gunicorn_wait,
    machine_load,
    migrate,
    server_env,
)

from tests.support.signing import twilio_signature  # noqa: E402 - needs ROOT on sys.path

# --- requests ---------------------------------------------------------------------------

BUSINESS = {"sms": ["+14155550100", "+447700900100"], "whatsapp": ["+14155238886"]}
COUNTRIES = [  # (calling code prefix, Twilio FromCountry, city)
    ("+1212555", "US", "NEW YORK"), ("+1415555", "US", "SAN FRANCISCO"),
    ("+5215512", "MX", ""), ("+3491123", "ES", ""), ("+4915112", "DE", ""),
    ("+5511987", "BR", ""), ("+8190123", "JP", ""), ("+9665012", "SA", ""),
]
NAMES = ["María José 🌻", "Jürgen Groß", "Zoë", "Саша", "李雷", "أحمد", "Ana", "Chloé ✨",
         "João", "Siobhán", "", "Renée 🙂"]
BODIES = [
    "Hi, I still haven't received my refund for order #{n}. Can I talk to a person?",
    "Hola 👋 mi pedido llegó roto, ¿me pueden ayudar? Adjunto fotos 📷",
    "Bonjour, la livraison n°{n} est en retard depuis 3 jours 😕",
    "Wo ist mein Paket? Bestellung {n}, bitte schnell prüfen!",
    "Olá! Não consigo acessar minha conta… podem ajudar? 🙏",
    "注文番号{n}の配送状況を教えてください。",
    "مرحبا، أريد التحدث مع موظف خدمة العملاء",
    "HUMAN please. The bot keeps looping 🤖🔁",
    "ok",
    "Thanks!! 🎉🎉",
    "Can you resend the invoice for #{n} to my email? Also the address changed to "
    "Calle Mayor 12, 3ºB, 28013 Madrid.",
]
MEDIA_TYPES = ["image/jpeg", "image/png", "audio/ogg", "application/pdf", "video/mp4"]
ACCOUNT = "ACa1b2c3d4e5f60718293a4b5c6d7e8f90"


def customers(rng: random.Random) -> list[tuple[str, str, str, str, str]]:
    """(channel, customer number, business number, country, profile name) per customer."""
    out = []
    for i in range(CUSTOMERS):
        prefix, country, _ = COUNTRIES[i % len(COUNTRIES)]
        number = f"{prefix}{i:05d}"
        channel = "whatsapp" if rng.random() < 0.6 else "sms"
        out.append((channel, number, rng.choice(BUSINESS[channel]), country, rng.choice(NAMES)))
    return out


def webhook_params(i: int, rng: random.Random, customer: tuple[str, ...]) -> dict[str, str]:
    channel, number, business, country, name = customer
    num_media = rng.choice([1, 1, 2]) if rng.random() < 0.12 else 0
    # Unique per request: the index, padded with randomness to Twilio's 34-character shape.
    sid = f"{'MM' if num_media else 'SM'}{i:08x}{rng.getrandbits(96):024x}"
    body = rng.choice(BODIES).format(n=rng.randrange(1000, 99999))
    params = {
        "SmsMessageSid": sid, "SmsSid": sid, "MessageSid": sid, "AccountSid": ACCOUNT,
        "SmsStatus": "received", "Body": body, "NumMedia": str(num_media),
        "NumSegments": str(1 + len(body.encode()) // 140), "ApiVersion": "2010-04-01",
    }
    if channel == "whatsapp":
        params.update(
            From=f"whatsapp:{number}", To=f"whatsapp:{business}", WaId=number.lstrip("+"),
            ProfileName=name, MessageType="image" if num_media else "text",
            ReferralNumMedia="0",
        )
    else:
        params.update(
            From=number, To=business, FromCountry=country, FromCity="", FromState="",
            FromZip="", ToCountry="US", ToState="CA", ToCity="SAN FRANCISCO", ToZip="94105",
        )
    for m in range(num_media):
        params[f"MediaContentType{m}"] = rng.choice(MEDIA_TYPES)
        params[f"MediaUrl{m}"] = (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media/"
            f"ME{rng.getrandbits(128):032x}"
        )
    return params


def requests_write(path: Path, url: str, count: int, *, start: int = 0) -> tuple[str, str]:
    """Write `count` signed webhooks to `path` (message sids from index `start` on, so two
    sets never share one); return the median one (the floor's body)."""
    rng = random.Random(20240601 + start)
    people = customers(rng)
    lines = []
    for i in tqdm(range(start, start + count), desc="signing webhooks", unit="req",
                  unit_scale=True):
        params = webhook_params(i, rng, rng.choice(people))
        lines.append(f"{twilio_signature(url, params, TOKEN)}\t{urlencode(params)}\n")
    path.write_text("".join(lines), encoding="utf-8")
    median = sorted(lines, key=len)[len(lines) // 2]
    signature, body = median.rstrip("\n").split("\t")
    return signature, body


# --- load -------------------------------------------------------------------------------


def wrk_run(wrk: str, label: str, server_pid: int, port: int, path: str,
            requests_file: Path, seconds: int, *, db_name: str = DB_NAME,
            request_format: str = "twilio", applier_pid: int | None = None) -> WrkResult:
    cmd = [
        wrk, f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
        "--latency", "-s", str(LUA), f"http://127.0.0.1:{port}{path}",
        "--", str(requests_file), path, str(WRK_THREADS), request_format,
    ]
    print(f"wrk: {label} — POST {path}, {CONNECTIONS} connections, {WRK_THREADS} threads, "
          f"{seconds} s", flush=True)
    # Line-buffered, so the "Running" line (printed once every thread has loaded its
    # requests) arrives when printed: the CPU accounting starts there.
    stdbuf = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
    proc = subprocess.Popen([*stdbuf, *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    head = []
    for line in proc.stdout:
        head.append(line)
        if line.startswith("Running"):
            break
    before = cpu_sample(db_name)
    started = time.monotonic()
    with tqdm(total=seconds, desc=f"  {label}", unit="s",
              bar_format="{desc}: {bar} {n:.0f}/{total} s") as bar:
        while time.monotonic() - started < seconds and proc.poll() is None:
            time.sleep(0.25)
            bar.n = min(seconds, round(time.monotonic() - started))
            bar.refresh()
    # wait4 rather than wait: wrk's CPU time is only known once it has exited.
    _, status, usage = os.wait4(proc.pid, 0)
    after = cpu_sample(db_name)
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = "".join(head) + proc.stdout.read()
    proc.stdout.close()
    wrk_before = before.procs.get(proc.pid, ("", 0, 0))[2] / CLOCK_TICKS
    wrk_cpu = usage.ru_utime + usage.ru_stime - wrk_before
    if proc.returncode != 0:
        raise RunBroken(f"wrk exited with {proc.returncode}:\n{output}")
    found = [ln for ln in output.splitlines() if ln.startswith("BENCH_RESULT ")]
    if not found:
        raise RunBroken(f"wrk printed no result:\n{output}")
    data = json.loads(found[-1].removeprefix("BENCH_RESULT "))
    return WrkResult(
        seconds=data["duration_us"] / 1e6, responses=data["responses"], sent=data["sent"],
        non2xx=data["non2xx"], exhausted_threads=data["exhausted_threads"],
        errors=data["errors"], latency_us=data["latency_us"],
        cpu=cpu_split(before, after, server_pid, wrk_cpu, applier_pid),
    )


def wrk_check(label: str, result: WrkResult) -> list[str]:
    problems = []
    errors = {k: v for k, v in result.errors.items() if v}
    if errors:
        problems.append(f"{label}: socket/timeout errors {errors}")
    if result.non2xx:
        problems.append(f"{label}: {result.non2xx} non-2xx responses")
    if result.exhausted_threads:
        problems.append(f"{label}: wrk ran out of pre-signed webhooks; raise BENCH_REQUESTS")
    return problems


# --- verification -----------------------------------------------------------------------


def stored_counts(database_url: str = DATABASE_URL, *, after_id: int = 0) -> dict[str, int]:
    """Raw events (with id > after_id) by status, and the rows the applier made of them."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            """
            WITH raw AS (SELECT id, status FROM conversations_rawevent WHERE id > %(after)s)
            SELECT
              (SELECT count(*) FROM raw),
              (SELECT count(*) FROM raw WHERE status = 'pending'),
              (SELECT count(*) FROM raw WHERE status = 'processed'),
              (SELECT count(*) FROM raw WHERE status = 'failed'),
              (SELECT count(*) FROM conversations_message m JOIN raw ON m.raw_event_id = raw.id),
              (SELECT count(DISTINCT raw_event_id) FROM conversations_message m
                 JOIN raw ON m.raw_event_id = raw.id),
              (SELECT count(*) FROM conversations_message),
              (SELECT count(*) FROM conversations_conversation),
              (SELECT coalesce(sum(message_count), 0) FROM conversations_conversation)
            """, {"after": after_id},
        ).fetchone()
    assert row is not None
    keys = ["raw_events", "pending", "processed", "failed", "messages",
            "messages_distinct_raw", "all_messages", "conversations",
            "conversation_message_count"]
    return dict(zip(keys, row, strict=True))


def last_raw_id(database_url: str = DATABASE_URL) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM conversations_rawevent").fetchone()
    assert row is not None
    return int(row[0])


def stored_check(counts: dict[str, int], hooks: WrkResult) -> list[str]:
    """Every answered 2xx stored exactly once, nothing more.

    The server commits before it answers, so every 2xx is a stored raw event; the unique
    (provider, dedupe key) keeps each at most once. wrk stops with up to one request per
    connection in flight: the server (stopped gracefully before this count) may have stored
    those too, without wrk seeing the answer. So stored equals the 2xx count plus at most the
    cut-off requests, and never exceeds what was sent.
    """
    problems = []
    stored = counts["raw_events"]
    cut_off = hooks.sent - hooks.responses
    if stored < hooks.ok:
        problems.append(f"lost: {hooks.ok} answered 2xx but only {stored} stored")
    if stored > hooks.ok + cut_off:
        problems.append(f"stored {stored} > 2xx {hooks.ok} + cut off in flight {cut_off}")
    return problems


def applied_check(counts: dict[str, int]) -> list[str]:
    """After the drain: every stored raw event applied once, into exactly one message."""
    problems = []
    if counts["pending"] or counts["failed"]:
        problems.append(f"after the drain: {counts['pending']} pending, {counts['failed']} "
                        f"failed of {counts['raw_events']} raw events")
    if not (counts["messages"] == counts["messages_distinct_raw"] == counts["raw_events"]):
        problems.append(f"raw events and messages differ: {counts}")
    if counts["conversation_message_count"] != counts["all_messages"]:
        problems.append("conversation message counts do not add up to the messages "
                        f"({counts['conversation_message_count']} != {counts['all_messages']})")
    return problems


# --- applying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Drain:
    events: int  # raw events applied (processed or failed)
    seconds: float
    cpu_seconds: float  # the appliers' own CPU (Python, with start-up), from their rusage
    # CPU of PostgreSQL (the bench database's backends and the server's own processes),
    # sampled every 0.25 s: a backend's last quarter second before it exits is missed.
    postgres_seconds: float
    load: str
    outputs: list[str]
    # Applied events/s from the first progress seen to the end: without the appliers'
    # start-up (Python, Django; a second or more on a busy machine).
    steady_per_second: float = 0.0
    # (raw events applied so far, the largest applier's resident set in MiB), every tick.
    rss: tuple[tuple[int, float], ...] = ()

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        per = max(self.events, 1)
        return (f"{self.events} events in {self.seconds:.1f} s = {self.per_second:,.0f} "
                f"applied events/s ({self.steady_per_second:,.0f} without start-up); CPU per "
                f"event: applier {self.cpu_seconds / per * 1000:.2f} ms, PostgreSQL "
                f"{self.postgres_seconds / per * 1000:.2f} ms")


def pending_count(database_url: str, after_id: int = 0) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM conversations_rawevent WHERE status = 'pending' AND id > %s",
            [after_id]).fetchone()
    assert row is not None
    return int(row[0])


def rss_mib(pid: int) -> float:
    """A live process's resident set (VmRSS) in MiB; 0 once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def drain(env: dict[str, str], appliers: int, label: str, *, db_name: str = DB_NAME,
          database_url: str = DATABASE_URL) -> Drain:
    """Run `appliers` processes of `manage.py apply_events` at once on what is pending; a
    progress bar follows the pending count. Timed from their start to the last one's exit."""
    total = pending_count(database_url)
    before = cpu_sample(db_name)
    started = time.monotonic()
    procs = [subprocess.Popen(
        [PY, "manage.py", "apply_events", "--no-progress"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        for _ in range(appliers)]
    cpu, outputs, codes = 0.0, [], {}
    first: tuple[float, int] | None = None  # (when, how many applied) at the first progress
    # PostgreSQL CPU: the appliers' backends exit with them, so keep each one's last sample.
    seen: dict[int, int] = {}
    rss: list[tuple[int, float]] = []
    try:
        with tqdm(total=total, desc=f"  {label}", unit="event", unit_scale=True) as bar:
            while len(codes) < len(procs):
                if time.monotonic() - started > DRAIN_LIMIT:
                    raise RunBroken(f"{label}: not drained within {DRAIN_LIMIT} s "
                                    "(BENCH_DRAIN_SECONDS)")
                time.sleep(0.25)
                for p in procs:
                    if p.pid in codes:
                        continue
                    # wait4, not poll: the appliers' CPU time comes with their exit.
                    pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                    if pid:
                        codes[p.pid] = os.waitstatus_to_exitcode(status)
                        p.returncode = codes[p.pid]
                        cpu += usage.ru_utime + usage.ru_stime
                resident = max((rss_mib(p.pid) for p in procs if p.pid not in codes),
                               default=0.0)
                bar.n = total - pending_count(database_url)
                bar.refresh()
                if resident:
                    rss.append((int(bar.n), resident))
                now = cpu_sample(db_name)
                for pid, (comm, _, ticks) in now.procs.items():
                    if comm == "postgres":
                        seen[pid] = ticks
                if first is None and bar.n:
                    first = (time.monotonic(), int(bar.n))
    finally:
        for p in procs:
            if p.pid not in codes:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    seconds = time.monotonic() - started
    for p in procs:
        assert p.stdout is not None
        outputs.append(p.stdout.read().strip())
        p.stdout.close()
        if p.returncode != 0:
            raise RunBroken(f"{label}: apply_events exited {p.returncode}:\n{outputs[-1]}")
    postgres = sum(ticks - (before.procs[pid][2] if pid in before.procs else 0)
                   for pid, ticks in seen.items()) / CLOCK_TICKS
    left = pending_count(database_url)
    steady = 0.0
    if first is not None and started + seconds > first[0]:
        steady = (total - left - first[1]) / (started + seconds - first[0])
    return Drain(total - left, seconds, cpu, postgres, machine_load(), outputs, steady,
                 tuple(rss))


def celery_start(env: dict[str, str], concurrency: int, log: Path) -> subprocess.Popen[bytes]:
    """A Celery worker on the default queue only (the applier's task; scoring goes to a
    queue nobody consumes, see bench_settings), `concurrency` prefork processes; returns
    once it says it is ready."""
    cmd = [str(BIN / "celery"), "-A", "config", "worker", "--pool", "prefork",
           "--concurrency", str(concurrency), "--queues", "celery", "--hostname",
           f"bench-applier-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
           "--without-heartbeat", "--loglevel", "INFO"]
    out = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunBroken(f"celery exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if " ready." in log.read_text(errors="replace"):
            return proc
        time.sleep(0.3)
    celery_stop(proc)
    raise RunBroken("the Celery worker was not ready within 60 s")


def celery_stop(proc: subprocess.Popen[bytes]) -> None:
    """Cold shutdown of the worker and its pool (its whole session): a task it holds rolls
    back and stays pending (acks_late), which is what the counts after it expect."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGQUIT)
        proc.wait(timeout=20)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def lag_ms(database_url: str, after_id: int, at_end: float | None = None) -> dict[str, float]:
    """Stored (RawEvent.received_at, taken in the webhook's transaction) to applied
    (processed_at, in the applier's), over the raw events with id > after_id: p50, p99, max
    in ms. Events still pending count with their age at `at_end` (epoch seconds), a lower
    bound, so that a backlog is not hidden by leaving it out."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            """
            WITH lag AS (
              SELECT extract(epoch FROM coalesce(processed_at, to_timestamp(%(end)s))
                                        - received_at) * 1000 AS ms
              FROM conversations_rawevent WHERE id > %(after)s
            )
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms) FROM lag
            """, {"after": after_id, "end": at_end if at_end is not None else time.time()},
        ).fetchone()
    assert row is not None
    return {"p50": float(row[0] or 0), "p99": float(row[1] or 0), "max": float(row[2] or 0)}


def wait_applied(database_url: str, after_id: int, label: str, limit: float) -> float:
    """Wait (progress bar) until nothing with id > after_id is pending, at most `limit` s;
    returns the seconds waited."""
    started = time.monotonic()
    total = pending_count(database_url, after_id)
    with tqdm(total=total, desc=f"  {label}", unit="event", unit_scale=True) as bar:
        while time.monotonic() - started < limit:
            left = pending_count(database_url, after_id)
            bar.n = total - left
            bar.refresh()
            if not left:
                break
            time.sleep(0.5)
    return time.monotonic() - started


# --- report -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


@dataclass(frozen=True)
class CeleryRun:
    hooks: WrkResult
    load: str
    applied_during: int  # raw events of the run applied when wrk stopped
    stored: int
    drain_after: float  # seconds from wrk's end until nothing was pending
    pending_after: int  # still pending when the wait gave up
    lag: dict[str, float]


def report(floor: WrkResult, hooks: WrkResult, counts: dict[str, int], loads: dict[str, str],
           drained: Drain, after: dict[str, int], celery: CeleryRun | None) -> None:
    ratio = hooks.per_second / floor.per_second
    cut_off = hooks.sent - hooks.responses
    in_flight_stored = counts["raw_events"] - hooks.ok
    print(f"""
== bench-ingest: gunicorn {WORKERS} {WORKER_CLASS} workers x {THREADS} thread(s), \
PostgreSQL, wrk -c{CONNECTIONS} -t{WRK_THREADS}, {SECONDS} s each ==
store only: APPLIER_WAKE=none, the webhook stores a pending raw event and answers; the
applier runs afterwards (manage.py apply_events, one process)
floor   POST {FLOOR_PATH}:  {floor.per_second:8.0f} req/s   p50 {floor.ms('p50'):6.2f} ms   \
p99 {floor.ms('p99'):6.2f} ms   ({floor.ok} responses)   [{loads['floor']}]
webhook POST {WEBHOOK_PATH}: {hooks.per_second:8.0f} events/s   p50 {hooks.ms('p50'):6.2f} ms   \
p99 {hooks.ms('p99'):6.2f} ms   max {hooks.ms('max'):.1f} ms   [{loads['webhooks']}]
ratio   events/s / floor req/s: {ratio:.2f}
non-2xx responses: {hooks.non2xx} (floor: {floor.non2xx}); socket errors: \
{sum(hooks.errors.values())} (floor: {sum(floor.errors.values())})
stored  RawEvent {counts['raw_events']} (pending {counts['pending']}) = {hooks.ok} answered \
2xx + {in_flight_stored} cut off in flight when wrk stopped (of {cut_off} issued, \
unanswered), each stored once
cpu     cores busy (CPU ms per request) by group, the machine has {os.cpu_count()}:
  floor:   {floor.cpu_line()}
  webhook: {hooks.cpu_line()}
applied (apply_events, 1 applier, after the run): {drained.line()}   [{drained.load}]
        RawEvent processed {after['processed']}, failed {after['failed']}; Message \
{after['messages']} (one per raw event), Conversation {after['conversations']}""", flush=True)
    if celery:
        c, h = celery, celery.hooks
        print(f"""\
with a Celery worker as applier (APPLIER_WAKE=task, broker {BROKER_URL}, 1 worker process,
woken by the webhooks; it shares the 2 cores with gunicorn):
webhook POST {WEBHOOK_PATH}: {h.per_second:8.0f} events/s   p50 {h.ms('p50'):6.2f} ms   \
p99 {h.ms('p99'):6.2f} ms   max {h.ms('max'):.1f} ms   [{c.load}]
        stored {c.stored}; applied while wrk ran {c.applied_during} \
({c.applied_during / h.seconds:,.0f} events/s); all applied {c.drain_after:.1f} s after wrk \
stopped{f', {c.pending_after} still pending' if c.pending_after else ''}
        lag stored -> applied: p50 {c.lag['p50']:,.0f} ms, p99 {c.lag['p99']:,.0f} ms, max \
{c.lag['max']:,.0f} ms
  cpu: {h.cpu_line()}""", flush=True)
    print(f"""
targets (store only)
  events/s >= {TARGET_EVENTS:.0f}:   {hooks.per_second:8.0f}   \
{verdict(hooks.per_second >= TARGET_EVENTS)}
  p99 < {TARGET_P99_MS:.0f} ms:        {hooks.ms('p99'):8.2f}   \
{verdict(hooks.ms('p99') < TARGET_P99_MS)}
  ratio >= {TARGET_RATIO}:      {ratio:8.2f}   {verdict(ratio >= TARGET_RATIO)}
""", flush=True)
    results = [("floor", floor), ("webhook", hooks)] + ([("celery", celery.hooks)]
                                                         if celery else [])
    for label, result in results:
        foreign = result.cpu["other processes"] / result.seconds
        if foreign > 0.15:
            print(f"WARNING: other processes kept {foreign:.2f} cores busy during the {label} "
                  "run: its figures are lower than this machine gives when quiet.", flush=True)


def celery_run(wrk: str, tmp: str) -> tuple[CeleryRun, list[str]]:
    """New webhooks through a fresh gunicorn with APPLIER_WAKE=task and one Celery worker."""
    env = server_env(tmp, wake="task")
    broker_flush()
    start_id = last_raw_id()
    port = free_port()
    hooks_file, floor_file = Path(tmp, "webhooks-celery.txt"), Path(tmp, "floor-celery.txt")
    signature, body = requests_write(hooks_file, f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
                                     REQUESTS, start=REQUESTS)
    floor_file.write_text(f"{signature}\t{body}\n", encoding="utf-8")
    worker = celery_start(env, 1, Path(tmp, "celery.log"))
    print(f"celery: 1 worker process (APPLIER_WAKE=task, {BROKER_URL}); gunicorn on "
          f"127.0.0.1:{port}", flush=True)
    try:
        server = gunicorn_start(env, port)
        try:
            gunicorn_wait(server, port)
            wrk_run(wrk, "warm-up", server.pid, port, FLOOR_PATH, floor_file, 3)
            hooks = wrk_run(wrk, "webhooks, Celery applier", server.pid, port, WEBHOOK_PATH,
                            hooks_file, SECONDS, applier_pid=worker.pid)
            load = machine_load()
            ended = time.time()
            counts = stored_counts(after_id=start_id)
        finally:
            gunicorn_stop(server)
        applied_during = counts["processed"] + counts["failed"]
        waited = wait_applied(DATABASE_URL, start_id, "Celery applier, after the run",
                              DRAIN_LIMIT)
        pending_after = pending_count(DATABASE_URL, start_id)
        lag = lag_ms(DATABASE_URL, start_id, time.time() if pending_after else ended)
    finally:
        celery_stop(worker)
    hooks_file.unlink()
    after = stored_counts(after_id=start_id)
    problems = wrk_check("celery webhooks", hooks) + stored_check(counts, hooks)
    if not pending_after:
        problems += applied_check(after)
    return CeleryRun(hooks, load, applied_during, counts["raw_events"], waited,
                     pending_after, lag), problems


def main() -> int:
    wrk = ensure_wrk()
    print(f"machine: {machine_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        env = server_env(tmp)
        print(f"database {DB_NAME}: drop, create, migrate", flush=True)
        database_recreate()
        migrate(env)
        port = free_port()
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        hooks_file, floor_file = Path(tmp, "webhooks.txt"), Path(tmp, "floor.txt")
        signature, body = requests_write(hooks_file, url, REQUESTS)
        floor_file.write_text(f"{signature}\t{body}\n", encoding="utf-8")

        print(f"gunicorn: {WORKERS} sync workers on 127.0.0.1:{port}, APPLIER_WAKE=none "
              "(store only)", flush=True)
        loads = {}
        server = gunicorn_start(env, port)
        try:
            gunicorn_wait(server, port)
            # Warm-up (not reported): every worker answers a few before the clock runs.
            wrk_run(wrk, "warm-up", server.pid, port, FLOOR_PATH, floor_file, 3)
            floor = wrk_run(wrk, "floor", server.pid, port, FLOOR_PATH, floor_file, SECONDS)
            loads["floor"] = machine_load()
            hooks = wrk_run(wrk, "webhooks", server.pid, port, WEBHOOK_PATH, hooks_file,
                            SECONDS)
            loads["webhooks"] = machine_load()
        finally:
            gunicorn_stop(server)
        hooks_file.unlink()
        counts = stored_counts()
        problems = wrk_check("floor", floor) + wrk_check("webhooks", hooks)
        problems += stored_check(counts, hooks)
        if counts["pending"] != counts["raw_events"]:
            problems.append(f"APPLIER_WAKE=none, yet {counts['raw_events'] - counts['pending']}"
                            " raw events were applied during the run")
        print(f"applier: manage.py apply_events on {counts['pending']} pending raw events",
              flush=True)
        drained = drain(env, 1, "apply_events, 1 applier")
        after = stored_counts()
        problems += applied_check(after)
        celery = None
        if CELERY_RUN:
            celery, more = celery_run(wrk, tmp)
            problems += more
        report(floor, hooks, counts, loads, drained, after, celery)
        if problems:
            raise RunBroken("\n".join(problems))
        print("run OK: every answered webhook stored exactly once and applied into one "
              "message; every response 2xx")
    return 0


def cli(run: Callable[[], int], name: str) -> None:
    """Exit with run()'s status; a broken run prints why and exits 1."""
    try:
        sys.exit(run())
    except RunBroken as exc:
        print(f"\n{name} BROKEN: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli(main, "bench-ingest")
