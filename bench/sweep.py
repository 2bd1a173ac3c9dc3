"""`make bench-sweep`: the handoff sweep over 1,000,000 open handoffs, 1% of them due.

1. (Re)create the database `handoff_auditor_bench_sweep` and migrate it.
2. COPY in `--open` conversations, each with one open handoff (requested / queued / assigned
   / engaged, four channels, a fifth of the chat ones on a business-hours policy) and its
   open Wait; exactly `--due` waits have a deadline at or before the sweep instant, every
   other deadline is after it. Also `--windows-due` WhatsApp handoffs, waiting, none of them
   among the due waits, whose 24-hour window has closed. VACUUM ANALYZE.
3. In this process, Django against that database: time `handoffs_sweep(now=...)` and, in
   the same run, a floor (the set-based database work the same findings need at least),
   `--repeats` times each, interleaved; restore the due rows (and CHECKPOINT) before each.
   Every sweep must raise exactly one flag per due row, checked by counting Flag rows.
4. The same with `--compare-open` handoffs (default 100,000) and the same due counts, to
   show that the cost follows what is due, not what is open.

Exit 0 whether or not the 1 s target is met; non-zero when the run broke (a flag missing or
extra, the sweep finding more or less than was due). `--profile FILE` also writes a
cProfile of one more sweep at the first size and prints where the time went.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import ingest as bench  # bench/ is sys.path[0] when run as a script; it puts ROOT there too
from django.db import connection, transaction  # lazy: usable once django_setup ran
from ingest import RunBroken, verdict
from tqdm import tqdm

DB_NAME = "handoff_auditor_bench_sweep"
DATABASE_URL = f"{bench.PG}/{DB_NAME}"
# The sweep instant: a Wednesday, 16:00 in Madrid, inside the business-hours policy's
# opening hours, so that policy's deadlines are plain wall-clock ones too.
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
TARGET_SECONDS = 1.0

STATES = ("requested", "queued", "assigned", "engaged")
STATE_WEIGHTS = (15, 25, 25, 35)
CHANNELS = ("whatsapp", "sms", "web", "email")
CHANNEL_WEIGHTS = (45, 20, 25, 10)
BUSINESS = {"whatsapp": "+14155238886", "sms": "+14155550100", "web": "widget:brisa-home",
            "email": "support@brisa-home.example"}
CALENDAR_SHARE = 0.2
CALENDAR = {"timezone": "Europe/Madrid", "holidays": ["2026-12-25"], "holidays_country": "",
            "holidays_subdivision": "",
            "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}
QUEUES = ("", "", "billing", "returns", "vip")
AGENTS = (("lucia.fernandez", "Lucía Fernández"), ("j.gross", "Jürgen Groß"),
          ("mei.chen", "陈美"), ("o.nowak", "Oliwia Nowak"))
WINDOW = timedelta(hours=24)
# bench-ingest's CPU groups, as this bench names them (the "server" is this process).
CPU_GROUPS = (("this process", "gunicorn"), ("postgres", "postgres"),
              ("other processes", "other processes"))

CONVERSATION_FIELDS = (
    "id", "channel", "business_address", "customer_address", "status", "subject",
    "started_at", "last_activity_at", "last_customer_message_at", "message_count", "metadata",
    "created_at",
)
HANDOFF_FIELDS = (
    "id", "conversation_id", "number", "channel", "state", "state_entered_at", "requested_by",
    "reason", "queue", "agent_id", "agent_name", "requested_at", "queued_at", "assigned_at",
    "engaged_at", "time_to_human", "time_to_human_business", "policy", "window_expires_at",
    "last_customer_message_at", "ai_replies_after_request", "dropped_reasons",
    "stalled_count", "created_at", "updated_at",
)
WAIT_FIELDS = ("id", "handoff_id", "kind", "started_at", "allowed_seconds", "business_hours",
               "deadline_at")
FLAG_FIELDS = ("conversation_id", "kind", "severity", "status", "subject_type", "subject_id",
               "evidence", "raised_at", "updated_at", "status_changed_by", "note")


@dataclass
class Loaded:
    """What was written, so every repeat can be put back to the same due state."""

    open: int
    due_ids: list[int]  # handoff ids (= wait ids) whose wait is due
    windows: dict[int, datetime]  # handoff id -> window_expires_at, due
    by_state: dict[str, int] = field(default_factory=dict)  # due waits by kind
    seconds: float = 0.0


@dataclass
class Timing:
    label: str
    seconds: list[float] = field(default_factory=list)
    waits_seconds: list[float] = field(default_factory=list)  # the sweep's waits phase
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by group, all runs

    def cpu_line(self) -> str:
        """CPU seconds per run by group, and the cores that kept busy (bench-ingest's /proc
        accounting)."""
        wall, runs = sum(self.seconds), len(self.seconds)
        return ", ".join(f"{name} {sec / runs * 1000:.0f} ms ({sec / wall:.2f} cores)"
                         for name, sec in self.cpu.items())

    @contextmanager
    def cpu_counted(self) -> Iterator[None]:
        before = bench.cpu_sample(DB_NAME)
        yield
        split = bench.cpu_split(before, bench.cpu_sample(DB_NAME), os.getpid(), 0.0)
        for name, key in CPU_GROUPS:
            self.cpu[name] = self.cpu.get(name, 0.0) + split[key]

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def max(self) -> float:
        return max(self.seconds)


# --- Django -------------------------------------------------------------------------------


def django_setup(env: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith("HANDOFF_AUDITOR_")]:
        del os.environ[key]
    os.environ.update(env, DJANGO_SETTINGS_MODULE="config.settings")
    import django

    django.setup()


# --- loading ------------------------------------------------------------------------------


def policies() -> dict[tuple[str, bool], tuple[dict, str, Any]]:
    """(channel, business hours) -> (policy snapshot, its JSON, its Calendar or None): the
    defaults as sla_policy_resolve gives them, and the same limits on office hours."""
    from handoffs.services import policy_calendar, sla_policy_resolve

    out = {}
    for channel in CHANNELS:
        default = sla_policy_resolve(channel=channel)
        # E-mail waits run to 8 business hours, longer than the sweep instant's day so far:
        # it keeps wall-clock time, so a due wait's deadline is simple to place.
        office = default if channel == "email" else {
            **default, "id": 1, "name": "office hours", "calendar": CALENDAR}
        for calendar, policy in ((False, default), (True, office)):
            out[channel, calendar] = (policy, json.dumps(policy), policy_calendar(policy))
    return out


def plan(open_count: int, due: int, windows_due: int, rng: random.Random
         ) -> tuple[list[str], list[str], set[int], dict[int, datetime]]:
    """Channel and state per handoff; which waits are due; which windows are."""
    if due + windows_due > open_count:
        raise SystemExit("--due + --windows-due cannot exceed --open")
    channels = rng.choices(CHANNELS, CHANNEL_WEIGHTS, k=open_count)
    states = rng.choices(STATES, STATE_WEIGHTS, k=open_count)
    due_set = set(rng.sample(range(open_count), due))
    candidates = [i for i in range(open_count) if channels[i] == "whatsapp"
                  and states[i] != "engaged" and i not in due_set]
    if windows_due > len(candidates):
        raise SystemExit(f"only {len(candidates)} waiting WhatsApp handoffs for --windows-due")
    windows = {
        i: NOW - timedelta(seconds=1 + rng.random() * 3600)
        for i in sorted(rng.sample(candidates, windows_due))
    }
    return channels, states, due_set, windows


def rows(i: int, channel: str, state: str, due: bool, window_at: datetime | None,
         rng: random.Random, policy: tuple[dict, str, Any], business_add: Callable
         ) -> tuple[tuple, tuple, tuple]:
    """One conversation, its open handoff and that handoff's open wait (ids i + 1)."""
    policy, policy_json, calendar = policy
    r = rng.random
    pk = i + 1
    kind = "reply" if state == "engaged" else state
    allowed = float(policy["limits"][kind])
    if due:  # overdue by up to an hour
        started = NOW - timedelta(seconds=allowed + 1 + r() * 3600)
    else:  # the deadline is still ahead
        started = NOW - timedelta(seconds=r() * (allowed - 1))
    deadline = business_add(started, allowed, calendar)
    if (deadline <= NOW) != due:
        raise RunBroken(f"wait {pk}: deadline {deadline} on the wrong side of {NOW}")

    queued_at = assigned_at = engaged_at = time_to_human = None
    if state == "requested":
        requested_at = entered = started
    elif state == "queued":
        queued_at = entered = started
        requested_at = queued_at - timedelta(seconds=r() * 120)
    elif state == "assigned":
        assigned_at = entered = started
        queued_at = assigned_at - timedelta(seconds=r() * 600)
        requested_at = queued_at - timedelta(seconds=r() * 120)
    else:  # engaged: the wait is for the reply to the customer's latest message
        engaged_at = entered = started - timedelta(seconds=r() * 1800)
        requested_at = engaged_at - timedelta(seconds=r() * 900)
        time_to_human = (engaged_at - requested_at).total_seconds()
    last_customer = started if state == "engaged" else requested_at - timedelta(seconds=r() * 60)
    window = None
    if window_at is not None:
        window, last_customer = window_at, window_at - WINDOW
    elif channel == "whatsapp" and state != "engaged":
        window = last_customer + WINDOW
    agent_id, agent_name = AGENTS[i % len(AGENTS)] if assigned_at or engaged_at else ("", "")
    opened = requested_at - timedelta(seconds=60 + r() * 3600)

    if channel == "email":
        customer = f"customer{pk}@example.com"
    elif channel == "web":
        customer = f"visitor-{pk:08d}"
    else:
        customer = f"+1555{pk:08d}"
    conversation = (
        pk, channel, BUSINESS[channel], customer, "open", "", opened, max(started, entered),
        last_customer, 4 + i % 7, '{"bench": "sweep"}', NOW,
    )
    handoff = (
        pk, pk, 1, channel, state, entered, "ai", "", QUEUES[i % len(QUEUES)], agent_id,
        agent_name, requested_at, queued_at, assigned_at, engaged_at, time_to_human,
        time_to_human, policy_json, window, last_customer, 0, "[]", 0, requested_at, entered,
    )
    wait = (pk, pk, kind, started, allowed, calendar is not None, deadline)
    return conversation, handoff, wait


