"""`make bench-ingest`: Twilio inbound webhooks through gunicorn into PostgreSQL, against a floor.

1. (Re)create the database `handoff_auditor_bench` and migrate it.
2. Start gunicorn (config.wsgi) on a free loopback port with a Twilio auth token set.
3. Pre-sign unique inbound webhooks (SMS and WhatsApp, a few thousand customers, non-ASCII
   bodies, some media) for the exact URL gunicorn is reached at.
4. wrk, 16 connections: the floor first (POST /healthz, same-sized body: Django's request
   cycle without the database), then the webhooks, each request sent exactly once.
5. Count what the database holds against what wrk was answered, print the figures and
   PASS/MISS per target. Exit 0 on a miss (this reports); non-zero if the run itself broke.

Environment: BENCH_SECONDS (20), BENCH_CONNECTIONS (16), BENCH_WORKERS (3 gunicorn workers),
BENCH_WORKER_CLASS (sync) and BENCH_THREADS (1), BENCH_REQUESTS (webhooks to pre-sign;
default 5,000 per second of run).
See bench/README.md.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.signing import twilio_signature  # noqa: E402 - needs ROOT on sys.path

PY = sys.executable
BIN = Path(PY).parent
LUA = Path(__file__).with_name("replay.lua")

PG = "postgres://postgres@127.0.0.1:5432"
DB_NAME = "handoff_auditor_bench"
DATABASE_URL = f"{PG}/{DB_NAME}"
TOKEN = "bench0123456789abcdef0123456789ab"
WEBHOOK_PATH = "/hooks/twilio/messages/"
FLOOR_PATH = "/healthz"

SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
WRK_THREADS = 2
# Sync workers handle one request at a time, without keep-alive. On 2 cores, 2 to 5 of them
# measured within noise of each other and gthread (2x4, keep-alive) no better; 3 keeps both
# cores busy while some wait on PostgreSQL, without more processes contending for them.
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "sync")
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
# Enough that wrk never runs out: a thread that does stops, and the run counts as broken.
REQUESTS = int(os.environ.get("BENCH_REQUESTS", str(5000 * SECONDS)))
CUSTOMERS = 3000

TARGET_EVENTS = 1000.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.3


class RunBroken(Exception):
    """The run itself failed (errors, lost or duplicated events): not a figure to report."""


@dataclass(frozen=True)
class WrkResult:
    seconds: float
    responses: int
    sent: int
    non2xx: int
    exhausted_threads: int
    errors: dict[str, int]
    latency_us: dict[str, float]
    cpu: dict[str, float]  # CPU seconds by group during the run (see cpu_split)

    @property
    def ok(self) -> int:
        return self.responses - self.non2xx

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds

    def ms(self, name: str) -> float:
        return self.latency_us[name] / 1000

    def cpu_line(self) -> str:
        """Cores each group kept busy, and CPU milliseconds per answered request."""
        return ", ".join(
            f"{name} {sec / self.seconds:.2f} ({sec / max(self.ok, 1) * 1000:.2f} ms/req)"
            for name, sec in self.cpu.items()
        )


# --- where the CPU went -----------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    busy: int  # machine-wide busy ticks (/proc/stat, all CPUs)
    procs: dict[int, tuple[str, int, int]]  # pid -> (command, parent pid, busy ticks)


def cpu_sample(db_name: str = DB_NAME) -> CpuSample:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    procs = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        if comm == "postgres" and _foreign_backend(entry.path, db_name):
            comm = "postgres (other database)"
        rest = raw[raw.rindex(")") + 2 :].split()
        procs[int(entry.name)] = (comm, int(rest[1]), int(rest[11]) + int(rest[12]))
    return CpuSample(user + nice + system + irq + softirq + steal, procs)


def _foreign_backend(proc_dir: str, db_name: str = DB_NAME) -> bool:
    """A PostgreSQL backend serving another database (its title names user and database);
    the server's own processes (WAL writer, checkpointer...) count as ours."""
    try:
        title = Path(proc_dir, "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return ("127.0.0.1(" in title or "[local]" in title) and f" {db_name} " not in title


def cpu_split(
    before: CpuSample, after: CpuSample, server_pid: int, wrk_seconds: float
) -> dict[str, float]:
    """CPU seconds per group between two samples: this server's gunicorn processes;
    PostgreSQL (the bench database's backends and the server's own processes); wrk; other
    processes (other databases' backends too); the rest (kernel, exited processes)."""
    groups = {"gunicorn": 0.0, "postgres": 0.0, "wrk": wrk_seconds, "other processes": 0.0}
    for pid, (comm, ppid, ticks) in after.procs.items():
        old = before.procs.get(pid)
        delta = (ticks - (old[2] if old else 0)) / CLOCK_TICKS
        if pid == server_pid or ppid == server_pid:
            groups["gunicorn"] += delta
        elif comm == "postgres":
            groups["postgres"] += delta
        else:
            groups["other processes"] += delta
    busy = (after.busy - before.busy) / CLOCK_TICKS
    # Interrupt-time network work is charged to no process; so is whatever exited.
    groups["kernel, exited"] = max(0.0, busy - sum(groups.values()))
    return groups


# --- setup ------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not installed: apt-get install -y wrk", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, env=env).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run([*sudo, "apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RunBroken("wrk is still not on PATH after apt-get install")
    return found


def database_recreate(db_name: str = DB_NAME) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db_name}")


def server_env(data_dir: str, database_url: str = DATABASE_URL) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_AUDITOR_")}
    # No PUBLIC_BASE_URL: the signed URL is the one gunicorn is reached at.
    env.update(
        DATABASE_URL=database_url,
        TWILIO_AUTH_TOKEN=TOKEN,
        HANDOFF_AUDITOR_DATA_DIR=data_dir,
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "--verbosity", "0"], cwd=ROOT, env=env,
        check=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    cmd = [
        str(BIN / "gunicorn"), "config.wsgi",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS),
        "--worker-class", WORKER_CLASS, "--threads", str(THREADS),
        "--backlog", "512",
        "--log-level", "warning",
    ]
    # Own session, so stopping it can never reach this process.
    return subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)


