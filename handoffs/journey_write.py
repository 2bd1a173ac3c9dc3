"""Write: a Plan of the handoff machine, set-based, on PostgreSQL and SQLite alike.

A few statements per table per batch, in an order the constraints allow: handoffs
changed (a handoff that ended frees the one-in-progress index for the next), handoffs
opened (their ids are what the log, waits, asks and flags of the batch refer to), the
log, waits inserted and ended, asks inserted and changed, flags changed then inserted
(a stall resolved before the next one is raised), the conversations' flag rank, the
dashboard's day marks. Stall counts are added up in the database (`stalled_count + n`):
the sweep counts stalls too, without the conversation's lock. Updates are one statement
per set of changed columns: on PostgreSQL `UPDATE … FROM json_to_recordset`, elsewhere
Django's bulk_update (the same rows).
"""

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from conversations.dashboard_marks import DayMarks
from conversations.models import Conversation, Flag, FlagEvent
from conversations.services import (
    conversations_flag_rank_refresh,
    flag_raise,
    flag_set_status,
)
from conversations.sql import rows_update

from .flags import WAIT_END_FIELDS
from .journey_state import BatchState, FlagRow, HandoffRow, Plan
from .models import Handoff, HandoffTransition, HumanAsk, Wait

_HANDOFF_INSERT = [
    "conversation_id", "number", "channel", "state", "state_entered_at", "requested_by",
    "reason", "queue", "agent_id", "agent_name", "team", "requested_at", "queued_at", "assigned_at",
    "engaged_at", "ended_at", "time_to_human", "time_to_human_business", "policy",
    "window_expires_at", "last_customer_message_at", "ai_replies_after_request",
    "last_ai_message_id", "dropped_reasons", "dropped_at",
]

_ASK_UPDATE = ["ai_turns", "last_ai_message_id", "repeats", "last_repeat_message_id", "status",
               "decided_at", "handoff_id"]


def journey_write(plan: Plan, state: BatchState) -> DayMarks:
    """Write the plan; return the dashboard days it changed, for the batch to mark once."""
    _handoffs_update(plan.changed_handoffs, state)
    if plan.new_handoffs:
        rows = [Handoff(**{f: getattr(h, f) for f in _HANDOFF_INSERT}, stalled_count=h.stalls)
                for h in plan.new_handoffs]
        Handoff.objects.bulk_create(rows)
        for handoff, row in zip(plan.new_handoffs, rows, strict=True):
            handoff.pk = row.pk
    if plan.transitions:
        HandoffTransition.objects.bulk_create([
            HandoffTransition(
                handoff_id=t.handoff.pk, trigger=t.trigger, from_state=t.from_state,
                to_state=t.to_state, applied=bool(t.to_state), occurred_at=t.occurred_at,
                source_type=t.source_type, source_id=t.source_id, reason=t.reason,
                evidence=t.evidence,
            )
            for t in plan.transitions
        ])
    if plan.new_waits:
        Wait.objects.bulk_create([
            Wait(handoff_id=w.handoff.pk, kind=w.kind, started_at=w.started_at,
                 allowed_seconds=w.allowed_seconds, business_hours=w.business_hours,
                 deadline_at=w.deadline_at, source_message_id=w.source_message_id,
                 ended_at=w.ended_at, waited_seconds=w.waited_seconds, met=w.met,
                 stalled_at=w.stalled_at)
            for w in plan.new_waits
        ])
    rows_update(Wait, [(w.pk, {f: getattr(w, f) for f in WAIT_END_FIELDS})
                           for w in plan.ended_waits])
    if plan.new_asks:
        HumanAsk.objects.bulk_create([
            HumanAsk(conversation_id=a.conversation_id, message_id=a.message_id,
                     asked_at=a.asked_at, matched=a.matched, ai_turns=a.ai_turns,
                     last_ai_message_id=a.last_ai_message_id, repeats=a.repeats,
                     last_repeat_message_id=a.last_repeat_message_id, status=a.status,
                     handoff_id=a.handoff.pk if a.handoff else None, decided_at=a.decided_at)
            for a in plan.new_asks
        ])
    # Asks change only under their conversation's lock: one UPDATE with every counter.
    rows_update(HumanAsk, [
        (a.pk, {**{f: getattr(a, f) for f in _ASK_UPDATE[:-1]},
                "handoff_id": a.handoff.pk if a.handoff is not None else a.handoff_id})
        for a in plan.changed_asks
    ])
    _flags_write(plan)
    return DayMarks().add(plan.day_conversations, plan.day_moments)


def _handoffs_update(handoffs: Sequence[HandoffRow], state: BatchState) -> None:
    rows = []
    for h in handoffs:
        values: dict[str, Any] = {}
        for f in h.changed:
            values[f] = (h.stalls if f == "stalled_count"
                         else state.now if f == "updated_at" else getattr(h, f))
        rows.append((h.pk, values))
    rows_update(Handoff, rows, added=("stalled_count",))


def _flag(flag: FlagRow) -> Flag:
    return Flag(
        conversation_id=flag.conversation_id, kind=flag.kind, severity=flag.severity,
        subject_type=flag.subject_type,
        subject_id=flag.handoff.pk if flag.handoff is not None else flag.subject_id,
        evidence=flag.evidence, raised_at=flag.raised_at, status=flag.status,
        status_changed_at=flag.status_changed_at, status_changed_by=flag.status_changed_by,
        note=flag.note,
    )


def _flags_write(plan: Plan) -> None:
    """Flags changed, then raised; the conversations' rank once. An active flag raised
    concurrently (by the sweep) makes the INSERT fail: the new ones are then merged one
    by one, as flag_raise does."""
    rows_update(Flag, [(f.pk, {k: getattr(f, k) for k in f.changed})
                           for f in plan.changed_flags])
    # Status changes the machine makes join each flag's triage trail, as people's do.
    FlagEvent.objects.bulk_create([
        FlagEvent(flag_id=f.pk, at=f.status_changed_at, by=f.status_changed_by,
                  action=FlagEvent.Action.STATUS, from_value=f.status_before,
                  to_value=f.status, note=f.note)
        for f in plan.changed_flags if "status" in f.changed and f.pk is not None])
    if plan.new_flags:
        rows = [_flag(f) for f in plan.new_flags]
        try:
            with transaction.atomic():
                Flag.objects.bulk_create(rows)
        except IntegrityError:
            for flag in rows:
                merged, _ = flag_raise(
                    conversation=Conversation(pk=flag.conversation_id), kind=flag.kind,
                    severity=flag.severity, subject_type=flag.subject_type,
                    subject_id=flag.subject_id, evidence=flag.evidence, at=flag.raised_at,
                )
                if flag.status != merged.status:
                    flag_set_status(flag=merged, status=flag.status, by=flag.status_changed_by,
                                    note=flag.note)
    if plan.flag_conversations:
        conversations_flag_rank_refresh(conversation_ids=plan.flag_conversations)