def load(open_count: int, due: int, windows_due: int, chunk: int, seed: int) -> Loaded:
    """Empty the tables and COPY the handoffs in, one transaction per chunk."""
    from conversations.models import Conversation
    from demo.bulk import copy_rows  # the seeder's binary COPY
    from handoffs.business_time import business_add
    from handoffs.models import Handoff, Wait

    started = time.monotonic()
    rng = random.Random(seed)
    channels, states, due_set, windows = plan(open_count, due, windows_due, rng)
    snapshots = policies()
    with connection.cursor() as cursor:
        # CASCADE: flags, transitions, waits... every table that points at these.
        cursor.execute("TRUNCATE conversations_conversation RESTART IDENTITY CASCADE")
    by_state: dict[str, int] = {}
    with tqdm(total=open_count, desc=f"COPY {open_count:,} handoffs", unit=" handoffs",
              unit_scale=True, file=sys.stderr) as bar:
        for start in range(0, open_count, chunk):
            batch: tuple[list, list, list] = ([], [], [])
            for i in range(start, min(start + chunk, open_count)):
                policy = snapshots[channels[i], rng.random() < CALENDAR_SHARE]
                for out, row in zip(batch, rows(
                    i, channels[i], states[i], i in due_set, windows.get(i), rng, policy,
                    business_add,
                ), strict=True):
                    out.append(row)
            with transaction.atomic():
                copy_rows(Conversation, CONVERSATION_FIELDS, batch[0])
                copy_rows(Handoff, HANDOFF_FIELDS, batch[1])
                copy_rows(Wait, WAIT_FIELDS, batch[2])
            bar.update(len(batch[0]))
    for i in due_set:
        kind = "reply" if states[i] == "engaged" else states[i]
        by_state[kind] = by_state.get(kind, 0) + 1
    with connection.cursor() as cursor:
        for table in ("conversations_conversation", "handoffs_handoff", "handoffs_wait"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)",
                           [open_count])
    print(f"  VACUUM ANALYZE ({open_count:,} handoffs)", file=sys.stderr, flush=True)
    vacuum()
    return Loaded(open=open_count, due_ids=sorted(i + 1 for i in due_set),
                  windows={i + 1: at for i, at in windows.items()}, by_state=by_state,
                  seconds=time.monotonic() - started)


