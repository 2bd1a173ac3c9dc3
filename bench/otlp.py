"""`make bench-otlp`: OpenTelemetry spans in over OTLP/HTTP (POST /hooks/otlp/v1/traces),
accepted per second and applied per second, each with a floor measured in the same run.

Everything runs in the database `handoff_auditor_bench_otlp` (or BENCH_OTLP_DB), dropped,
re-created and migrated first.

1. Floor for accepting: `GET /healthz` (a bare Django view) from the same client threads
   for BENCH_OTLP_FLOOR_SECONDS: requests/s.
2. Accept: a gunicorn with APPLIER_WAKE=none takes BENCH_OTLP_SPANS spans as protobuf
   exports, gzip, BENCH_OTLP_SPANS_PER_REQUEST per request (AI turns of 5 spans: agent,
   LLM call, tool, retrieval, LLM call, over BENCH_OTLP_CONVERSATIONS conversations), from
   BENCH_OTLP_THREADS client threads: spans/s and requests/s accepted, latency p50/p99,
   the ratio of requests/s to the floor's.
3. Apply: `manage.py apply_events` (1 applier) drains them: spans/s applied, CPU per span.
4. Floor for applying: the same AI steps as `ai.step` events through the signed events
   endpoint (batches of 100), drained the same way: the one ai.step path without OTLP.
   The ratio says what the OTLP normalizer costs on top.
5. Checks: every request answered 2xx with no rejected span, one raw event and one AI step
   per span, none failed; the first requests posted again store nothing.
   Target: >= 5,000 spans/s applied (printed PASS/MISS). Exit 0 on a missed target (this
   reports); non-zero if the run itself broke.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ingest as bench  # bench/ is sys.path[0] when run as a script
import psycopg
from ingest import Drain, RunBroken, verdict
from tqdm import tqdm

from tests.support.otlp import export, span  # ingest put ROOT on sys.path
from tests.support.signing import events_headers

DB_NAME = os.environ.get("BENCH_OTLP_DB", "handoff_auditor_bench_otlp")
DATABASE_URL = f"{bench.PG}/{DB_NAME}"
SPANS = int(os.environ.get("BENCH_OTLP_SPANS", "20000"))
PER_REQUEST = int(os.environ.get("BENCH_OTLP_SPANS_PER_REQUEST", "100"))
CONVERSATIONS = int(os.environ.get("BENCH_OTLP_CONVERSATIONS", "2000"))
THREADS = int(os.environ.get("BENCH_OTLP_THREADS", "4"))
FLOOR_SECONDS = float(os.environ.get("BENCH_OTLP_FLOOR_SECONDS", "5"))
TARGET_APPLIED = 5000.0
SECRET = "whsec_YmVuY2gtb3RscC1zZWNyZXQtMDEyMzQ1Njc4OWFi"
OTLP_PATH = "/hooks/otlp/v1/traces"


@dataclass
class Posted:
    requests: int
    spans: int
    seconds: float
    failures: list[str]
    latencies: list[float]
    load: str

    def line(self, unit: str = "spans") -> str:
        lat = sorted(self.latencies) or [0.0]
        p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (f"{self.spans} {unit} in {self.requests} requests, {self.seconds:.1f} s = "
                f"{self.spans / self.seconds:,.0f} {unit}/s, "
                f"{self.requests / self.seconds:,.1f} requests/s; latency p50 {p50:.0f} ms, "
                f"p99 {p99:.0f} ms ({self.load})")


def _turn(trace: int, conversation: str, t0: int) -> list:
    ms = 1_000_000
    conv = {"gen_ai.conversation.id": conversation}
    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 812,
            "gen_ai.usage.output_tokens": 41,
            "gen_ai.input.messages": '[{"role": "user", "parts": [{"type": "text", '
                                     '"content": "Where is my order?"}]}]'}
    return [
        span(trace, 1, "invoke_agent", {"gen_ai.operation.name": "invoke_agent",
                                        "gen_ai.agent.name": "Brisa", **conv},
             start_ns=t0, duration_ms=4000),
        span(trace, 2, "chat", {**chat, "gen_ai.response.finish_reasons": ["tool_calls"]},
             parent=1, start_ns=t0 + 50 * ms, duration_ms=1200),
        span(trace, 3, "execute_tool", {"gen_ai.operation.name": "execute_tool",
                                        "gen_ai.tool.name": "order_status",
                                        "gen_ai.tool.call.arguments": '{"order": "4411"}',
                                        "gen_ai.tool.call.result": '{"status": "shipped"}'},
             parent=1, start_ns=t0 + 1300 * ms, duration_ms=900),
        span(trace, 4, "retrieval", {"gen_ai.operation.name": "retrieval"},
             parent=1, start_ns=t0 + 2250 * ms, duration_ms=400),
        span(trace, 5, "chat", {**chat, "gen_ai.response.finish_reasons": ["stop"]},
             parent=1, start_ns=t0 + 2700 * ms, duration_ms=1200),
    ]


def otlp_bodies(seed: int, first_trace: int) -> list[bytes]:
    rng = random.Random(seed)
    now = datetime.now(tz=UTC) - timedelta(hours=1)
    spans, trace = [], first_trace
    while len(spans) < SPANS:
        t0 = int((now + timedelta(milliseconds=len(spans))).timestamp() * 1e9)
        spans += _turn(trace, f"bench-{rng.randrange(CONVERSATIONS)}", t0)
        trace += 1
    spans = spans[:SPANS]
    return [gzip.compress(export(*spans[i:i + PER_REQUEST],
                                 resource={"service.name": "bench-agent"}).SerializeToString())
            for i in range(0, len(spans), PER_REQUEST)]


def step_batches(seed: int) -> list[tuple[str, bytes]]:
    """The same AI steps as signed `ai.step` events, batches of 100."""
    rng = random.Random(seed)
    at = datetime.now(tz=UTC) - timedelta(hours=1)
    events = []
    for i in range(SPANS):
        operation = ("invoke_agent", "chat", "execute_tool", "retrieval", "chat")[i % 5]
        data = {"conversation": {"channel": "web",
                                 "external_id": f"bench-{rng.randrange(CONVERSATIONS)}"},
                "operation": operation, "request_model": "gpt-4o",
                "usage": {"input_tokens": 812, "output_tokens": 41}, "latency_ms": 1200}
        if operation == "execute_tool":
            data["tool"] = {"name": "order_status", "arguments": {"order": "4411"},
                            "result": {"status": "shipped"}}
        events.append({"type": "ai.step", "id": f"step-{i}",
                       "timestamp": (at + timedelta(milliseconds=i)).isoformat(),
                       "data": data})
    return [(f"msg_bench_{i}", json.dumps(events[i:i + 100]).encode())
            for i in range(0, len(events), 100)]


def post_all(port: int, requests: list[tuple[str, dict[str, str], bytes]], label: str,
             units: int) -> Posted:
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    failures: list[str] = []
    latencies: list[float] = []
    started = time.monotonic()

    def work() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                k = state["next"]
                state["next"] += 1
            if k >= len(requests):
                conn.close()
                return
            method_path, headers, data = requests[k]
            method, path = method_path.split(" ", 1)
            sent = time.monotonic()
            try:
                conn.request(method, path, data or None, headers)
                response = conn.getresponse()
                answer = response.read()
                failure = None if 200 <= response.status < 300 else \
                    f"{response.status} {answer[:200]!r}"
                if failure is None and path == OTLP_PATH and answer:
                    failure = f"partial success: {answer[:200]!r}"  # rejected spans
            except (OSError, http.client.HTTPException) as exc:
                failure = f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                latencies.append((time.monotonic() - sent) * 1000)
                state["done"] += 1
                if failure:
                    failures.append(failure)

    pool = [threading.Thread(target=work, daemon=True) for _ in range(THREADS)]
    for t in pool:
        t.start()
    with tqdm(total=len(requests), desc=f"  {label}", unit="req") as bar:
        while any(t.is_alive() for t in pool):
            time.sleep(0.25)
            bar.n = state["done"]
            bar.refresh()
        bar.n = state["done"]
        bar.refresh()
    return Posted(len(requests), units, time.monotonic() - started, failures, latencies,
                  bench.machine_load())


def floor(port: int) -> Posted:
    """GET /healthz from the same threads for FLOOR_SECONDS (estimated count first)."""
    probe = post_all(port, [("GET /healthz", {}, b"")] * 200, "floor warm-up", 200)
    count = max(200, int(200 / probe.seconds * FLOOR_SECONDS))
    return post_all(port, [("GET /healthz", {}, b"")] * count, "floor /healthz", count)


def counts() -> dict[str, int]:
    with psycopg.connect(DATABASE_URL) as conn:
        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            assert row is not None
            return int(row[0])
        return {
            "otlp raw events": one("SELECT count(*) FROM conversations_rawevent "
                                   "WHERE provider = 'otlp'"),
            "events raw events": one("SELECT count(*) FROM conversations_rawevent "
                                     "WHERE provider = 'events'"),
            "failed": one("SELECT count(*) FROM conversations_rawevent WHERE status = 'failed'"),
            "traced steps": one("SELECT count(*) FROM conversations_aistep WHERE trace_id <> ''"),
            "event steps": one("SELECT count(*) FROM conversations_aistep WHERE trace_id = ''"),
        }


def main() -> int:
    print(f"machine: {bench.machine_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-otlp-") as tmp:
        env = bench.server_env(tmp, DATABASE_URL)
        env["HANDOFF_AUDITOR_EVENTS_SECRETS"] = SECRET
        print(f"database {DB_NAME}: drop, create, migrate", flush=True)
        bench.database_recreate(DB_NAME)
        bench.migrate(env)
        token = subprocess.run([bench.PY, "manage.py", "otlp_token", "issue", "bench"],
                               cwd=bench.ROOT, env=env, check=True, capture_output=True,
                               text=True).stdout.strip()
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip",
                   "Authorization": f"Bearer {token}", "User-Agent": "bench-otlp/1"}
        print(f"building {SPANS} spans in requests of {PER_REQUEST}...", flush=True)
        bodies = otlp_bodies(1, 1)
        problems: list[str] = []
        port = bench.free_port()
        server = bench.gunicorn_start(env, port)
        try:
            bench.gunicorn_wait(server, port)
            print(f"gunicorn: {bench.WORKERS} workers on 127.0.0.1:{port}, APPLIER_WAKE=none",
                  flush=True)
            base = floor(port)
            accepted = post_all(port, [(f"POST {OTLP_PATH}", headers, b) for b in bodies],
                                "OTLP exports", SPANS)
            problems += [f"OTLP: {f}" for f in accepted.failures[:5]]
            applied = bench.drain(env, 1, "applying spans, 1 applier", db_name=DB_NAME,
                                  database_url=DATABASE_URL)
            again = post_all(port, [(f"POST {OTLP_PATH}", headers, b) for b in bodies[:10]],
                             "re-export of 10 requests", 10 * PER_REQUEST)
            problems += [f"re-export: {f}" for f in again.failures[:5]]
            signed_at = datetime.now(tz=UTC)
            steps = [("POST /hooks/events/",
                      {**events_headers(body, SECRET, msg_id=msg_id, timestamp=signed_at),
                       "Content-Type": "application/json"}, body)
                     for msg_id, body in step_batches(2)]
            stored_steps = post_all(port, steps, "ai.step events", SPANS)
            problems += [f"ai.step: {f}" for f in stored_steps.failures[:5]]
            floor_applied = bench.drain(env, 1, "applying ai.step events, 1 applier",
                                        db_name=DB_NAME, database_url=DATABASE_URL)
        finally:
            bench.gunicorn_stop(server)
        found = counts()
        expected = {"otlp raw events": SPANS, "events raw events": SPANS, "failed": 0,
                    "traced steps": SPANS, "event steps": SPANS}
        problems += [f"{name}: {found[name]}, expected {n}" for name, n in expected.items()
                     if found[name] != n]
        report(base, accepted, applied, stored_steps, floor_applied)
        if problems:
            raise RunBroken("\n".join(problems))
        print("run OK: every export answered 2xx with no rejected span; each span stored once "
              "(a re-export stored nothing) and applied once as an AI step")
    return 0


def report(base: Posted, accepted: Posted, applied: Drain, steps: Posted,
           floor_applied: Drain) -> None:
    floor_rps = base.requests / base.seconds
    rps = accepted.requests / accepted.seconds
    per_span = applied.per_second
    print("\n== bench-otlp ==")
    print(f"floor, GET /healthz:          {base.line('requests')}")
    print(f"accepted, OTLP/HTTP:          {accepted.line()}")
    print(f"  requests/s vs the floor:    {rps / floor_rps:.2f} "
          f"({PER_REQUEST} spans, gzip protobuf, per request)")
    print(f"applied, OTLP spans:          {applied.line()} ({applied.load})")
    print(f"floor, ai.step events stored: {steps.line('events')}")
    print(f"floor, ai.step events applied: {floor_applied.line()} ({floor_applied.load})")
    print(f"  OTLP applied vs ai.step applied: {per_span / max(floor_applied.per_second, 1):.2f}")
    print(f"target >= {TARGET_APPLIED:,.0f} spans/s applied: {per_span:,.0f} "
          f"{verdict(per_span >= TARGET_APPLIED)}")


if __name__ == "__main__":
    bench.cli(main, "bench-otlp")
