"""What the benchmarks share: paths and knobs, the wrk result, where the CPU went (this
process tree and PostgreSQL's backends), and the servers they start (a database made anew,
gunicorn, the Celery broker). `bench/ingest.py` re-exports it as `bench`, which the other
benchmarks import."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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

BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/10")
CELERY_RUN = os.environ.get("BENCH_CELERY", "1") != "0"
# How long the applier may take to drain what a run stored, before the run is cut short.
DRAIN_LIMIT = int(os.environ.get("BENCH_DRAIN_SECONDS", "240"))

TARGET_EVENTS = 1500.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.35


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
    before: CpuSample, after: CpuSample, server_pid: int, wrk_seconds: float,
    applier_pid: int | None = None,
) -> dict[str, float]:
    """CPU seconds per group between two samples: this server's gunicorn processes; the
    Celery applier (worker `applier_pid` and its pool), if any; PostgreSQL (the bench
    database's backends and the server's own processes); wrk; other processes (other
    databases' backends too); the rest (kernel, exited processes)."""
    groups = {"gunicorn": 0.0, "postgres": 0.0, "wrk": wrk_seconds, "other processes": 0.0}
    if applier_pid is not None:
        groups["celery applier"] = 0.0
    for pid, (comm, ppid, ticks) in after.procs.items():
        old = before.procs.get(pid)
        delta = (ticks - (old[2] if old else 0)) / CLOCK_TICKS
        if pid == server_pid or ppid == server_pid:
            groups["gunicorn"] += delta
        elif applier_pid is not None and applier_pid in (pid, ppid):
            groups["celery applier"] += delta
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


def server_env(data_dir: str, database_url: str = DATABASE_URL, *,
               wake: str = "none") -> dict[str, str]:
    """The environment of every process the benches start (gunicorn, manage.py, Celery):
    this checkout first on PYTHONPATH, bench_settings, the bench database, Redis db 10 as
    broker, and how webhooks wake the applier (`wake`: "none" or "task")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_AUDITOR_")}
    # No PUBLIC_BASE_URL: the signed URL is the one gunicorn is reached at.
    env.update(
        DATABASE_URL=database_url,
        TWILIO_AUTH_TOKEN=TOKEN,
        HANDOFF_AUDITOR_DATA_DIR=data_dir,
        HANDOFF_AUDITOR_APPLIER_WAKE=wake,
        CELERY_BROKER_URL=BROKER_URL,
        DJANGO_SETTINGS_MODULE="bench_settings",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def machine_load() -> str:
    """The load average (1, 5, 15 min) as `uptime` prints it, for the figures' lines."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def broker_flush() -> None:
    """Empty the bench's Redis database (db 10 by default: the benches' own)."""
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()


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