def vacuum(*, analyze: bool = True) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {'ANALYZE' if analyze else ''} conversations_conversation, "
                       "handoffs_handoff, handoffs_wait, conversations_flag")


CHECKPOINT = True  # --no-checkpoint turns it off


def restore(loaded: Loaded) -> None:
    """Back to the loaded state: no flags (and no flag rank on their conversations), the due
    waits unflagged, the windows open again.
    Then VACUUM (the sweep leaves dead rows and index entries) and CHECKPOINT, so every run
    starts from the same place: clean buffers, and each page it changes logged whole."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM conversations_flag")
        cursor.execute("UPDATE handoffs_wait SET stalled_at = NULL "
                       "WHERE id = ANY(%s) AND stalled_at IS NOT NULL", [loaded.due_ids])
        cursor.execute("UPDATE handoffs_handoff SET stalled_count = 0 "
                       "WHERE id = ANY(%s) AND stalled_count <> 0", [loaded.due_ids])
        # Conversation ids are handoff ids here (one handoff per conversation).
        cursor.execute("UPDATE conversations_conversation SET open_flag_rank = 0 "
                       "WHERE id = ANY(%s) AND open_flag_rank <> 0",
                       [loaded.due_ids + list(loaded.windows)])
        cursor.execute(
            "UPDATE handoffs_handoff AS h SET window_expires_at = w.at, dropped_reasons = '[]',"
            " dropped_at = NULL FROM unnest(%s::bigint[], %s::timestamptz[]) AS w(id, at)"
            " WHERE h.id = w.id",
            [list(loaded.windows), list(loaded.windows.values())],
        )
    vacuum(analyze=False)  # the statistics of the load still hold
    if CHECKPOINT:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")


# --- the timed runs ---------------------------------------------------------------------


def sweep_once(loaded: Loaded, batch_size: int, timing: Timing) -> None:
    """One timed sweep, added to `timing` with its waits phase. Checks its findings and the
    Flag rows it left."""
    from conversations.models import Flag
    from handoffs.services import DROPPED, STALLED
    from handoffs.sweep import handoffs_sweep

    marks: list[tuple[float, int]] = []
    with timing.cpu_counted():
        started = time.perf_counter()
        result = handoffs_sweep(
            now=NOW, batch_size=batch_size,
            on_progress=lambda r: marks.append((time.perf_counter(), r.window_expired)),
        )
        seconds = time.perf_counter() - started
    waits_done = max((t for t, windows in marks if windows == 0), default=started)
    problems = []
    if result.stalled != len(loaded.due_ids) or result.by_state != loaded.by_state:
        problems.append(f"stalled {result.stalled} {result.by_state}, due "
                        f"{len(loaded.due_ids)} {loaded.by_state}")
    if result.window_expired != len(loaded.windows):
        problems.append(f"window expired {result.window_expired}, due {len(loaded.windows)}")
    flags = {k: Flag.objects.filter(kind=k).count() for k in (STALLED, DROPPED)}
    if flags != {STALLED: len(loaded.due_ids), DROPPED: len(loaded.windows)}:
        problems.append(f"Flag rows {flags}, due {len(loaded.due_ids)} waits and "
                        f"{len(loaded.windows)} windows")
    if problems:
        raise RunBroken(f"sweep over {loaded.open:,} handoffs: " + "; ".join(problems))
    timing.seconds.append(seconds)
    timing.waits_seconds.append(waits_done - started)


def floor_once(loaded: Loaded, timing: Timing) -> None:
    """The database work the same findings need at least, set-based, in one transaction:
    the indexed SELECT of the due waits (with their handoffs, rows locked) and of the due
    windows; marking them (waits stalled_at, windows cleared); one COPY of as many flag
    rows, with evidence of the sweep's size; the conversations' flag rank raised. Counted
    like the sweep, then undone by restore()."""
    with timing.cpu_counted():
        started = time.perf_counter()
        waits, windows = _floor_work()
        seconds = time.perf_counter() - started
    if len(waits) != len(loaded.due_ids) or len(windows) != len(loaded.windows):
        raise RunBroken(f"floor found {len(waits)} waits and {len(windows)} windows due, "
                        f"not {len(loaded.due_ids)} and {len(loaded.windows)}")
    timing.seconds.append(seconds)


def _floor_work() -> tuple[list, list]:
    from conversations.models import FLAG_SEVERITY_RANK, Flag
    from demo.bulk import copy_rows

    at = NOW.isoformat()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT w.id, w.kind, w.started_at, w.deadline_at, w.allowed_seconds, h.id,"
            " h.conversation_id, h.channel, h.queue, h.agent_id FROM handoffs_wait AS w"
            " JOIN handoffs_handoff AS h ON h.id = w.handoff_id WHERE w.ended_at IS NULL"
            " AND w.stalled_at IS NULL AND w.deadline_at <= %s ORDER BY w.deadline_at"
            " FOR UPDATE OF w SKIP LOCKED", [NOW])
        waits = cursor.fetchall()
        cursor.execute("UPDATE handoffs_wait SET stalled_at = %s WHERE id = ANY(%s)",
                       [NOW, [w[0] for w in waits]])
        cursor.execute(
            "SELECT id, conversation_id, channel, state, window_expires_at,"
            " last_customer_message_at FROM handoffs_handoff WHERE window_expires_at <= %s"
            " ORDER BY window_expires_at FOR UPDATE SKIP LOCKED", [NOW])
        windows = cursor.fetchall()
        cursor.execute("UPDATE handoffs_handoff SET window_expires_at = NULL"
                       " WHERE id = ANY(%s)", [[h[0] for h in windows]])
        flags = [
            (conversation, "handoff_stalled", "medium", "open", "handoff", handoff,
             f'{{"state": "{kind}", "entered_at": "{entered.isoformat()}", "deadline_at": '
             f'"{deadline.isoformat()}", "waited_seconds": 0, "allowed_seconds": {allowed},'
             f' "over_by_seconds": 0, "business_hours": false, "policy": {{"id": null, '
             f'"name": "default"}}, "handoff": 1, "channel": "{channel}", "queue": '
             f'"{queue}", "agent": "{agent}", "detected_at": "{at}", "stalls": ["{kind}"]}}',
             NOW, NOW, "", "")
            for _, kind, entered, deadline, allowed, handoff, conversation, channel, queue,
            agent in waits
        ] + [
            (conversation, "handoff_dropped", "high", "open", "handoff", handoff,
             f'{{"reason": "whatsapp_window_expired", "state": "{state}", "details": '
             f'{{"whatsapp_window_expired": {{"window_expired_at": "{expired.isoformat()}",'
             f' "last_customer_message_at": "{last.isoformat()}", "channel": "{channel}"}}}}}}',
             NOW, NOW, "", "")
            for handoff, conversation, channel, state, expired, last in windows
        ]
        copy_rows(Flag, FLAG_FIELDS, flags)
        # The inbox's severity rank: raising a flag can only raise it.
        for severity, conversations in (("medium", [w[6] for w in waits]),
                                        ("high", [h[1] for h in windows])):
            cursor.execute(
                "UPDATE conversations_conversation SET open_flag_rank = %s"
                " WHERE id = ANY(%s) AND open_flag_rank < %s",
                [FLAG_SEVERITY_RANK[severity], conversations, FLAG_SEVERITY_RANK[severity]])
    return waits, windows


def empty_sweep(batch_size: int) -> float:
    """A sweep right after one: nothing is due any more (idempotence, and its fixed cost)."""
    from handoffs.sweep import handoffs_sweep

    started = time.perf_counter()
    result = handoffs_sweep(now=NOW, batch_size=batch_size)
    seconds = time.perf_counter() - started
    if result.stalled or result.window_expired or result.flags_created:
        raise RunBroken(f"a second sweep found more: {result}")
    return seconds


@dataclass
class SizeResult:
    loaded: Loaded
    sweep: Timing
    floor: Timing
    empty: float


def measure(loaded: Loaded, repeats: int, batch_size: int) -> SizeResult:
    sweep, floor = Timing("sweep"), Timing("floor")
    empty = 0.0
    steps = tqdm(total=2 * repeats, desc=f"  timing {loaded.open:,} open", unit=" run",
                 file=sys.stderr)
    with steps:
        for _ in range(repeats):  # interleaved, so drift hits both alike
            restore(loaded)
            floor_once(loaded, floor)
            steps.update()
            restore(loaded)
            sweep_once(loaded, batch_size, sweep)
            empty = empty_sweep(batch_size)
            steps.update()
    return SizeResult(loaded, sweep, floor, empty)


def statements(loaded: Loaded, batch_size: int) -> str:
    """One more sweep, each statement (and commit) timed from the client, grouped by verb
    and table; what is left of the wall time is Python. No profiler overhead."""
    from handoffs.sweep import handoffs_sweep

    restore(loaded)
    spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])

    def timed(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)', sql)
            key = f"{sql.split(None, 1)[0].upper()} {table.group(1) if table else ''}"
            if many or len(params or ()) > 50:
                key += " (batch)"
            spent[key][0] += 1
            spent[key][1] += time.perf_counter() - began

    commit = connection._commit

    def timed_commit() -> None:
        began = time.perf_counter()
        try:
            commit()
        finally:
            spent["COMMIT"][0] += 1
            spent["COMMIT"][1] += time.perf_counter() - began

    connection._commit = timed_commit  # Django's commit() calls it: the transaction ends
    began = time.perf_counter()
    try:
        with connection.execute_wrapper(timed):
            handoffs_sweep(now=NOW, batch_size=batch_size)
    finally:
        del connection._commit
    wall = time.perf_counter() - began
    lines = [f"  {'statement':<40} {'count':>6} {'total':>11} {'per call':>11}"]
    for key, (count, seconds) in sorted(spent.items(), key=lambda kv: -kv[1][1]):
        lines.append(f"  {key:<40} {count:>6} {ms(seconds)} {seconds / count * 1e6:8.0f} us")
    in_db = sum(seconds for _, seconds in spent.values())
    lines.append(f"  {'all statements and commits':<40} {sum(c for c, _ in spent.values()):>6}"
                 f" {ms(in_db)}")
    lines.append(f"  {'Python around them (the rest)':<40} {'':>6} {ms(wall - in_db)}")
    lines.append(f"  {'the sweep, wall':<40} {'':>6} {ms(wall)}")
    return "\n".join(lines)


def profile(loaded: Loaded, batch_size: int, path: str) -> str:
    from handoffs.sweep import handoffs_sweep

    restore(loaded)
    profiler = cProfile.Profile()
    profiler.runcall(handoffs_sweep, now=NOW, batch_size=batch_size)
    profiler.dump_stats(path)
    out = io.StringIO(statements(loaded, batch_size) + "\n\ncProfile (its overhead "
                      "inflates Python several times):\n")
    out.seek(0, io.SEEK_END)
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative")
    stats.print_stats(30)
    stats.sort_stats("tottime").print_stats(15)
    return out.getvalue()


# --- report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def report_size(size: SizeResult) -> None:
    loaded, sweep, floor = size.loaded, size.sweep, size.floor
    due = len(loaded.due_ids) + len(loaded.windows)
    states = ", ".join(f"{k} {v}" for k, v in sorted(loaded.by_state.items()))
    waits_p50 = statistics.median(sweep.waits_seconds)
    print(f"""
