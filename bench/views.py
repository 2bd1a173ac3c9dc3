"""`make bench-views`: the pages people open every morning, over 1,000,000 conversations.

1. (Re)create the database `ha_bench_views` and migrate it.
2. Seed `--conversations` conversations (5 messages each on average: 5,000,000) with the bulk
   seeder behind `seed_demo --conversations` (COPY), then COPY the rest the pages need:
   AI steps (models, prompt versions, cost) on most conversations, one handoff with its SLA
   wait on `--handoff-share` of them (every end state, some dropped or stalled, with their
   flags), outcomes with CSAT, and one conversation of `--replay-messages` messages.
   VACUUM ANALYZE. With `--keep`, none of this: the kept database is migrated (an older
   schema's too) and reused.
   Then the dashboards' daily rollups are built as production builds them, timed and
   printed: `--rollups rebuild` (default) as `manage.py rebuild_dashboard_rollups` does,
   every day; `--rollups refresh` as beat does, the days marked since the last build. Then
   one day once more (what beat's refresh of a changed day costs).
3. In this process, Django's test Client as a signed-in manager: for each page, warm-up
   requests, then `--repeats` timed requests; p50/p95 and the queries one request makes.
   The floor is GET /healthz through the same Client and middleware in the same run.
   Pages: the inbox's first page, a filtered page, page 500 (reached by walking the keyset
   cursor through the 499 pages before it), a replay of the long conversation, the
   dashboards of 30, 7 and 90 days and of one channel over 30 days.

Exit 0 whether or not the targets are met (the figures are a report); non-zero when the run
broke (a page answered other than 200, page 500 not reached). See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any

import ingest as bench  # bench/ is sys.path[0] when run as a script; it puts ROOT there too
from django.db import connection, transaction  # lazy: usable once django_setup ran
from ingest import RunBroken, verdict
from sweep import django_setup
from tqdm import tqdm

# BENCH_VIEWS_DB: another database name, so two people can run it side by side.
DB_NAME = os.environ.get("BENCH_VIEWS_DB", "ha_bench_views")
DATABASE_URL = f"{bench.PG}/{DB_NAME}"
BATCH_ROWS = 2000  # audit.export.BATCH
NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
TARGETS_MS = {"inbox": 150.0, "replay": 150.0, "dashboard": 500.0}
ROLLUP_ROUNDS = 3  # a day built again this many times (medians)
ROLLUP_RATIO = 2.0  # a day's build with the outcome rows within 2x of without (issue 17)

MODELS = (("gpt-4.1", "gpt-4.1-2025-04-14"), ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
          ("claude-sonnet-4", "claude-sonnet-4-20250514"))
PROMPTS = ("v12", "v13", "v14", "v15")
END_STATES = (("resolved", 40), ("abandoned", 12), ("returned", 10), ("engaged", 14),
              ("queued", 12), ("requested", 12))
AGENTS = (("lucia.fernandez", "Lucía Fernández"), ("j.gross", "Jürgen Groß"),
          ("mei.chen", "陈美"))

AI_STEP_FIELDS = (
    "id", "conversation_id", "external_id", "message_provider", "message_provider_id",
    "occurred_at", "operation", "agent_name", "provider_name", "request_model",
    "response_model", "prompt_name", "prompt_version", "parameters", "input_tokens",
    "output_tokens", "cost", "latency_ms", "finish_reason", "tool_name", "tool_error",
    "retrieved_documents", "guardrails", "system_prompt", "system_prompt_hash",
    "trace_id", "span_id", "parent_span_id",  # events' steps carry no trace
)
HANDOFF_FIELDS = (
    "id", "conversation_id", "number", "channel", "state", "state_entered_at", "requested_by",
    "reason", "queue", "agent_id", "agent_name", "requested_at", "queued_at", "engaged_at",
    "ended_at", "time_to_human", "time_to_human_business", "policy", "ai_replies_after_request",
    "dropped_reasons", "dropped_at", "stalled_count", "created_at", "updated_at", "team",
)
WAIT_FIELDS = ("id", "handoff_id", "kind", "started_at", "allowed_seconds", "business_hours",
               "deadline_at", "ended_at", "waited_seconds", "met")
FLAG_FIELDS = ("id", "conversation_id", "kind", "severity", "status", "subject_type",
               "subject_id", "evidence", "raised_at", "updated_at", "status_changed_by", "note")
OUTCOME_FIELDS = ("id", "conversation_id", "external_id", "occurred_at", "csat", "resolved",
                  "verdict", "attributes", "nps", "converted", "revenue_amount",
                  "revenue_currency")
CURRENCIES = ("EUR", "USD", "GBP")
TEAMS = {"lucia.fernandez": "Tier 1", "j.gross": "Tier 1", "mei.chen": "Billing"}


@dataclass
class Extras:
    ai_steps: int = 0
    handoffs: int = 0
    flags: int = 0
    outcomes: int = 0
    replay_id: int = 0
    seconds: float = 0.0


def seed(conversations: int, workers: int) -> float:
    from demo.bulk import demo_bulk_seed

    started = time.monotonic()
    with tqdm(total=conversations, desc=f"seed {conversations:,} conversations",
              unit=" conv", unit_scale=True, file=sys.stderr) as bar:
        demo_bulk_seed(conversations=conversations, messages_per_conversation=5,
                       batch_size=5000, workers=workers,
                       on_progress=lambda added, _missing: bar.update(added))
    return time.monotonic() - started


def _extras_for(rng: random.Random, row: tuple, ids: dict[str, int], out: dict[str, list],
                handoff_share: float) -> None:
    """The AI steps, handoff, wait, flags and outcome of one seeded conversation."""
    pk, channel, started, last = row
    if rng.random() < 0.85:
        model, answered = MODELS[int(rng.random() * len(MODELS))]
        version = PROMPTS[int(rng.random() * len(PROMPTS))]
        for n in range(1 + (rng.random() < 0.4)):
            ids["ai"] += 1
            out["ai"].append((
                ids["ai"], pk, f"b{pk}-{n}", "", "", started + timedelta(seconds=20 + 60 * n),
                "chat", "Ava", "openai", model, answered, "support", version, "{}",
                400 + int(rng.random() * 800), 40 + int(rng.random() * 200),
                Decimal(f"{0.0005 + rng.random() * 0.01:.6f}"), 300 + int(rng.random() * 2000),
                "stop", "", "", "[]", "[]", "", "", "", "", "",
            ))
    if rng.random() < 0.25:
        ids["outcome"] += 1
        sold = rng.random() < 0.1
        out["outcome"].append((ids["outcome"], pk, f"b{pk}", last, 1 + int(rng.random() * 5),
                               rng.random() < 0.6, "", "{}",
                               int(rng.random() * 11) if rng.random() < 0.5 else None, sold,
                               Decimal(f"{5 + rng.random() * 200:.2f}") if sold else None,
                               CURRENCIES[int(rng.random() * 3)] if sold else ""))
    if rng.random() >= handoff_share:
        return
    roll, state = rng.random() * 100, "requested"
    for name, weight in END_STATES:
        if roll < weight:
            state = name
            break
        roll -= weight
    ids["handoff"] += 1
    hid = ids["handoff"]
    requested = started + timedelta(seconds=60 + rng.random() * 60)
    reached = state in ("resolved", "engaged") or (state == "returned" and rng.random() < 0.3)
    tth = 30 + rng.random() * 1800 if reached else None
    engaged = requested + timedelta(seconds=tth) if tth else None
    ended = engaged + timedelta(minutes=5) if state == "resolved" and engaged else (
        requested + timedelta(minutes=20) if state in ("abandoned", "returned") else None)
    dropped = requested + timedelta(minutes=20) if state == "abandoned" else None
    stalled = 1 if (tth or 0) > 600 or state in ("queued", "requested") and rng.random() < 0.5 \
        else 0
    agent_id, agent_name = AGENTS[hid % len(AGENTS)] if reached else ("", "")
    out["handoff"].append((
        hid, pk, 1, channel, state, ended or engaged or requested, "ai", "", "general",
        agent_id, agent_name, requested, requested + timedelta(seconds=5), engaged, ended, tth,
        tth, "{}", 0, '["closed_before_human"]' if dropped else "[]", dropped, stalled,
        requested, ended or requested, TEAMS[agent_id] if agent_id else "",
    ))
    waited = tth if tth else (ended - requested).total_seconds() if ended else None
    out["wait"].append((
        hid, hid, "queued", requested, 600.0, False, requested + timedelta(seconds=600),
        engaged or ended, waited, None if waited is None else waited <= 600,
    ))
    for kind, severity, found in (("handoff_dropped", "high", dropped),
                                  ("handoff_stalled", "medium", stalled)):
        if found:
            ids["flag"] += 1
            status = "open" if rng.random() < 0.7 else "resolved"
            out["flag"].append((ids["flag"], pk, kind, severity, status, "handoff", hid, "{}",
                                requested + timedelta(minutes=10), requested, "", ""))


def _replay_conversation(messages: int, ids: dict[str, int], now: datetime) -> int:
    """One long WhatsApp conversation: customer and AI turns, an AI step per AI message."""
    from conversations.models import AIStep, Conversation, Message, Participant
    from demo.bulk import copy_rows, reserve_ids

    pk = reserve_ids(Conversation, 1)[0]
    customer_pid, ai_pid = reserve_ids(Participant, 2)
    message_ids = reserve_ids(Message, messages)
    start = now - timedelta(days=1)
    rows, steps = [], []
    for n, mid in enumerate(message_ids):
        ai = n % 2 == 1
        at = start + timedelta(minutes=n)
        rows.append((mid, pk, ai_pid if ai else customer_pid, "outbound" if ai else "inbound",
                     "ai" if ai else "customer", f"Message {n} of the long conversation.",
                     "twilio", f"SMbench{mid:026x}", at, "delivered" if ai else "received", 5,
                     at, "", 1, "[]", "{}", None, now))
        if ai:
            ids["ai"] += 1
            steps.append((ids["ai"], pk, f"long-{n}", "", "", at, "chat", "Ava", "openai",
                          *MODELS[0], "support", PROMPTS[-1], "{}", 500, 80,
                          Decimal("0.004"), 900, "stop", "", "", "[]", "[]", "", "",
                          "", "", ""))
    with transaction.atomic():
        copy_rows(Conversation, (
            "id", "channel", "business_address", "customer_address", "status", "subject",
            "started_at", "last_activity_at", "last_customer_message_at", "closed_at",
            "message_count", "metadata", "created_at"), [(
                pk, "whatsapp", "+14155550199", "+34600000200", "open", "", start,
                start + timedelta(minutes=messages), start, None, messages, "{}", now)])
        copy_rows(Participant, ("id", "conversation_id", "kind", "external_id", "display_name",
                                "metadata"),
                  [(customer_pid, pk, "customer", "+34600000200", "Long Talker", "{}"),
                   (ai_pid, pk, "ai", "ava", "Ava", "{}")])
        copy_rows(Message, ("id", "conversation_id", "participant_id", "direction",
                            "author_kind", "body", "provider", "provider_message_id", "sent_at",
                            "status", "status_rank", "status_at", "error_code", "num_segments",
                            "media", "metadata", "raw_event_id", "created_at"), rows)
        copy_rows(AIStep, AI_STEP_FIELDS, steps)
    return pk


def extras(handoff_share: float, replay_messages: int, chunk: int, seed_value: int) -> Extras:
    """COPY the AI steps, handoffs, waits, flags and outcomes over the seeded conversations."""
    from conversations.models import AIStep, Conversation, Flag, Outcome
    from demo.bulk import copy_rows
    from handoffs.models import Handoff, Wait

    started = time.monotonic()
    rng = random.Random(seed_value)
    ids = {"ai": 0, "handoff": 0, "flag": 0, "outcome": 0}
    low, high = _bounds()
    tables = {"ai": (AIStep, AI_STEP_FIELDS), "handoff": (Handoff, HANDOFF_FIELDS),
              "wait": (Wait, WAIT_FIELDS), "flag": (Flag, FLAG_FIELDS),
              "outcome": (Outcome, OUTCOME_FIELDS)}
    with tqdm(total=high - low + 1, desc="COPY AI steps, handoffs, flags, outcomes",
              unit=" conv", unit_scale=True, file=sys.stderr) as bar:
        for first in range(low, high + 1, chunk):
            out: dict[str, list] = {name: [] for name in tables}
            for row in Conversation.objects.filter(id__gte=first, id__lt=first + chunk) \
                    .order_by("id").values_list("id", "channel", "started_at",
                                                "last_activity_at"):
                _extras_for(rng, row, ids, out, handoff_share)
            with transaction.atomic():
                for name, (model, fields) in tables.items():
                    copy_rows(model, fields, out[name])
            bar.update(min(chunk, high + 1 - first))
    replay_id = _replay_conversation(replay_messages, ids, datetime.now().astimezone())
    with connection.cursor() as cursor:
        for table, key in (("conversations_aistep", "ai"), ("handoffs_handoff", "handoff"),
                           ("handoffs_wait", "handoff"), ("conversations_flag", "flag"),
                           ("conversations_outcome", "outcome")):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)",
                           [max(ids[key], 1)])
        # The severity sort's key, as the flag services keep it.
        cursor.execute("""
            UPDATE conversations_conversation c SET open_flag_rank = f.rank
            FROM (SELECT conversation_id, MAX(CASE severity WHEN 'high' THEN 4
                         WHEN 'medium' THEN 3 ELSE 1 END) AS rank
                  FROM conversations_flag WHERE status IN ('open', 'acknowledged')
                  GROUP BY conversation_id) f
            WHERE c.id = f.conversation_id""")
        print("  VACUUM ANALYZE", file=sys.stderr, flush=True)
        cursor.execute("VACUUM ANALYZE")
    return Extras(ai_steps=ids["ai"], handoffs=ids["handoff"], flags=ids["flag"],
                  outcomes=ids["outcome"], replay_id=replay_id,
                  seconds=time.monotonic() - started)


def _bounds() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(id), MAX(id) FROM conversations_conversation")
        low, high = cursor.fetchone()
    return low or 1, high or 0


@dataclass
class Rollups:
    how: str
    days: int = 0
    seconds: float = 0.0
    today_seconds: float = 0.0
    outcome_seconds: float = 0.0  # the outcome reports' part of that day (OutcomeDaily)


def build_rollups(how: str) -> Rollups:
    """The dashboards' daily rollups as production builds them: after a bulk load
    (`rebuild`: `manage.py rebuild_dashboard_rollups`, every day since the first
    conversation) or as beat does (`refresh`: only the days marked since the last build;
    a kept database from before the rollups has every day marked by its migration). Then
    one day again: what beat's refresh costs for a day that changed (audit.rollups)."""
    from django.utils import timezone

    from audit.rollups import rollup_day_build, rollups_rebuild, rollups_refresh

    result = Rollups(how=how)
    began = time.monotonic()
    with tqdm(desc=f"{how} dashboard rollups", unit=" days", file=sys.stderr) as bar:
        def start(total: int) -> None:
            bar.total = total
            bar.refresh()

        progress = lambda _d: bar.update(1)  # noqa: E731
        result.days = len(rollups_rebuild(on_start=start, on_progress=progress)
                          if how == "rebuild" else rollups_refresh(on_progress=progress))
    result.seconds = time.monotonic() - began
    # Yesterday built again, and the outcome rows alone (issue 17) as rollup_day_build
    # builds them (JIT off, since the day's last build): what they add to a day. Three
    # rounds, alternating, medians (a shared machine's load moves single timings).
    from audit.dashboard_selectors import _jit_off
    from audit.models import DashboardDay
    from audit.outcome_rollups import outcome_day_rows

    day = timezone.localdate() - timedelta(days=1)
    wholes, parts = [], []
    for _ in range(ROLLUP_ROUNDS):
        began = time.monotonic()
        rollup_day_build(day)
        wholes.append(time.monotonic() - began)
        built = DashboardDay.objects.filter(day=day).values_list("built_at", flat=True).first()
        began = time.monotonic()
        with transaction.atomic():
            _jit_off()
            outcome_day_rows(day, built_at=built)
        parts.append(time.monotonic() - began)
    result.today_seconds = sorted(wholes)[len(wholes) // 2]
    result.outcome_seconds = sorted(parts)[len(parts) // 2]
    return result


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Measure:
    label: str
    path: str
    target_ms: float | None = None
    seconds: list[float] = field(default_factory=list)
    queries: int = 0
    rows: int | None = None

    def ms(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def client_for_manager() -> Any:
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user, _ = User.objects.get_or_create(username="bench-manager")
    user.groups.add(Group.objects.get(name="manager"))
    client = Client()
    client.force_login(user)
    return client


def timed(client: Any, m: Measure, repeats: int, warmup: int) -> Measure:
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        _get(client, m.path)
    with CaptureQueriesContext(connection) as queries:
        response = _get(client, m.path)
    m.queries = len(queries)
    if m.path.startswith("/inbox/"):
        m.rows = response.content.count(b"<tr data-conversation=")
    for _ in range(repeats):
        began = time.perf_counter()
        _get(client, m.path)
        m.seconds.append(time.perf_counter() - began)
    return m


def _get(client: Any, path: str) -> Any:
    response = client.get(path)
    if response.status_code != 200:
        raise RunBroken(f"GET {path} answered {response.status_code}")
    return response


def page_path(client: Any, first: str, page: int) -> str:
    """The URL of page `page`, reached by following the Next links from `first`."""
    path = first
    for _ in tqdm(range(page - 1), desc=f"walk the keyset to page {page}", unit=" pages",
                  file=sys.stderr):
        found = NEXT.search(_get(client, path).content.decode())
        if not found:
            raise RunBroken(f"the inbox ended before page {page}")
        path = first.split("?")[0] + unescape(found.group(1))
    return path


@dataclass
class Export:
    path: str
    rows: int = 0
    seconds: float = 0.0
    queries: int = 0
    peak_mb: float = 0.0


def export(client: Any, path: str) -> Export:
    """One streamed CSV export, read to the end: rows, time, queries, peak Python memory."""
    import tracemalloc

    from django.test.utils import CaptureQueriesContext

    result = Export(path)
    tracemalloc.start()
    began = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response = _get(client, path)
        for chunk in response.streaming_content:
            result.rows += chunk.count(b"\n")
    result.seconds = time.perf_counter() - began
    result.peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    result.queries = len(queries)
    result.rows -= 1  # the header
    return result


def report(measures: list[Measure], floor: Measure, sizes: dict[str, int],
           dashboard_repeats: int, rollups: Rollups) -> None:
    print(f"\n== bench-views: Django test Client in-process, PostgreSQL {DB_NAME}, "
          f"{len(floor.seconds)} timed requests each (dashboards: {dashboard_repeats}) ==")
    print("data    " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))
    without = max(rollups.today_seconds - rollups.outcome_seconds, 1e-9)
    print(f"rollups {rollups.how}: {rollups.days} days built in {rollups.seconds:.1f} s "
          f"({rollups.seconds / max(rollups.days, 1):.2f} s a day); one full day again "
          f"(a beat refresh of a changed day, median of {ROLLUP_ROUNDS}): "
          f"{rollups.today_seconds:.2f} s, of which the outcome reports' rows "
          f"{rollups.outcome_seconds:.2f} s (day with / without them: "
          f"{rollups.today_seconds / without:.2f}x, target < {ROLLUP_RATIO:.0f}x: "
          f"{verdict(rollups.today_seconds / without < ROLLUP_RATIO)})")
    print(f"floor   GET {floor.path:<44} p50 {floor.ms(.5):7.1f} ms  p95 {floor.ms(.95):7.1f} "
          f"ms  queries {floor.queries}")
    for m in measures:
        ratio = m.ms(.5) / floor.ms(.5) if floor.ms(.5) else float("nan")
        target = ""
        if m.target_ms:
            target = f"  target p95 < {m.target_ms:.0f} ms: {verdict(m.ms(.95) < m.target_ms)}"
        rows = "" if m.rows is None else f" rows {m.rows}"
        print(f"{m.label:<22} p50 {m.ms(.5):7.1f} ms  p95 {m.ms(.95):7.1f} ms  queries "
              f"{m.queries:>2}{rows}  p50/floor {ratio:6.1f}x{target}")
        print(f"        GET {m.path[:110]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--handoff-share", type=float, default=0.12,
                        help="conversations with a handoff (0.12)")
    parser.add_argument("--replay-messages", type=int, default=200)
    parser.add_argument("--page", type=int, default=500, help="the deep page (500)")
    parser.add_argument("--repeats", type=int, default=20, help="timed requests each (20)")
    parser.add_argument("--dashboard-repeats", type=int, default=20,
                        help="timed requests of each dashboard (20; 0: leave them out)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-export", dest="export", action="store_false",
                        help="leave out the streamed CSV export of every "
                        "conversation")
    parser.add_argument("--workers", type=int, default=2, help="seeding connections (2)")
    parser.add_argument("--chunk", type=int, default=50_000, help="conversations per COPY")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--rollups", choices=("rebuild", "refresh"), default="rebuild",
                        help="rebuild every day's dashboard rollups (default), or refresh "
                        "only the days marked since the last build, as beat does")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the database as the last run left it (no drop, no seed)")
    args = parser.parse_args()

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-views-") as tmp:
        env = bench.server_env(tmp, DATABASE_URL)
        if not args.keep:
            print(f"database {DB_NAME}: drop, create, migrate", flush=True)
            bench.database_recreate(DB_NAME)
        bench.migrate(env)  # with --keep too: the code may have new migrations
        django_setup(env)
        from conversations.models import AIStep, Conversation, Flag, Message
        from handoffs.models import Handoff

        if not args.keep:
            seeded = seed(args.conversations, args.workers)
            added = extras(args.handoff_share, args.replay_messages, args.chunk, args.seed)
            print(f"  seeded in {seeded:.0f} s, extras in {added.seconds:.0f} s",
                  file=sys.stderr)
        rollups = build_rollups(args.rollups)
        replay_id = Conversation.objects.filter(customer_address="+34600000200") \
            .values_list("id", flat=True).first()
        sizes = {"conversations": Conversation.objects.count(),
                 "messages": Message.objects.count(), "AI steps": AIStep.objects.count(),
                 "handoffs": Handoff.objects.count(), "flags": Flag.objects.count()}
        client = client_for_manager()
        floor = timed(client, Measure("floor", "/healthz"), args.repeats, args.warmup)
        deep = page_path(client, "/inbox/?sort=recent", args.page)
        measures = [
            Measure("inbox first page", "/inbox/", TARGETS_MS["inbox"]),
            Measure("inbox filtered", "/inbox/?channel=whatsapp&flag_kind=handoff_stalled"
                    "&flag_status=open", TARGETS_MS["inbox"]),
            Measure("inbox severity sort", "/inbox/?sort=severity", TARGETS_MS["inbox"]),
            Measure(f"inbox page {args.page}", deep, TARGETS_MS["inbox"]),
            Measure(f"replay {args.replay_messages} msgs", f"/conversations/{replay_id}/",
                    TARGETS_MS["replay"]),
            Measure("dashboard 30 days", "/dashboards/?days=30", TARGETS_MS["dashboard"]),
            Measure("dashboard 7 days", "/dashboards/?days=7", TARGETS_MS["dashboard"]),
            Measure("dashboard 90 days", "/dashboards/?days=90", TARGETS_MS["dashboard"]),
            Measure("dashboard 30 d whatsapp", "/dashboards/?days=30&channel=whatsapp",
                    TARGETS_MS["dashboard"]),
            # The report pages (issue 17): the same target as the dashboards.
            *[Measure(f"reports {days} days", f"/reports/?days={days}",
                      TARGETS_MS["dashboard"]) for days in (7, 30, 90)],
            *[Measure(f"reports per {kind} 90 d", f"/reports/per/{kind}/?days=90",
                      TARGETS_MS["dashboard"]) for kind in ("agent", "queue", "model")],
            Measure("reports compare 90 d", "/reports/compare/?days=90&kind=model&a=gpt-4.1-"
                    "2025-04-14&b=gpt-4.1-mini-2025-04-14", TARGETS_MS["dashboard"]),
            Measure("reports compare date", "/reports/compare/?days=30&mode=date&split="
                    f"{(datetime.now() - timedelta(days=10)).date()}", TARGETS_MS["dashboard"]),
            Measure("reports qa 90 d", "/reports/qa/?days=90", TARGETS_MS["dashboard"]),
        ]
        if args.dashboard_repeats < 1:
            measures = [m for m in measures
                        if not m.path.startswith(("/dashboards/", "/reports/"))]
        for m in measures:
            print(f"  measuring {m.label}", file=sys.stderr, flush=True)
            board = m.path.startswith(("/dashboards/", "/reports/"))
            timed(client, m, args.dashboard_repeats if board else args.repeats, args.warmup)
        # Let the floor see the same warmed process the pages did.
        floor.seconds.clear()
        timed(client, floor, args.repeats, 0)
        csv_export = export(client, "/export.csv") if args.export else None
    report(measures, floor, sizes, args.dashboard_repeats, rollups)
    if csv_export:
        e = csv_export
        print(f"csv export             {e.rows:,} rows in {e.seconds:.1f} s = "
              f"{e.rows / e.seconds:,.0f} rows/s, {e.queries} queries "
              f"({BATCH_ROWS:,} rows a batch), peak Python memory {e.peak_mb:.1f} MB")
        print(f"        GET {e.path}")
    print(f"\nwhole run {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    bench.cli(main, "bench-views")