# No proxy from the environment, ever: the server is on this machine.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def gunicorn_wait(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RunBroken(f"gunicorn exited with {proc.returncode} while starting")
        try:
            with LOOPBACK.open(f"http://127.0.0.1:{port}{FLOOR_PATH}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RunBroken("gunicorn did not answer within 60 s")


def gunicorn_stop(proc: subprocess.Popen[bytes]) -> None:
    """Graceful: the workers finish the requests they hold, so the counts after are final."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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


def requests_write(path: Path, url: str, count: int) -> tuple[str, str]:
    """Write `count` signed webhooks to `path`; return the median one (the floor's body)."""
    rng = random.Random(20240601)
    people = customers(rng)
    lines = []
    for i in tqdm(range(count), desc="signing webhooks", unit="req", unit_scale=True):
        params = webhook_params(i, rng, rng.choice(people))
        lines.append(f"{twilio_signature(url, params, TOKEN)}\t{urlencode(params)}\n")
    path.write_text("".join(lines), encoding="utf-8")
    median = sorted(lines, key=len)[len(lines) // 2]
    signature, body = median.rstrip("\n").split("\t")
    return signature, body


# --- load -------------------------------------------------------------------------------


def wrk_run(wrk: str, label: str, server_pid: int, port: int, path: str,
            requests_file: Path, seconds: int, *, db_name: str = DB_NAME,
            request_format: str = "twilio") -> WrkResult:
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
        cpu=cpu_split(before, after, server_pid, wrk_cpu),
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


def stored_counts(database_url: str = DATABASE_URL) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            """
            SELECT
              (SELECT count(*) FROM conversations_rawevent),
              (SELECT count(*) FROM conversations_rawevent WHERE status <> 'processed'),
              (SELECT count(*) FROM conversations_message),
              (SELECT count(DISTINCT raw_event_id) FROM conversations_message),
              (SELECT count(*) FROM conversations_conversation),
              (SELECT coalesce(sum(message_count), 0) FROM conversations_conversation)
            """
        ).fetchone()
    assert row is not None
    keys = ["raw_events", "raw_not_processed", "messages", "messages_distinct_raw",
            "conversations", "conversation_message_count"]
    return dict(zip(keys, row, strict=True))


def stored_check(counts: dict[str, int], hooks: WrkResult) -> list[str]:
    """Nothing lost, nothing twice.

    The server commits before it answers, so every 2xx is a stored event. wrk stops with
    up to one request per connection in flight: the server (stopped gracefully before this
    count) may have stored those too, without wrk seeing the answer. So stored equals the
    2xx count plus at most the cut-off requests, and never exceeds what was sent.
    """
    problems = []
    stored = counts["raw_events"]
    cut_off = hooks.sent - hooks.responses
    if not (counts["messages"] == counts["messages_distinct_raw"] == stored):
        problems.append(f"raw events and messages differ: {counts}")
    if counts["raw_not_processed"]:
        problems.append(f"{counts['raw_not_processed']} raw events not processed")
    if counts["conversation_message_count"] != counts["messages"]:
        problems.append("conversation message counts do not add up to the messages "
                        f"({counts['conversation_message_count']} != {counts['messages']})")
    if stored < hooks.ok:
        problems.append(f"lost: {hooks.ok} answered 2xx but only {stored} stored")
    if stored > hooks.ok + cut_off:
        problems.append(f"stored {stored} > 2xx {hooks.ok} + cut off in flight {cut_off}")
    return problems


# --- report -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(floor: WrkResult, hooks: WrkResult, counts: dict[str, int]) -> None:
    ratio = hooks.per_second / floor.per_second
    cut_off = hooks.sent - hooks.responses
    in_flight_stored = counts["raw_events"] - hooks.ok
    print(f"""
== bench-ingest: gunicorn {WORKERS} {WORKER_CLASS} workers x {THREADS} thread(s), \
PostgreSQL, wrk -c{CONNECTIONS} -t{WRK_THREADS}, {SECONDS} s each ==
floor   POST {FLOOR_PATH}:  {floor.per_second:8.0f} req/s   p50 {floor.ms('p50'):6.2f} ms   \
p99 {floor.ms('p99'):6.2f} ms   ({floor.ok} responses)
webhook POST {WEBHOOK_PATH}: {hooks.per_second:8.0f} events/s   p50 {hooks.ms('p50'):6.2f} ms   \
p99 {hooks.ms('p99'):6.2f} ms   max {hooks.ms('max'):.1f} ms
ratio   events/s / floor req/s: {ratio:.2f}
non-2xx responses: {hooks.non2xx} (floor: {floor.non2xx}); socket errors: \
{sum(hooks.errors.values())} (floor: {sum(floor.errors.values())})
stored  RawEvent {counts['raw_events']}, Message {counts['messages']}, \
Conversation {counts['conversations']} (message_count sum {counts['conversation_message_count']})
        = {hooks.ok} answered 2xx + {in_flight_stored} cut off in flight when wrk stopped \
(of {cut_off} issued, unanswered), each stored once
cpu     cores busy (CPU ms per request) by group, the machine has {os.cpu_count()}:
  floor:   {floor.cpu_line()}
  webhook: {hooks.cpu_line()}

targets
  events/s >= {TARGET_EVENTS:.0f}:   {hooks.per_second:8.0f}   \
{verdict(hooks.per_second >= TARGET_EVENTS)}
  p99 < {TARGET_P99_MS:.0f} ms:        {hooks.ms('p99'):8.2f}   \
{verdict(hooks.ms('p99') < TARGET_P99_MS)}
  ratio >= {TARGET_RATIO}:       {ratio:8.2f}   {verdict(ratio >= TARGET_RATIO)}
""", flush=True)
    for label, result in (("floor", floor), ("webhook", hooks)):
        foreign = result.cpu["other processes"] / result.seconds
        if foreign > 0.15:
            print(f"WARNING: other processes kept {foreign:.2f} cores busy during the {label} "
                  "run: its figures are lower than this machine gives when quiet.", flush=True)


def main() -> int:
    wrk = ensure_wrk()
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

        print(f"gunicorn: {WORKERS} sync workers on 127.0.0.1:{port}", flush=True)
        server = gunicorn_start(env, port)
        try:
            gunicorn_wait(server, port)
            # Warm-up (not reported): every worker answers a few before the clock runs.
            wrk_run(wrk, "warm-up", server.pid, port, FLOOR_PATH, floor_file, 3)
            floor = wrk_run(wrk, "floor", server.pid, port, FLOOR_PATH, floor_file, SECONDS)
            hooks = wrk_run(wrk, "webhooks", server.pid, port, WEBHOOK_PATH, hooks_file,
                            SECONDS)
        finally:
            gunicorn_stop(server)
        counts = stored_counts()
        report(floor, hooks, counts)
        problems = wrk_check("floor", floor) + wrk_check("webhooks", hooks)
        problems += stored_check(counts, hooks)
        if problems:
            raise RunBroken("\n".join(problems))
        print("run OK: nothing lost, nothing stored twice, every response 2xx")
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
