"""The sweep: what only the passing of time proves, in load -> decide -> write batches.

`handoffs_sweep` (Celery beat, `manage.py sweep_handoffs`) raises handoff_stalled for waits
past their deadline and handoff_dropped for WhatsApp handoffs whose 24-hour window closed
while the customer waited. Per batch, in one transaction:

- **load**: the due rows through their partial indexes (`wait_due`, `handoff_window_due`)
  under `FOR UPDATE SKIP LOCKED`, so two sweeps at once never take the same row; then the
  batch's handoffs and their active flags, one query each;
- **decide**: `sweep_decide`, pure Python over a `SweepState`, returns a `SweepPlan` with the
  same rules the machine uses (`flags.stalled_refresh`, `flags.dropped_evidence`, the evidence
  figures in services.py);
- **write**: the plan, a few statements per batch (`_write_postgres` binds arrays;
  `_write_portable` is the ORM form SQLite runs). The SQL writes only what Python decided.

The cost follows what is due, not what is open.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from conversations.conf import auditor_settings
from conversations.models import FLAG_SEVERITY_RANK, Conversation, Flag
from conversations.services import channel_switch_check, conversations_flag_rank_refresh
from conversations.sql import Statements

from .business_time import business_seconds
from .flags import (
    DROPPED,
    STALLED,
    WINDOW_EXPIRED,
    _stall_evidence,
    dropped_evidence,
    stalled_refresh,
)
from .machine import WAITING
from .models import Handoff, Wait
from .policies import policy_calendar
from .services import handoff_days_mark

# --- state and plan -----------------------------------------------------------------------


@dataclass(frozen=True)
class DueWait:
    id: int
    handoff_id: int
    kind: str
    started_at: datetime
    deadline_at: datetime | None
    allowed_seconds: float | None
    business_hours: bool


@dataclass(frozen=True)
class HandoffFacts:
    """What a decision reads of a handoff (the attribute names of the model's fields)."""

    id: int
    conversation_id: int
    number: int
    channel: str
    state: str
    queue: str
    agent_id: str
    policy: dict[str, Any]
    stalled_count: int
    requested_at: datetime
    requested_by: str
    last_customer_message_at: datetime | None
    window_expires_at: datetime | None
    dropped_reasons: list[str]
    dropped_at: datetime | None


HANDOFF_FIELDS = [f for f in HandoffFacts.__dataclass_fields__]
WAIT_FIELDS = [f for f in DueWait.__dataclass_fields__]


@dataclass(frozen=True)
class ActiveFlag:
    id: int
    severity: str
    evidence: dict[str, Any]


@dataclass
class SweepState:
    """One batch: the due waits (deadline order), the handoffs whose window is due (window
    order), the handoffs both name, and their active flags by (kind, handoff id)."""

    now: datetime
    handoffs: dict[int, HandoffFacts]
    waits: list[DueWait] = field(default_factory=list)
    windows: list[int] = field(default_factory=list)
    flags: dict[tuple[str, int], ActiveFlag] = field(default_factory=dict)


@dataclass
class FlagWrite:
    """A flag to insert (`id` None) or to refresh."""

    id: int | None
    conversation_id: int
    kind: str
    subject_id: int
    severity: str
    evidence: dict[str, Any]
    # When the problem began (the wait's deadline, the window's end): a new flag is
    # stamped then; when it was found is in the evidence (detected_at).
    began_at: datetime | None = None


@dataclass
class SweepPlan:
    waits_stalled: list[int] = field(default_factory=list)
    stalled_counts: dict[int, int] = field(default_factory=dict)  # handoff -> waits stalled
    windows_cleared: list[int] = field(default_factory=list)
    drops: dict[int, tuple[list[str], datetime]] = field(default_factory=dict)
    flags: dict[tuple[str, int], FlagWrite] = field(default_factory=dict)
    by_state: dict[str, int] = field(default_factory=dict)
    window_expired: int = 0

    @property
    def conversations(self) -> list[int]:
        return sorted({f.conversation_id for f in self.flags.values()})


def _window_figures(
    *, last_customer: datetime, expired: datetime, state: str, requested_at: datetime, now: datetime
) -> dict[str, Any]:
    """The details of a whatsapp_window_expired drop."""
    return {
        "last_customer_message_at": last_customer.isoformat(),
        "window_expired_at": expired.isoformat(),
        "window_hours": auditor_settings.WHATSAPP_WINDOW_HOURS,
        "state": state,
        "waited_seconds": round((now - requested_at).total_seconds(), 1),
        "note": "only a template message can reach the customer now (Twilio error 63016)",
    }


# --- decide -----------------------------------------------------------------------------


def sweep_decide(state: SweepState) -> SweepPlan:
    """Every finding of a batch, decided in memory: no database, nothing written."""
    plan = SweepPlan()
    now = state.now

    def current(kind: str, handoff_id: int) -> tuple[int | None, dict[str, Any] | None]:
        planned = plan.flags.get((kind, handoff_id))
        if planned is not None:
            return planned.id, planned.evidence
        active = state.flags.get((kind, handoff_id))
        return (active.id, active.evidence) if active else (None, None)

    for wait in state.waits:
        handoff = state.handoffs[wait.handoff_id]
        calendar = policy_calendar(handoff.policy) if wait.business_hours else None
        waited = business_seconds(wait.started_at, now, calendar)
        flag_id, evidence = current(STALLED, handoff.id)
        evidence, severity = stalled_refresh(
            evidence, handoff.stalled_count,
            _stall_evidence(wait, handoff, waited=waited, at=now),
        )
        plan.flags[STALLED, handoff.id] = FlagWrite(
            flag_id, handoff.conversation_id, STALLED, handoff.id, severity, evidence,
            began_at=min(wait.deadline_at or now, now),
        )
        plan.waits_stalled.append(wait.id)
        plan.stalled_counts[handoff.id] = plan.stalled_counts.get(handoff.id, 0) + 1
        plan.by_state[wait.kind] = plan.by_state.get(wait.kind, 0) + 1

    for handoff_id in state.windows:
        handoff = state.handoffs[handoff_id]
        plan.windows_cleared.append(handoff_id)
        if handoff.state not in WAITING:
            continue
        if WINDOW_EXPIRED not in handoff.dropped_reasons:
            plan.drops[handoff_id] = (
                [*handoff.dropped_reasons, WINDOW_EXPIRED], handoff.dropped_at or now
            )
        flag_id, evidence = current(DROPPED, handoff_id)
        detail = _window_figures(
            last_customer=handoff.last_customer_message_at, expired=handoff.window_expires_at,
            state=handoff.state, requested_at=handoff.requested_at, now=now,
        )
        details = dict((evidence.get("details") if evidence else None) or {})
        details[WINDOW_EXPIRED] = detail
        plan.flags[DROPPED, handoff_id] = FlagWrite(
            flag_id, handoff.conversation_id, DROPPED, handoff_id, Flag.Severity.HIGH,
            dropped_evidence(handoff, reason=WINDOW_EXPIRED, details=details),
            began_at=min(handoff.window_expires_at or now, now),
        )
        plan.window_expired += 1
    return plan


# --- load -------------------------------------------------------------------------------


def _due_waits(now: datetime, limit: int) -> tuple[list[DueWait], dict[int, HandoffFacts]]:
    """The due waits (locked) with their handoffs (read), in one query."""
    rows = (
        Wait.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(ended_at__isnull=True, stalled_at__isnull=True, deadline_at__lte=now)
        .order_by("deadline_at")
        .values_list(*WAIT_FIELDS, *[f"handoff__{name}" for name in HANDOFF_FIELDS])[:limit]
    )
    n = len(WAIT_FIELDS)
    waits, handoffs = [], {}
    for row in rows:
        waits.append(DueWait(*row[:n]))
        handoffs[row[n]] = HandoffFacts(*row[n:])
    return waits, handoffs


def _due_windows(now: datetime, limit: int) -> list[HandoffFacts]:
    rows = (
        Handoff.objects.select_for_update(skip_locked=True)
        .filter(window_expires_at__lte=now)
        .order_by("window_expires_at")
        .values_list(*HANDOFF_FIELDS)[:limit]
    )
    return [HandoffFacts(*row) for row in rows]


def _active_flags(kind: str, handoff_ids: list[int]) -> dict[tuple[str, int], ActiveFlag]:
    rows = Flag.objects.filter(
        kind=kind, subject_type=Flag.SubjectType.HANDOFF, subject_id__any=handoff_ids,
        status__in=Flag.ACTIVE_STATUSES,
    ).values_list("subject_id", "id", "severity", "evidence")
    return {(kind, h): ActiveFlag(pk, severity, evidence) for h, pk, severity, evidence in rows}


# --- write ------------------------------------------------------------------------------

_WAIT = Wait._meta.db_table
_HANDOFF = Handoff._meta.db_table
_FLAG = Flag._meta.db_table
_CONVERSATION = Conversation._meta.db_table

PG_WAITS_STALLED = f"UPDATE {_WAIT} SET stalled_at = %b WHERE id = ANY(%b::bigint[])"
# One statement per distinct count (nearly always one): `id = ANY(...)` keeps the plan on the
# primary key; a join with unnest() of thousands of ids was planned as a merge join that
# reads the whole index.
PG_STALLED_COUNTS = (
    f"UPDATE {_HANDOFF} SET stalled_count = stalled_count + %b WHERE id = ANY(%b::bigint[])"
)
PG_WINDOWS_CLEARED = f"UPDATE {_HANDOFF} SET window_expires_at = NULL WHERE id = ANY(%b::bigint[])"
PG_DROPS = f"""UPDATE {_HANDOFF} AS h SET dropped_reasons = t.r::jsonb, dropped_at = t.at
FROM unnest(%b::bigint[], %b::text[], %b::timestamptz[]) AS t(id, r, at) WHERE h.id = t.id"""
PG_FLAGS_NEW = f"""INSERT INTO {_FLAG} (conversation_id, kind, severity, status, subject_type,
    subject_id, evidence, raised_at, updated_at, status_changed_by, note)
SELECT c, k, s, 'open', 'handoff', h, e::jsonb, b, %b, '', ''
FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::bigint[], %b::text[], %b::timestamptz[])
    AS t(c, k, s, h, e, b)"""
PG_FLAGS_REFRESHED = f"""UPDATE {_FLAG} AS f SET severity = t.s, evidence = t.e::jsonb,
    updated_at = %b
FROM unnest(%b::bigint[], %b::text[], %b::text[]) AS t(id, s, e) WHERE f.id = t.id"""
# Raising and refreshing flags can only raise a conversation's rank.
PG_RANK = f"""UPDATE {_CONVERSATION} AS c SET open_flag_rank = t.r
FROM (SELECT id, max(r) AS r FROM unnest(%b::bigint[], %b::int[]) AS u(id, r) GROUP BY id) AS t
WHERE c.id = t.id AND c.open_flag_rank < t.r"""


def _by_count(counts: dict[int, int]) -> dict[int, list[int]]:
    """Handoff ids (in id order) grouped by how many of their waits stalled."""
    grouped: dict[int, list[int]] = {}
    for handoff_id, n in sorted(counts.items()):
        grouped.setdefault(n, []).append(handoff_id)
    return grouped


def _write_postgres(plan: SweepPlan, now: datetime) -> None:
    new = [f for f in plan.flags.values() if f.id is None]
    old = [f for f in plan.flags.values() if f.id is not None]
    with Statements() as sql:
        if plan.waits_stalled:
            sql.run(PG_WAITS_STALLED, [now, sorted(plan.waits_stalled)])
        for n, ids in _by_count(plan.stalled_counts).items():
            sql.run(PG_STALLED_COUNTS, [n, ids])
        if plan.windows_cleared:
            sql.run(PG_WINDOWS_CLEARED, [plan.windows_cleared])
        if plan.drops:
            sql.run(PG_DROPS, [list(plan.drops), [json.dumps(r) for r, _ in plan.drops.values()],
                               [at for _, at in plan.drops.values()]])
        if new:
            sql.run(PG_FLAGS_NEW, [now, [f.conversation_id for f in new],
                                   [f.kind for f in new], [f.severity for f in new],
                                   [f.subject_id for f in new],
                                   [json.dumps(f.evidence) for f in new],
                                   [f.began_at or now for f in new]])
        if old:
            sql.run(PG_FLAGS_REFRESHED, [now, [f.id for f in old], [f.severity for f in old],
                                         [json.dumps(f.evidence) for f in old]])
        flags = list(plan.flags.values())
        if flags:
            sql.run(PG_RANK, [[f.conversation_id for f in flags],
                              [FLAG_SEVERITY_RANK[f.severity] for f in flags]])


def _write_portable(plan: SweepPlan, now: datetime) -> None:
    if plan.waits_stalled:
        Wait.objects.filter(pk__any=plan.waits_stalled).update(stalled_at=now)
    for n, ids in _by_count(plan.stalled_counts).items():
        Handoff.objects.filter(pk__any=ids).update(stalled_count=F("stalled_count") + n)
    if plan.windows_cleared:
        Handoff.objects.filter(pk__any=plan.windows_cleared).update(window_expires_at=None)
    if plan.drops:
        Handoff.objects.bulk_update(
            [Handoff(pk=pk, dropped_reasons=reasons, dropped_at=at)
             for pk, (reasons, at) in plan.drops.items()],
            ["dropped_reasons", "dropped_at"],
        )
    rows = [
        Flag(pk=f.id, conversation_id=f.conversation_id, kind=f.kind, severity=f.severity,
             subject_type=Flag.SubjectType.HANDOFF, subject_id=f.subject_id,
             evidence=f.evidence, raised_at=f.began_at or now, updated_at=now)
        for f in plan.flags.values()
    ]
    Flag.objects.bulk_create([f for f in rows if f.pk is None])
    Flag.objects.bulk_update([f for f in rows if f.pk is not None],
                             ["evidence", "severity", "updated_at"])
    conversations_flag_rank_refresh(conversation_ids=plan.conversations)


def _plan_write(plan: SweepPlan, now: datetime) -> None:
    if connection.vendor == "postgresql":
        _write_postgres(plan, now)
    else:
        _write_portable(plan, now)
    handoff_days_mark(plan.conversations)


# --- the sweep ----------------------------------------------------------------------------


@dataclass
class SweepResult:
    stalled: int = 0
    window_expired: int = 0
    flags_created: int = 0
    flags_refreshed: int = 0
    batches: int = 0
    by_state: dict[str, int] = field(default_factory=dict)


def handoffs_sweep(
    *,
    now: datetime | None = None,
    batch_size: int = 5000,
    on_progress: Callable[[SweepResult], Any] | None = None,
) -> SweepResult:
    """Raise what the passing of time proves: due waits first, then due WhatsApp windows,
    each batch its own transaction."""
    now = now or timezone.now()
    result = SweepResult()
    for phase in (_waits_batch, _windows_batch):
        while phase(now, batch_size, result):
            result.batches += 1
            if on_progress:
                on_progress(result)
    return result


def _waits_batch(now: datetime, limit: int, result: SweepResult) -> bool:
    with transaction.atomic():
        waits, handoffs = _due_waits(now, limit)
        if not waits:
            return False
        state = SweepState(now, handoffs, waits=waits)
        plan = _batch_apply(state, STALLED)
    result.stalled += len(plan.waits_stalled)
    for kind, n in plan.by_state.items():
        result.by_state[kind] = result.by_state.get(kind, 0) + n
    _count_flags(plan, result)
    return True


def _windows_batch(now: datetime, limit: int, result: SweepResult) -> bool:
    with transaction.atomic():
        due = _due_windows(now, limit)
        if not due:
            return False
        state = SweepState(now, {h.id: h for h in due}, windows=[h.id for h in due])
        plan = _batch_apply(state, DROPPED)
    result.window_expired += plan.window_expired
    _count_flags(plan, result)
    return True


def _batch_apply(state: SweepState, kind: str) -> SweepPlan:
    """Decide and write one loaded batch. A flag raised meanwhile by the machine (a late
    wait closed) makes the insert collide: load the flags again and decide again, once."""
    for attempt in (1, 2):
        state.flags = _active_flags(kind, list(state.handoffs))
        plan = sweep_decide(state)
        try:
            with transaction.atomic():
                _plan_write(plan, state.now)
                # A stall or drop found by time alone: did the customer come back elsewhere?
                channel_switch_check(conversation_ids=plan.conversations)
            return plan
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _count_flags(plan: SweepPlan, result: SweepResult) -> None:
    created = sum(1 for f in plan.flags.values() if f.id is None)
    result.flags_created += created
    result.flags_refreshed += len(plan.flags) - created
