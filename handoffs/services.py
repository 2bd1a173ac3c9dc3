"""The handoff sweep and the flag writes it shares: what only the passing of time proves.

`handoffs_sweep` (Celery beat, `manage.py sweep_handoffs`) raises handoff_stalled for
waits past their deadline, and handoff_dropped for WhatsApp handoffs whose 24-hour window
closed while the customer waited. It reads only rows that are due, through partial
indexes, so its cost follows what is due, not what is open.

The machine's ingest path (load → decide → write) is handoffs/journey.py; the rules it
shares with the sweep (waits ended, evidence, notes) are in flags.py, the SLA policies in
policies.py, `rebuild_handoffs` in rebuild.py.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from conversations.conf import auditor_settings
from conversations.models import Conversation, Flag
from conversations.services import (
    conversations_flag_rank_refresh,
    dashboard_days_mark,
    flag_raise,
)

from . import sweep_sql
from .business_time import business_seconds
from .flags import (
    DROPPED,
    STALLED,
    WINDOW_EXPIRED,
    _stall_evidence,
    _stall_figures,
    dropped_evidence,
    stalled_refresh,
)
from .machine import WAITING
from .models import Handoff, Wait
from .policies import (
    _calendar_cached,
    policy_calendar,
    sla_policy_resolve,  # noqa: F401  (bench/sweep.py imports it from here)
)

# --- flags ------------------------------------------------------------------------------


def _flag_dropped(handoff: Handoff, *, reason: str, evidence: dict[str, Any], at: datetime) -> Flag:
    """One active handoff_dropped flag per handoff; each reason found is added to it."""
    if reason not in handoff.dropped_reasons:
        handoff.dropped_reasons = [*handoff.dropped_reasons, reason]
        handoff.dropped_at = handoff.dropped_at or at
        Handoff.objects.filter(pk=handoff.pk).update(
            dropped_reasons=handoff.dropped_reasons, dropped_at=handoff.dropped_at
        )
    current = Flag.objects.filter(
        kind=DROPPED,
        subject_type=Flag.SubjectType.HANDOFF,
        subject_id=handoff.pk,
        status__in=Flag.ACTIVE_STATUSES,
    ).first()
    details = dict((current.evidence.get("details") if current else None) or {})
    details[reason] = evidence
    flag, _ = flag_raise(
        conversation=handoff.conversation,
        kind=DROPPED,
        severity=Flag.Severity.HIGH,
        subject_type=Flag.SubjectType.HANDOFF,
        subject_id=handoff.pk,
        evidence=dropped_evidence(handoff, reason=reason, details=details),
        at=at,
    )
    return flag


def handoff_days_mark(conversation_ids: Iterable[int]) -> None:
    """Mark for the dashboard rollups the start days of these conversations and the request
    days of all their handoffs (a new handoff changes what its conversation's other
    handoff days share): one look-up and one upsert."""
    ids = sorted(set(conversation_ids))
    if ids:
        dashboard_days_mark(conversation_ids=ids, moments=Handoff.objects.filter(
            conversation_id__in=ids).values_list("requested_at", flat=True))


# --- the sweep --------------------------------------------------------------------------


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
    """Raise what the passing of time proves. Reads only due rows (partial indexes); each
    batch is its own transaction and skips rows another sweep holds, so two sweeps can
    run at once without flagging anything twice."""
    now = now or timezone.now()
    result = SweepResult()
    while _sweep_waits(now, batch_size, result):
        result.batches += 1
        if on_progress:
            on_progress(result)
    while _sweep_windows(now, batch_size, result):
        result.batches += 1
        if on_progress:
            on_progress(result)
    return result


def _set_based() -> bool:
    return connection.vendor == "postgresql" and bool(auditor_settings.SWEEP_SET_BASED)


def _sweep_waits(now: datetime, batch_size: int, result: SweepResult) -> bool:
    if _set_based():
        stalled, created, by_state = sweep_sql.sweep_waits(
            now,
            batch_size,
            kind=STALLED,
            evidence=_stall_figures,
            calendar=lambda text: _calendar_cached(json.dumps(json.loads(text), sort_keys=True)),
            mark=handoff_days_mark,
        )
        result.stalled += stalled
        result.flags_created += created
        result.flags_refreshed += stalled - created
        for state, count in by_state.items():
            result.by_state[state] = result.by_state.get(state, 0) + count
        return bool(stalled)
    with transaction.atomic():
        due = list(
            Wait.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(ended_at__isnull=True, stalled_at__isnull=True, deadline_at__lte=now)
            .select_related("handoff")
            .order_by("deadline_at")[:batch_size]
        )
        if not due:
            return False
        findings = []
        for wait in due:
            handoff = wait.handoff
            waited = business_seconds(wait.started_at, now, policy_calendar(handoff.policy))
            findings.append((handoff, _stall_evidence(wait, handoff, waited=waited, at=now)))
            result.by_state[wait.kind] = result.by_state.get(wait.kind, 0) + 1
        Wait.objects.filter(pk__in=[w.pk for w in due]).update(stalled_at=now)
        Handoff.objects.filter(pk__in={w.handoff_id for w in due}).update(
            stalled_count=F("stalled_count") + 1
        )
        created, refreshed = _stalled_flags_raise(findings, now)
    result.stalled += len(due)
    result.flags_created += created
    result.flags_refreshed += refreshed
    return True


def _window_figures(
    *, last_customer: datetime, expired: datetime, state: str, requested_at: datetime, now: datetime
) -> dict[str, Any]:
    """The details of a whatsapp_window_expired drop (both sweep paths)."""
    return {
        "last_customer_message_at": last_customer.isoformat(),
        "window_expired_at": expired.isoformat(),
        "window_hours": auditor_settings.WHATSAPP_WINDOW_HOURS,
        "state": state,
        "waited_seconds": round((now - requested_at).total_seconds(), 1),
        "note": "only a template message can reach the customer now (Twilio error 63016)",
    }


def _stalled_flags_raise(
    findings: list[tuple[Handoff, dict[str, Any]]], now: datetime
) -> tuple[int, int]:
    """handoff_stalled for many handoffs in a few statements: one active flag per handoff,
    a second stall of the same handoff adds to that flag's history."""
    existing = stalled_flags_active([h.pk for h, _ in findings])
    new, refreshed = [], []
    for handoff, evidence in findings:
        flag, created = stalled_flag_decide(existing.get(handoff.pk), handoff, evidence, now)
        (new if created else refreshed).append(flag)
    try:
        with transaction.atomic():
            Flag.objects.bulk_create(new)
    except IntegrityError:
        # Raised concurrently through another path: one at a time, merging.
        for flag in new:
            flag_raise(
                conversation=Conversation(pk=flag.conversation_id),
                kind=STALLED,
                severity=flag.severity,
                subject_type=flag.subject_type,
                subject_id=flag.subject_id,
                evidence=flag.evidence,
                at=now,
            )
    if refreshed:
        Flag.objects.bulk_update(refreshed, ["evidence", "severity", "updated_at"])
    conversations_flag_rank_refresh(conversation_ids=[h.conversation_id for h, _ in findings])
    handoff_days_mark([h.conversation_id for h, _ in findings])
    return len(new), len(refreshed)