-- {loaded.open:,} open handoffs (loaded in {loaded.seconds:.0f} s) --
due      {len(loaded.due_ids):,} waits past their deadline ({states})
         + {len(loaded.windows):,} WhatsApp windows closed = {due:,} rows due
flags    {due:,} raised on every run ({len(loaded.due_ids):,} handoff_stalled + \
{len(loaded.windows):,} handoff_dropped), checked by counting Flag rows
sweep    p50 {ms(sweep.p50)}   max {ms(sweep.max)}   \
({', '.join(f'{s * 1000:.0f}' for s in sweep.seconds)} ms)
         = {due / sweep.p50:,.0f} flagged/s; waits phase p50 {ms(waits_p50)} \
({len(loaded.due_ids) / waits_p50:,.0f} stalled/s), windows phase p50 \
{ms(sweep.p50 - waits_p50)} ({len(loaded.windows) / max(sweep.p50 - waits_p50, 1e-9):,.0f}/s)
floor    p50 {ms(floor.p50)}   max {ms(floor.max)}   \
({', '.join(f'{s * 1000:.0f}' for s in floor.seconds)} ms)
ratio    sweep / floor (p50): {sweep.p50 / floor.p50:.1f}x
empty    a sweep with nothing due:  {ms(size.empty)}
cpu      CPU per run (cores busy) by group while timed, the machine has {os.cpu_count()}:
  sweep: {sweep.cpu_line()}
  floor: {floor.cpu_line()}""", flush=True)
    for timing in (sweep, floor):
        foreign = timing.cpu.get("other processes", 0.0) / sum(timing.seconds)
        if foreign > 0.15:
            print(f"WARNING: other processes kept {foreign:.2f} cores busy during the "
                  f"{timing.label} runs: these figures are slower than a quiet machine gives.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--open", type=int, default=1_000_000, help="open handoffs (1,000,000)")
    parser.add_argument("--compare-open", type=int, default=100_000,
                        help="the second size, same due counts (100,000; 0: skip)")
    parser.add_argument("--due", type=int, default=10_000, help="waits due (10,000)")
    parser.add_argument("--windows-due", type=int, default=500,
                        help="WhatsApp windows closed, on other handoffs (500)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per size (5)")
    parser.add_argument("--batch-size", type=int, default=5000, help="the sweep's (5000)")
    parser.add_argument("--chunk", type=int, default=50_000, help="rows per COPY transaction")
    parser.add_argument("--seed", type=int, default=20261118)
    parser.add_argument("--no-checkpoint", action="store_true",
                        help="no CHECKPOINT before each timed run (pages the restore wrote "
                        "then need no full-page image in the WAL: faster, less realistic)")
    parser.add_argument("--profile", metavar="FILE",
                        help="also profile one sweep at --open (cProfile) into FILE")
    args = parser.parse_args()
    if args.repeats < 1 or args.due < 1:
        parser.error("--repeats and --due must be at least 1")
    global CHECKPOINT
    CHECKPOINT = not args.no_checkpoint

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        env = bench.server_env(tmp, DATABASE_URL)
        print(f"database {DB_NAME}: drop, create, migrate", flush=True)
        bench.database_recreate(DB_NAME)
        bench.migrate(env)
        django_setup(env)
        sizes = [args.open] + ([args.compare_open] if args.compare_open else [])
        results = []
        profiled = ""
        for open_count in sizes:
            loaded = load(open_count, args.due, args.windows_due, args.chunk, args.seed)
            results.append(measure(loaded, args.repeats, args.batch_size))
            if args.profile and open_count == args.open:
                profiled = profile(loaded, args.batch_size, args.profile)

    print(f"\n== bench-sweep: handoffs_sweep(now={NOW.isoformat()}, batch_size="
          f"{args.batch_size}) in-process, PostgreSQL, {args.repeats} runs per size ==")
    for size in results:
        report_size(size)
    big = results[0]
    if len(results) > 1:
        small = results[1]
        print(f"\nopen {big.loaded.open:,} / {small.loaded.open:,} = "
              f"{big.loaded.open / small.loaded.open:.0f}x, same due: sweep p50 "
              f"{big.sweep.p50 / small.sweep.p50:.2f}x, floor p50 "
              f"{big.floor.p50 / small.floor.p50:.2f}x, empty sweep "
              f"{big.empty / small.empty:.2f}x")
    print(f"""
target
  sweep p50 < {TARGET_SECONDS:.0f} s at {big.loaded.open:,} open:  {ms(big.sweep.p50)}   \
{verdict(big.sweep.p50 < TARGET_SECONDS)}
whole run: {time.monotonic() - began:.0f} s""", flush=True)
    if profiled:
        print(f"\nprofile of one sweep at {big.loaded.open:,} open ({args.profile}):\n"
              f"{profiled}")
    return 0


if __name__ == "__main__":
    bench.cli(main, "bench-sweep")