def stalled_flags_active(handoff_ids: Iterable[int]) -> dict[int, Flag]:
    """The active handoff_stalled flag of each handoff that has one."""
    return {
        f.subject_id: f
        for f in Flag.objects.filter(
            kind=STALLED,
            subject_type=Flag.SubjectType.HANDOFF,
            subject_id__in=list(handoff_ids),
            status__in=Flag.ACTIVE_STATUSES,
        )
    }


def stalled_flag_decide(
    flag: Flag | None, handoff: Handoff, evidence: dict[str, Any], now: datetime
) -> tuple[Flag, bool]:
    """A stall found: a new flag (True), or the active one refreshed with the stall added
    to its history (False); in memory, the caller writes."""
    evidence, severity = stalled_refresh(
        flag.evidence if flag is not None else None, handoff.stalled_count, evidence
    )
    if flag is None:
        return Flag(
            conversation_id=handoff.conversation_id,
            kind=STALLED,
            severity=severity,
            subject_type=Flag.SubjectType.HANDOFF,
            subject_id=handoff.pk,
            evidence=evidence,
            raised_at=now,
        ), True
    flag.evidence, flag.severity, flag.updated_at = evidence, severity, now
    return flag, False


def _sweep_windows(now: datetime, batch_size: int, result: SweepResult) -> bool:
    if _set_based():
        rows, flagged = sweep_sql.sweep_windows(
            now, batch_size, kind=DROPPED, reason=WINDOW_EXPIRED, detail=_window_figures,
            mark=handoff_days_mark,
        )
        result.window_expired += flagged
        return bool(rows)
    with transaction.atomic():
        due = list(
            Handoff.objects.select_for_update(skip_locked=True)
            .filter(window_expires_at__lte=now)
            .select_related("conversation")
            .order_by("window_expires_at")[:batch_size]
        )
        if not due:
            return False
        for handoff in due:
            expired_at = handoff.window_expires_at
            if handoff.state in WAITING:
                _flag_dropped(
                    handoff,
                    reason=WINDOW_EXPIRED,
                    at=now,
                    evidence=_window_figures(
                        last_customer=handoff.last_customer_message_at,
                        expired=expired_at,
                        state=handoff.state,
                        requested_at=handoff.requested_at,
                        now=now,
                    ),
                )
                result.window_expired += 1
        Handoff.objects.filter(pk__in=[h.pk for h in due]).update(window_expires_at=None)
        handoff_days_mark([h.conversation_id for h in due if h.state in WAITING])
    return True
