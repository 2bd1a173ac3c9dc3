"""Writes of the handoff machine: applying journey events, SLA waits, flags.

`journey_apply` runs inside the ingest transaction (conversations' `journey_recorded`
signal). Per conversation it takes the conversation's row lock, so concurrent events for
one handoff are serialized, and applies the batch's events in time order:

- conversation events map to triggers (machine.EVENT_TRIGGERS); a human agent's outbound
  message is the `engage` trigger; `machine.next_state` decides, and every event that
  concerns a handoff is logged in HandoffTransition, applied or not, with its reason;
- entering a waiting state opens a Wait with its SLA deadline (business time where the
  policy says so); leaving it closes the Wait with the time waited and whether it met;
- while engaged, each customer message opens a reply Wait that the next human reply ends;
- flags that an event proves at once are raised at once: handoff_dropped (closed before a
  human engaged; the AI kept answering after requesting a human) and handoff_missed.

What only the passing of time proves (stalled waits, closed WhatsApp windows) is the
sweep's, in sweep.py; it shares the flag rules kept here (`stalled_flag_merge`,
`dropped_flag_evidence`, the stall evidence).

Every write is idempotent: transitions are unique per source event or message, Waits per
source message, and AI replies are counted once by message id, so `reprocess_events`
changes nothing the second time.
"""

import functools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q

from conversations.conf import auditor_settings
from conversations.models import (
    AIStep,
    AuthorKind,
    Channel,
    Conversation,
    ConversationEvent,
    Direction,
    Flag,
    Message,
)
from conversations.services import (
    conversations_flag_rank_refresh,
    dashboard_days_mark,
    flag_raise,
    flag_set_status,
)

from . import batch
from .business_time import Calendar, business_add, business_seconds
from .machine import ACTIVE, EVENT_TRIGGERS, OPENING, TERMINAL, WAITING, State, Trigger, next_state
from .models import Handoff, HandoffTransition, HumanAsk, SLAPolicy, Wait

STALLED = "handoff_stalled"
DROPPED = "handoff_dropped"
MISSED = "handoff_missed"
WINDOW_EXPIRED = "whatsapp_window_expired"
AUTO = "handoff-auditor"  # who changes a flag's status automatically

Source = HandoffTransition.Source
TAKEOVER_REASON = (
    "a human replied while the AI was in charge, with no handoff requested (takeover)"
)
# Events that may have overtaken a handoff's opening (they never open one themselves).
CATCH_UP_TYPES = [t for t, trigger in EVENT_TRIGGERS.items() if trigger not in OPENING]

# While rebuild_handoffs replays history: the raw events replayed so far. Catching up then
# looks only at rows that had arrived by then, as the live path would have.
_replayed: ContextVar[set[int] | None] = ContextVar("handoffs_replayed", default=None)


# --- SLA policies and calendars ---------------------------------------------------------


def sla_policy_resolve(*, channel: str, queue: str = "") -> dict[str, Any]:
    """The policy in force for a channel and queue, as a snapshot kept on the handoff.

    The most specific active SLAPolicy row wins (queue before channel); without one, the
    HANDOFF_AUDITOR["SLA_POLICIES"] defaults for the channel (or "*")."""
    return sla_policies_resolve(channels=[channel], queue=queue)[channel]


def sla_policies_resolve(*, channels: Iterable[str], queue: str = "") -> dict[str, dict[str, Any]]:
    """sla_policy_resolve for several channels, in one query."""
    channels = set(channels)
    candidates = list(
        SLAPolicy.objects.filter(active=True)
        .filter(Q(channel__in=[*channels, ""]), Q(queue=queue) | Q(queue=""))
        .select_related("calendar")
    )
    return {
        channel: _policy_snapshot(channel, [p for p in candidates if p.channel in (channel, "")])
        for channel in channels
    }


def _policy_snapshot(channel: str, candidates: list[SLAPolicy]) -> dict[str, Any]:
    best = max(candidates, key=lambda p: (bool(p.queue), bool(p.channel)), default=None)
    if best is not None:
        return {
            "id": best.pk,
            "name": best.name,
            "limits": best.limits(),
            "calendar": best.calendar.as_dict() if best.calendar else None,
            "auto_resolve": best.auto_resolve,
        }
    defaults = auditor_settings.SLA_POLICIES
    limits = defaults.get(channel) or defaults.get("*") or {}
    return {
        "id": None,
        "name": f"default ({channel if channel in defaults else '*'})",
        "limits": {k: limits.get(k) for k in ("requested", "queued", "assigned", "reply")},
        "calendar": auditor_settings.SLA_CALENDAR,
        "auto_resolve": bool(auditor_settings.SLA_AUTO_RESOLVE),
    }


@functools.lru_cache(maxsize=256)
def _calendar_cached(key: str) -> Calendar:
    return Calendar.from_dict(json.loads(key))


def policy_calendar(policy: dict[str, Any]) -> Calendar | None:
    """The Calendar of a policy snapshot (parsed once per distinct calendar)."""
    data = policy.get("calendar")
    return _calendar_cached(json.dumps(data, sort_keys=True)) if data else None


def _policy_ref(policy: dict[str, Any]) -> dict[str, Any]:
    return {"id": policy.get("id"), "name": policy.get("name")}


# --- waits ------------------------------------------------------------------------------


def _wait_open(
    handoff: Handoff, *, kind: str, at: datetime, source_message: Message | None = None
) -> Wait:
    allowed = (handoff.policy.get("limits") or {}).get(kind)
    calendar = policy_calendar(handoff.policy)
    wait = Wait.objects.create(
        handoff=handoff,
        kind=kind,
        started_at=at,
        allowed_seconds=allowed,
        business_hours=calendar is not None,
        deadline_at=None if allowed is None else business_add(at, allowed, calendar),
        source_message=source_message,
    )
    cached = _open_waits_cached(handoff)
    if cached is not None:
        cached.append(wait)
    return wait


def _open_waits_cached(handoff: Handoff) -> list[Wait] | None:
    """The handoff's open waits as journey_apply loaded them for the whole batch (kept up to
    date by _wait_open and _waits_close), or None: ask the database."""
    return getattr(handoff, "_open_waits", None)


def _waits_close(
    handoff: Handoff, *, at: datetime, kinds: Iterable[str] | None = None
) -> list[Wait]:
    """End the handoff's open waits (those begun by `at`) and record how long they took."""
    cached = _open_waits_cached(handoff)
    if cached is not None:
        open_waits = [
            w for w in cached if w.started_at <= at and (kinds is None or w.kind in kinds)
        ]
        if not open_waits:
            return []
        for wait in open_waits:
            cached.remove(wait)
    else:
        open_waits = Wait.objects.filter(handoff=handoff, ended_at__isnull=True, started_at__lte=at)
        if kinds is not None:
            open_waits = open_waits.filter(kind__in=list(kinds))
    calendar = policy_calendar(handoff.policy)
    closed = []
    for wait in open_waits:
        late = wait_end(wait, at=at, calendar=calendar)
        wait.save(update_fields=WAIT_END_FIELDS)
        if late:
            Handoff.objects.filter(pk=handoff.pk).update(stalled_count=F("stalled_count") + 1)
            _stalled_flags_raise([(handoff, late_wait_evidence(wait, handoff, at=at))], at)
        closed.append(wait)
    return closed


WAIT_END_FIELDS = ["ended_at", "waited_seconds", "met", "stalled_at"]


def wait_end(wait: Wait, *, at: datetime, calendar: Calendar | None) -> bool:
    """End a wait at `at` (in memory): how long it took and whether it met its limit.
    True when it was late and no sweep had flagged it: the finding is raised now (beat
    down, or history rebuilt), so no late wait goes unflagged."""
    wait.ended_at = at
    wait.waited_seconds = business_seconds(wait.started_at, at, calendar)
    wait.met = (
        None if wait.allowed_seconds is None else (wait.waited_seconds <= wait.allowed_seconds)
    )
    late = wait.met is False and wait.stalled_at is None
    if late:
        wait.stalled_at = at
    return late


def late_wait_evidence(wait: Wait, handoff: Handoff, *, at: datetime) -> dict[str, Any]:
    evidence = _stall_evidence(wait, handoff, waited=wait.waited_seconds, at=at)
    return {**evidence, "detected": "when the wait ended"}


def _wait_evidence(wait: Wait) -> dict[str, Any]:
    return {
        "state": wait.kind,
        "entered_at": wait.started_at.isoformat(),
        "ended_at": wait.ended_at.isoformat() if wait.ended_at else None,
        "waited_seconds": None if wait.waited_seconds is None else round(wait.waited_seconds, 1),
        "allowed_seconds": wait.allowed_seconds,
        "met": wait.met,
    }


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
    flag, _ = flag_raise(
        conversation=handoff.conversation,
        kind=DROPPED,
        severity=Flag.Severity.HIGH,
        subject_type=Flag.SubjectType.HANDOFF,
        subject_id=handoff.pk,
        evidence=dropped_flag_evidence(
            handoff, reason=reason, evidence=evidence, current=current.evidence if current else None
        ),
        at=at,
    )
    return flag


def dropped_flag_evidence(
    handoff: Any, *, reason: str, evidence: dict[str, Any], current: dict[str, Any] | None
) -> dict[str, Any]:
    """The evidence of a handoff_dropped flag once `reason` is found (with its figures):
    the reasons found before stay in `reasons` and `details`. `handoff` is anything with
    the Handoff fields it reads."""
    details = dict((current.get("details") if current else None) or {})
    details[reason] = evidence
    return {
        "reason": reason,
        "reasons": list(details),
        "handoff": handoff.number,
        "channel": handoff.channel,
        "requested_at": handoff.requested_at.isoformat(),
        "requested_by": handoff.requested_by,
        "state": handoff.state,
        "policy": _policy_ref(handoff.policy),
        "details": details,
    }


def _stalled_flags_clear(
    handoff: Handoff, *, at: datetime, note: str, kinds: Iterable[str] | None = None
) -> int:
    """The condition cleared (a human replied): resolve the stalled flag if the policy says
    so, with a note saying what cleared it."""
    if not handoff.policy.get("auto_resolve", True):
        return 0
    flags = Flag.objects.filter(
        kind=STALLED,
        subject_type=Flag.SubjectType.HANDOFF,
        subject_id=handoff.pk,
        status__in=Flag.ACTIVE_STATUSES,
    )
    cleared = 0
    for flag in flags:
        if kinds is not None and flag.evidence.get("state") not in set(kinds):
            continue
        flag_set_status(
            flag=flag, status=Flag.Status.RESOLVED, by=AUTO, note=stall_clear_note(flag, at, note)
        )
        cleared += 1
    return cleared


def stall_clear_note(flag: Flag, at: datetime, note: str) -> str:
    """Why a handoff_stalled flag was cleared by a human reply at `at`."""
    deadline = flag.evidence.get("deadline_at")
    if deadline and at <= datetime.fromisoformat(deadline):
        # The sweep could not know: the reply was in time, it was reported late.
        return (
            f"Cleared automatically: the reply dated {at.isoformat()} was within the "
            f"deadline ({deadline}); it was reported after the sweep flagged the wait."
        )
    return note


def reply_clear_note(at: datetime) -> str:
    return f"Cleared automatically: a human replied at {at.isoformat()}."


# --- applying journey events --------------------------------------------------------------


@dataclass
class _Item:
    at: datetime
    order: int  # events before messages at the same instant
    seq: int
    trigger: Trigger | None = None
    event: ConversationEvent | None = None
    message: Message | None = None


@functools.lru_cache(maxsize=8)
def _human_request_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def human_request_match(text: str) -> str:
    """The words by which a customer message asks for a human, or ''."""
    patterns = tuple(auditor_settings.HUMAN_REQUEST_PATTERNS)
    if not text or not patterns:
        return ""
    found = _human_request_regex(patterns).search(text)
    return found.group(0) if found else ""


def _is_human_reply(message: Message) -> bool:
    return message.author_kind == AuthorKind.HUMAN and message.direction == Direction.OUTBOUND


def _is_ai_reply(message: Message) -> bool:
    return message.author_kind == AuthorKind.AI and message.direction == Direction.OUTBOUND


def _is_customer(message: Message) -> bool:
    return message.author_kind == AuthorKind.CUSTOMER


def journey_apply(
    *, messages: Iterable[Message], conversation_events: Iterable[ConversationEvent]
) -> None:
    """Let the machine see a batch of recorded messages and conversation events."""
    by_conversation: dict[int, list[_Item]] = defaultdict(list)
    seq = 0
    # A batch may name the same row twice (an event re-sent inside one batch): once each.
    conversation_events = list({e.pk: e for e in conversation_events}.values())
    messages = list({m.pk: m for m in messages}.values())
    for event in conversation_events:
        trigger = EVENT_TRIGGERS.get(event.type)
        if trigger is not None:
            seq += 1
            by_conversation[event.conversation_id].append(
                _Item(at=event.occurred_at, order=0, seq=seq, trigger=trigger, event=event)
            )
    for message in messages:
        seq += 1
        by_conversation[message.conversation_id].append(
            _Item(
                at=message.sent_at,
                order=1,
                seq=seq,
                trigger=Trigger.ENGAGE if _is_human_reply(message) else None,
                message=message,
            )
        )
    if not by_conversation:
        return
    # One unlocked look decides which conversations have work; most inbound messages in
    # conversations without a handoff have none and cost nothing more.
    active = set(
        Handoff.objects.filter(
            conversation_id__in=by_conversation, state__in=sorted(ACTIVE)
        ).values_list("conversation_id", flat=True)
    )
    watching: set[int] | None = None  # None: not looked up (no AI reply, no trigger)
    if any(
        i.message is not None and _is_ai_reply(i.message) or i.trigger is not None
        for items in by_conversation.values()
        for i in items
    ):
        watching = set(
            HumanAsk.objects.filter(
                conversation_id__in=by_conversation, status=HumanAsk.Status.WATCHING
            ).values_list("conversation_id", flat=True)
        )
    work = [
        conversation_id
        for conversation_id, items in by_conversation.items()
        if conversation_id in active
        or conversation_id in (watching or ())
        or any(
            i.trigger is not None
            or (
                i.message is not None
                and _is_customer(i.message)
                and human_request_match(i.message.body)
            )
            for i in items
        )
    ]
    if not work:
        return
    # For the whole batch at once: the conversations' row locks (in id order, so concurrent
    # batches queue instead of deadlocking), their handoffs in progress with their open
    # waits, what the log has seen, and which customer messages already started a wait.
    conversations = {
        c.pk: c for c in Conversation.objects.select_for_update().filter(pk__in=work).order_by("pk")
    }
    handoffs = {
        h.conversation_id: h
        for h in Handoff.objects.filter(conversation_id__in=work, state__in=sorted(ACTIVE))
    }
    open_waits: dict[int, list[Wait]] = {h.pk: [] for h in handoffs.values()}
    for wait in Wait.objects.filter(handoff_id__in=open_waits, ended_at__isnull=True):
        open_waits[wait.handoff_id].append(wait)
    for handoff in handoffs.values():
        handoff._open_waits = open_waits[handoff.pk]
    all_items = [i for cid in work for i in by_conversation[cid]]
    seen = _sources_seen(all_items)
    customers = [i.message for i in all_items if i.message is not None and _is_customer(i.message)]
    with_wait = (
        set(
            Wait.objects.filter(source_message_id__in=[m.pk for m in customers]).values_list(
                "source_message_id", flat=True
            )
        )
        if customers
        else set()
    )
    for message in customers:
        message._has_wait = message.pk in with_wait
    per_row: list[int] = []
    engaged: dict[int, list[_Item]] = {}
    takeovers: dict[int, _Item] = {}
    asks: dict[int, list[_Item]] = {}
    set_based = batch.set_based(len(messages) + len(conversation_events))
    for conversation_id in sorted(work):
        items = sorted(by_conversation[conversation_id], key=lambda i: (i.at, i.order, i.seq))
        by_conversation[conversation_id] = items
        asks_watched = watching is None or conversation_id in watching
        conversations[conversation_id]._asks_possible = asks_watched
        handoff = handoffs.get(conversation_id)
        # AI replies count against a watched ask: only the asks path does that set-based.
        ai_turns = asks_watched and any(
            i.message is not None and _is_ai_reply(i.message) for i in items
        )
        if not set_based:
            per_row.append(conversation_id)
        elif batch.asks_plain(handoff, items):
            asks[conversation_id] = items
        elif ai_turns:
            per_row.append(conversation_id)
        elif batch.engaged_plain(handoff, items):
            engaged[conversation_id] = items
        elif (reply := batch.takeover_candidate(handoff, items)) is not None and (
            Source.MESSAGE, reply.message.pk
        ) not in seen:
            takeovers[conversation_id] = reply
        else:
            per_row.append(conversation_id)
    if takeovers:
        batch_ids = {i.message.pk for c in takeovers for i in by_conversation[c]}
        ok, loaded = batch.takeovers_check(takeovers, batch_ids, conversations)
        per_row = sorted([*per_row, *(set(takeovers) - ok)])
        takeovers = {c: takeovers[c] for c in sorted(ok)}
    if engaged or takeovers:
        # Handoffs a human is on or takes over: decided in memory, written in a few
        # statements (handoffs/batch.py).
        plan = batch.EngagedBatch([handoffs[c] for c in engaged], seen)
        for conversation_id, items in engaged.items():
            plan.apply(handoffs[conversation_id], items)
        for conversation_id, reply in takeovers.items():
            plan.takeover(
                conversations[conversation_id], reply, by_conversation[conversation_id], loaded
            )
        plan.write()
    if asks:
        # No handoff, customers asking for a human and the AI answering them.
        watched = batch.AsksBatch(list(asks))
        for conversation_id, items in asks.items():
            possible = conversations[conversation_id]._asks_possible
            watched.apply(conversation_id, items, possible=possible)
        watched.write()
    for conversation_id in per_row:
        _conversation_apply(
            conversations[conversation_id],
            handoffs.get(conversation_id),
            by_conversation[conversation_id],
            seen,
        )
    handoff_days_mark(work)


def handoff_days_mark(conversation_ids: Iterable[int]) -> None:
    """Mark for the dashboard rollups the start days of these conversations and the request
    days of all their handoffs (a new handoff changes what its conversation's other
    handoff days share): one look-up and one upsert."""
    ids = sorted(set(conversation_ids))
    if ids:
        dashboard_days_mark(conversation_ids=ids, moments=Handoff.objects.filter(
            conversation_id__in=ids).values_list("requested_at", flat=True))


def _conversation_apply(
    conversation: Conversation,
    handoff: Handoff | None,
    items: list[_Item],
    seen: set[tuple[str, int]],
) -> None:
    """Apply one conversation's items in time order (its row is locked by the caller)."""
    batch_messages = {i.message.pk for i in items if i.message is not None}
    batch_events = {i.event.pk for i in items if i.event is not None}
    for item in items:
        before = handoff
        if item.event is not None:
            if (Source.CONVERSATION_EVENT, item.event.pk) in seen:
                continue
            handoff = _trigger_apply(
                conversation,
                handoff,
                item.trigger,
                at=item.at,
                source=(Source.CONVERSATION_EVENT, item.event.pk),
                event=item.event,
            )
        else:
            handoff = _message_apply(conversation, handoff, item.message, seen)
        if handoff is not None and (before is None or before.pk != handoff.pk):
            handoff = _catch_up(
                conversation, handoff, skip_messages=batch_messages, skip_events=batch_events
            )


def _catch_up(
    conversation: Conversation,
    handoff: Handoff,
    *,
    skip_messages: set[int],
    skip_events: set[int],
) -> Handoff | None:
    """A handoff just opened: apply what arrived before it but is dated after its request
    (out-of-order delivery: the agent's reply, or the close, overtook the handoff events),
    in time order, so the order of arrival does not change where the handoff ends."""
    since = handoff.requested_at
    logged = HandoffTransition.objects.filter(handoff__conversation=conversation)
    logged_events = set(
        logged.filter(source_type=Source.CONVERSATION_EVENT).values_list("source_id", flat=True)
    )
    events = ConversationEvent.objects.filter(
        conversation=conversation, occurred_at__gte=since, type__in=CATCH_UP_TYPES
    ).exclude(pk__in=skip_events | logged_events)
    messages = (
        Message.objects.filter(conversation=conversation, sent_at__gte=since)
        .exclude(pk__in=skip_messages)
        .select_related("participant")
    )
    replayed = _replayed.get()
    if replayed is not None:
        events = events.filter(raw_event_id__in=replayed)
        messages = messages.filter(raw_event_id__in=replayed)
    late: list[tuple[datetime, int, ConversationEvent | Message]] = []
    late += [(event.occurred_at, 0, event) for event in events]
    late += [(message.sent_at, 1, message) for message in messages]
    for at, _, row in sorted(late, key=lambda x: (x[0], x[1], x[2].pk)):
        if handoff is None:
            break
        if isinstance(row, ConversationEvent):
            handoff = _trigger_apply(
                conversation,
                handoff,
                EVENT_TRIGGERS[row.type],
                at=at,
                source=(Source.CONVERSATION_EVENT, row.pk),
                event=row,
            )
        else:
            seen = (
                {(Source.MESSAGE, row.pk)}
                if logged.filter(source_type=Source.MESSAGE, source_id=row.pk).exists()
                else set()
            )
            handoff = _message_apply(conversation, handoff, row, seen)
    return handoff


def _sources_seen(items: list[_Item]) -> set[tuple[str, int]]:
    event_ids = [i.event.pk for i in items if i.event is not None]
    message_ids = [i.message.pk for i in items if i.trigger == Trigger.ENGAGE and i.message]
    if not event_ids and not message_ids:
        return set()
    rows = HandoffTransition.objects.filter(
        Q(source_type=Source.CONVERSATION_EVENT, source_id__in=event_ids)
        | Q(source_type=Source.MESSAGE, source_id__in=message_ids)
    ).values_list("source_type", "source_id")
    return {(t, i) for t, i in rows}


def _log(
    handoff: Handoff,
    *,
    trigger: Trigger,
    at: datetime,
    source: tuple[str, int],
    from_state: str,
    to_state: str = "",
    reason: str = "",
    evidence: dict[str, Any] | None = None,
) -> HandoffTransition:
    return HandoffTransition.objects.create(
        handoff=handoff,
        trigger=trigger,
        from_state=from_state,
        to_state=to_state,
        applied=bool(to_state),
        occurred_at=at,
        source_type=source[0],
        source_id=source[1],
        reason=reason,
        evidence=evidence or {},
    )


def _actor(event: ConversationEvent | None, message: Message | None) -> tuple[str, str]:
    if event is not None and event.actor_kind == AuthorKind.HUMAN:
        return event.actor_id, event.actor_name
    if message is not None and message.participant_id:
        participant = message.participant
        return participant.external_id, participant.display_name
    return "", ""


def _trigger_apply(
    conversation: Conversation,
    handoff: Handoff | None,
    trigger: Trigger,
    *,
    at: datetime,
    source: tuple[str, int],
    event: ConversationEvent | None = None,
    message: Message | None = None,
) -> Handoff | None:
    """Apply one trigger; returns the conversation's active handoff afterwards."""
    if handoff is None:
        return _no_active_handoff(
            conversation, trigger, at=at, source=source, event=event, message=message
        )
    if at < handoff.requested_at:
        if trigger == Trigger.REQUEST:
            # The request arrived after later steps: it dates the handoff, it moves nothing.
            _log(
                handoff,
                trigger=trigger,
                at=at,
                source=source,
                from_state=handoff.state,
                reason=f"already {handoff.state}; requested_at corrected from "
                f"{handoff.requested_at.isoformat()}",
            )
            # The rollup of the day it was requested on before still counts it there.
            dashboard_days_mark(moments=[handoff.requested_at])
            handoff.requested_at = at
            # Who asked is the request's to say: an assignment or a reply that opened the
            # handoff before it arrived only implied a human.
            handoff.requested_by = _requested_by(event) or handoff.requested_by
            changed = ["requested_at", "requested_by", "updated_at"]
            if handoff.engaged_at is not None:
                _time_to_human_set(handoff)
                changed += ["time_to_human", "time_to_human_business"]
            handoff.save(update_fields=changed)
            return handoff
        _log(
            handoff,
            trigger=trigger,
            at=at,
            source=source,
            from_state=handoff.state,
            reason="occurred before this handoff was requested",
        )
        return handoff
    target, why = next_state(State(handoff.state), trigger)
    if target is None:
        _log(handoff, trigger=trigger, at=at, source=source, from_state=handoff.state, reason=why)
        return handoff
    return _enter(
        handoff, target, trigger=trigger, at=at, source=source, event=event, message=message
    )


def _requested_by(event: ConversationEvent | None) -> str:
    if event is None:
        return ""
    return str((event.data or {}).get("requested_by") or event.actor_kind or "")


def _time_to_human_set(handoff: Handoff) -> None:
    handoff.time_to_human = (handoff.engaged_at - handoff.requested_at).total_seconds()
    handoff.time_to_human_business = business_seconds(
        handoff.requested_at, handoff.engaged_at, policy_calendar(handoff.policy)
    )


def _no_active_handoff(
    conversation: Conversation,
    trigger: Trigger,
    *,
    at: datetime,
    source: tuple[str, int],
    event: ConversationEvent | None,
    message: Message | None,
) -> Handoff | None:
    latest = Handoff.objects.filter(conversation=conversation).order_by("-number").first()
    if latest is not None and latest.ended_at is not None and at <= latest.ended_at:
        # Dated inside a handoff that has ended: logged there, opens nothing.
        if message is None:
            _log(
                latest,
                trigger=trigger,
                at=at,
                source=source,
                from_state=latest.state,
                reason=f"the handoff already ended ({latest.state})",
            )
            return None
        ended = latest
        if at < latest.requested_at:
            ended = _ended_handoff_around(conversation, at) or latest
        # A human reply: if that handoff never saw it (it never engaged, or engaged later),
        # the reply came late, and the log keeps it; else it was one reply among others.
        if ended.engaged_at is None or at < ended.engaged_at:
            _log(
                ended,
                trigger=trigger,
                at=at,
                source=source,
                from_state=ended.state,
                reason=f"the handoff already ended ({ended.state}); this reply, dated "
                "before its end, arrived after it",
            )
        return None
    if trigger in (Trigger.RESOLVE, Trigger.CLOSE):
        _asks_missed(conversation, at=at, why=f"conversation {trigger}d without a handoff")
        return None
    if trigger == Trigger.RETURN:
        return None
    if trigger == Trigger.ENGAGE:
        # A human who replies while the AI is in charge takes over: a handoff nobody
        # requested. Mail a human answers with no AI around is not a handoff.
        since = latest.ended_at if latest is not None else None
        ai_messages = Message.objects.filter(
            conversation=conversation, author_kind=AuthorKind.AI, sent_at__lte=at
        )
        ai_steps = AIStep.objects.filter(conversation=conversation, occurred_at__lte=at)
        if since is not None:
            ai_messages = ai_messages.filter(sent_at__gt=since)
            ai_steps = ai_steps.filter(occurred_at__gt=since)
        if not (ai_messages.exists() or ai_steps.exists()):
            return None
    state = OPENING[trigger]
    handoff = _open(
        conversation,
        state=state,
        trigger=trigger,
        at=at,
        event=event,
        message=message,
        number=(latest.number + 1) if latest else 1,
    )
    _log(
        handoff,
        trigger=trigger,
        at=at,
        source=source,
        from_state="",
        to_state=state,
        reason="opened" if trigger != Trigger.ENGAGE else TAKEOVER_REASON,
        evidence=_wait_deadline_evidence(handoff),
    )
    _asks_satisfied(conversation, handoff=handoff, at=at)
    return handoff


def _open(
    conversation: Conversation,
    *,
    state: State,
    trigger: Trigger,
    at: datetime,
    event: ConversationEvent | None,
    message: Message | None,
    number: int,
) -> Handoff:
    data = (event.data if event else None) or {}
    queue = str(data.get("queue") or "")
    agent_id, agent_name = _actor(event, message)
    staffed = state in (State.ASSIGNED, State.ENGAGED)
    handoff = Handoff.objects.create(
        conversation=conversation,
        number=number,
        channel=conversation.channel,
        state=state,
        state_entered_at=at,
        requested_by=_requested_by(event) if trigger != Trigger.ENGAGE else "human",
        reason=str(data.get("reason") or ""),
        queue=queue,
        agent_id=agent_id if staffed else "",
        agent_name=agent_name if staffed else "",
        requested_at=at,
        queued_at=at if state == State.QUEUED else None,
        assigned_at=at if state == State.ASSIGNED else None,
        engaged_at=at if state == State.ENGAGED else None,
        time_to_human=0.0 if state == State.ENGAGED else None,
        time_to_human_business=0.0 if state == State.ENGAGED else None,
        policy=sla_policy_resolve(channel=conversation.channel, queue=queue),
        last_customer_message_at=conversation.last_customer_message_at,
    )
    _window_set(handoff)
    if handoff.window_expires_at is not None:
        handoff.save(update_fields=["window_expires_at"])
    handoff._open_waits = []  # a new handoff has no wait yet: no need to ask the database
    if state in WAITING:
        _wait_open(handoff, kind=state, at=at)
    return handoff


def _window_set(handoff: Handoff) -> None:
    """WhatsApp: while the customer waits for a human, the 24-hour window may close."""
    if (
        handoff.channel == Channel.WHATSAPP
        and handoff.state in WAITING
        and handoff.last_customer_message_at is not None
    ):
        handoff.window_expires_at = handoff.last_customer_message_at + timedelta(
            hours=auditor_settings.WHATSAPP_WINDOW_HOURS
        )
    else:
        handoff.window_expires_at = None


def _wait_deadline_evidence(handoff: Handoff) -> dict[str, Any]:
    cached = _open_waits_cached(handoff)
    wait = (
        max(cached, key=lambda w: w.started_at, default=None)
        if cached is not None
        else Wait.objects.filter(handoff=handoff, ended_at__isnull=True)
        .order_by("-started_at")
        .first()
    )
    if wait is None:
        return {}
    return {
        "wait": wait.kind,
        "deadline_at": wait.deadline_at.isoformat() if wait.deadline_at else None,
        "allowed_seconds": wait.allowed_seconds,
        "business_hours": wait.business_hours,
        "policy": _policy_ref(handoff.policy),
    }


def _enter(
    handoff: Handoff,
    target: State,
    *,
    trigger: Trigger,
    at: datetime,
    source: tuple[str, int] | None,
    event: ConversationEvent | None = None,
    message: Message | None = None,
) -> Handoff | None:
    """Move a handoff to `target` (a forward move from the table) and do what it implies."""
    before = State(handoff.state)
    agent_id, agent_name = _actor(event, message)
    reason = ""
    changed = ["state", "state_entered_at", "updated_at"]
    if target == before:  # reassignment
        reason = f"reassigned from {handoff.agent_id or 'nobody'}"
        handoff.agent_id, handoff.agent_name = agent_id, agent_name
        changed = ["agent_id", "agent_name", "updated_at"]
        handoff.save(update_fields=changed)
        _log(
            handoff,
            trigger=trigger,
            at=at,
            source=source,
            from_state=before,
            to_state=target,
            reason=reason,
        )
        return handoff

    closed = _waits_close(handoff, at=at)
    handoff.state, handoff.state_entered_at = target, at
    if trigger == Trigger.QUEUE:
        queue = str(((event.data if event else None) or {}).get("queue") or "")
        handoff.queued_at = at
        if queue and queue != handoff.queue:
            handoff.queue = queue
            handoff.policy = sla_policy_resolve(channel=handoff.channel, queue=queue)
            changed.append("policy")
        changed += ["queued_at", "queue"]
    if target in (State.ASSIGNED, State.ENGAGED) and agent_id:
        handoff.agent_id, handoff.agent_name = agent_id, agent_name
        changed += ["agent_id", "agent_name"]
    if target == State.ASSIGNED:
        handoff.assigned_at = at
        changed.append("assigned_at")
    if target == State.ENGAGED:
        handoff.engaged_at = at
        _time_to_human_set(handoff)
        changed += ["engaged_at", "time_to_human", "time_to_human_business"]
    if target in TERMINAL:
        handoff.ended_at = at
        changed.append("ended_at")
    _window_set(handoff)
    changed.append("window_expires_at")
    handoff.save(update_fields=changed)

    if target in WAITING:
        _wait_open(handoff, kind=target, at=at)
    evidence: dict[str, Any] = {"waits_closed": [_wait_evidence(w) for w in closed]}
    evidence.update(_wait_deadline_evidence(handoff))
    if target == State.ENGAGED:
        _reply_wait_overtaken(handoff, at=at)
        evidence["time_to_human_seconds"] = round(handoff.time_to_human or 0, 1)
        evidence["time_to_human_business_seconds"] = round(handoff.time_to_human_business or 0, 1)
        who = handoff.agent_name or handoff.agent_id or "agent"
        _stalled_flags_clear(
            handoff,
            at=at,
            kinds=WAITING,
            note=(
                f"Cleared automatically: a human ({who}) replied at {at.isoformat()}, "
                f"{round(handoff.time_to_human or 0)} s after the request."
            ),
        )
    if source is not None:
        _log(
            handoff,
            trigger=trigger,
            at=at,
            source=source,
            from_state=before,
            to_state=target,
            reason=reason,
            evidence=evidence,
        )
    if target == State.ABANDONED:
        _flag_dropped(
            handoff,
            reason=f"{trigger}d_before_human",
            at=at,
            evidence={
                "state_when_ended": before,
                "ended_at": at.isoformat(),
                "waited_seconds": round((at - handoff.requested_at).total_seconds(), 1),
                "waits": [_wait_evidence(w) for w in closed],
            },
        )
    return None if target in TERMINAL else handoff


def _message_apply(
    conversation: Conversation,
    handoff: Handoff | None,
    message: Message,
    seen: set[tuple[str, int]],
) -> Handoff | None:
    at = message.sent_at
    if _is_human_reply(message):
        if (Source.MESSAGE, message.pk) in seen:
            return handoff
        if handoff is not None and at < handoff.requested_at:
            return handoff  # a reply from before this handoff: earlier history
        if handoff is not None and handoff.state == State.ENGAGED:
            waits = _waits_close(handoff, at=at, kinds=[Wait.Kind.REPLY])
            if waits:
                _stalled_flags_clear(
                    handoff, at=at, kinds=[Wait.Kind.REPLY], note=reply_clear_note(at)
                )
            return handoff
        return _trigger_apply(
            conversation,
            handoff,
            Trigger.ENGAGE,
            at=at,
            source=(Source.MESSAGE, message.pk),
            message=message,
        )
    if _is_customer(message):
        if handoff is not None:
            # Even one dated before the request: delivered late (Twilio and the AI platform
            # race), it is still the customer's last word, which opens WhatsApp's window.
            _customer_waits(handoff, message)
        elif handoff is None:
            _customer_ask(conversation, message)
        return handoff
    if _is_ai_reply(message):
        if getattr(conversation, "_asks_possible", True):
            _asks_count_ai_turn(conversation, message)
        if (
            handoff is not None
            and handoff.state in WAITING
            and at >= handoff.requested_at
            and (handoff.last_ai_message_id or 0) < message.pk
        ):
            handoff.ai_replies_after_request += 1
            handoff.last_ai_message_id = message.pk
            handoff.save(update_fields=["ai_replies_after_request", "last_ai_message_id"])
            allowed = auditor_settings.HANDOFF_AI_REPLIES_ALLOWED
            if handoff.ai_replies_after_request > allowed:
                _flag_dropped(
                    handoff,
                    reason="ai_kept_answering",
                    at=at,
                    evidence={
                        "ai_replies_after_request": handoff.ai_replies_after_request,
                        "allowed": allowed,
                        "state": handoff.state,
                        "latest_ai_message": message.pk,
                        "latest_ai_message_at": at.isoformat(),
                        "excerpt": message.body[:200],
                    },
                )
    return handoff


def _reply_wait_overtaken(handoff: Handoff, *, at: datetime) -> None:
    """Customer messages dated after the engagement that arrived before it: the first one
    after the latest human reply starts a reply wait, as if they had come in order."""
    conversation_messages = Message.objects.filter(conversation_id=handoff.conversation_id)
    last_human = (
        conversation_messages.filter(
            author_kind=AuthorKind.HUMAN, direction=Direction.OUTBOUND, sent_at__gte=at
        )
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    ) or at
    waiting = (
        conversation_messages.filter(author_kind=AuthorKind.CUSTOMER, sent_at__gt=last_human)
        .order_by("sent_at", "pk")
        .first()
    )
    if (
        waiting is not None
        and not Wait.objects.filter(
            Q(source_message=waiting) | Q(ended_at__isnull=True, kind=Wait.Kind.REPLY),
            handoff=handoff,
        ).exists()
    ):
        _wait_open(handoff, kind=Wait.Kind.REPLY, at=waiting.sent_at, source_message=waiting)


def _ended_handoff_around(conversation: Conversation, at: datetime) -> Handoff | None:
    return (
        Handoff.objects.filter(conversation=conversation, requested_at__lte=at, ended_at__gte=at)
        .order_by("-number")
        .first()
    )


def _customer_ask(conversation: Conversation, message: Message) -> None:
    """A customer message that asks for a human, with no handoff in progress: watch it, or
    count it as a repeat of the ask already watched. Counted once, however often applied."""
    matched = human_request_match(message.body)
    if not matched:
        return
    asks = HumanAsk.objects.filter(conversation=conversation)
    if asks.filter(
        Q(message=message) | Q(message_id__lt=message.pk, last_repeat_message_id__gte=message.pk)
    ).exists():
        return
    watched = asks.filter(status=HumanAsk.Status.WATCHING, asked_at__lte=message.sent_at).first()
    if watched is not None:
        watched.repeats += 1
        watched.last_repeat_message_id = message.pk
        watched.save(update_fields=["repeats", "last_repeat_message_id"])
        return
    conversation._asks_possible = True
    HumanAsk.objects.create(
        conversation=conversation,
        message=message,
        asked_at=message.sent_at,
        matched=matched[:255],
    )


def _customer_waits(handoff: Handoff, message: Message) -> None:
    at = message.sent_at
    if handoff.last_customer_message_at is None or at > handoff.last_customer_message_at:
        handoff.last_customer_message_at = at
        window_before = handoff.window_expires_at
        _window_set(handoff)
        # Only the WhatsApp window needs it stored; elsewhere it is kept in memory.
        if handoff.window_expires_at != window_before or handoff.channel == Channel.WHATSAPP:
            handoff.save(update_fields=["last_customer_message_at", "window_expires_at"])
    if handoff.state != State.ENGAGED or handoff.engaged_at is None or at < handoff.engaged_at:
        return
    cached = _open_waits_cached(handoff)
    waited_on = getattr(message, "_has_wait", None)  # loaded for the batch by journey_apply
    if cached is not None and waited_on is not None:
        if waited_on or any(w.kind == Wait.Kind.REPLY for w in cached):
            return
    elif Wait.objects.filter(
        Q(source_message=message) | Q(ended_at__isnull=True, kind=Wait.Kind.REPLY),
        handoff=handoff,
    ).exists():
        return
    _wait_open(handoff, kind=Wait.Kind.REPLY, at=at, source_message=message)


# --- handoff_missed ---------------------------------------------------------------------


def _asks_satisfied(conversation: Conversation, *, handoff: Handoff, at: datetime) -> None:
    HumanAsk.objects.filter(
        conversation=conversation, status=HumanAsk.Status.WATCHING, asked_at__lte=at
    ).update(status=HumanAsk.Status.SATISFIED, handoff=handoff, decided_at=at)
    # A request reported late: asks judged missed after it was made were answered in time.
    for ask in HumanAsk.objects.filter(
        conversation=conversation,
        status=HumanAsk.Status.MISSED,
        asked_at__lte=at,
        decided_at__gt=at,
    ):
        ask.status, ask.handoff, ask.decided_at = HumanAsk.Status.SATISFIED, handoff, at
        ask.save(update_fields=["status", "handoff", "decided_at"])
        for flag in Flag.objects.filter(
            kind=MISSED,
            subject_type=Flag.SubjectType.MESSAGE,
            subject_id=ask.message_id,
            status__in=Flag.ACTIVE_STATUSES,
        ):
            flag_set_status(
                flag=flag,
                status=Flag.Status.RESOLVED,
                by=AUTO,
                note=f"Cleared automatically: a handoff was requested at {at.isoformat()} "
                "(reported late), before the ask was judged missed.",
            )


def _asks_count_ai_turn(conversation: Conversation, message: Message) -> None:
    asks = HumanAsk.objects.filter(
        conversation=conversation,
        status=HumanAsk.Status.WATCHING,
        asked_at__lte=message.sent_at,
    ).filter(Q(last_ai_message_id__isnull=True) | Q(last_ai_message_id__lt=message.pk))
    limit = auditor_settings.HANDOFF_MISSED_AI_TURNS
    for ask in asks.select_related("message"):
        ask.ai_turns += 1
        ask.last_ai_message_id = message.pk
        if ask.ai_turns >= limit:
            _ask_missed(ask, at=message.sent_at, why=ai_turns_why(ask.ai_turns))
        ask.save(update_fields=["ai_turns", "last_ai_message_id", "status", "decided_at"])


def _asks_missed(conversation: Conversation, *, at: datetime, why: str) -> None:
    for ask in HumanAsk.objects.filter(
        conversation=conversation, status=HumanAsk.Status.WATCHING, asked_at__lte=at
    ).select_related("message"):
        _ask_missed(ask, at=at, why=why)
        ask.save(update_fields=["status", "decided_at"])


def _ask_missed(ask: HumanAsk, *, at: datetime, why: str) -> None:
    ask.status, ask.decided_at = HumanAsk.Status.MISSED, at
    flag_raise(
        conversation=ask.conversation,
        kind=MISSED,
        severity=Flag.Severity.HIGH,
        subject_type=Flag.SubjectType.MESSAGE,
        subject_id=ask.message_id,
        evidence=ask_missed_evidence(ask, why),
        at=at,
    )


def ask_missed_evidence(ask: HumanAsk, why: str) -> dict[str, Any]:
    return {
        "asked_at": ask.asked_at.isoformat(),
        "matched": ask.matched,
        "excerpt": ask.message.body[:200],
        "ai_turns": ask.ai_turns,
        "times_asked": ask.repeats + 1,
        "allowed_ai_turns": auditor_settings.HANDOFF_MISSED_AI_TURNS,
        "why": why,
    }


def ai_turns_why(turns: int) -> str:
    return f"the AI answered {turns} times without requesting a human"


# --- stall and drop evidence (the machine's late closes and the sweep) -----------------


def _stall_evidence(wait: Wait, handoff: Handoff, *, waited: float, at: datetime) -> dict[str, Any]:
    return _stall_figures(
        state=wait.kind,
        started=wait.started_at,
        deadline=wait.deadline_at,
        allowed=wait.allowed_seconds,
        business=wait.business_hours,
        waited=waited,
        policy=_policy_ref(handoff.policy),
        number=handoff.number,
        channel=handoff.channel,
        queue=handoff.queue,
        agent=handoff.agent_id,
        at=at,
    )


def _stall_figures(
    *,
    state: str,
    started: datetime,
    deadline: datetime | None,
    allowed: float | None,
    business: bool,
    waited: float,
    policy: dict[str, Any],
    number: int,
    channel: str,
    queue: str,
    agent: str,
    at: datetime,
) -> dict[str, Any]:
    """The evidence of a handoff_stalled finding (both sweep paths and late closes)."""
    return {
        "state": state,
        "entered_at": started.isoformat(),
        "deadline_at": deadline.isoformat() if deadline else None,
        "waited_seconds": round(waited, 1),
        "allowed_seconds": allowed,
        "over_by_seconds": round(waited - (allowed or 0.0), 1),
        "business_hours": business,
        "policy": policy,
        "handoff": number,
        "channel": channel,
        "queue": queue,
        "agent": agent,
        "detected_at": at.isoformat(),
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
    severity, merged = stalled_flag_merge(
        flag.evidence if flag else None, stalled_before=handoff.stalled_count, evidence=evidence
    )
    if flag is None:
        return Flag(
            conversation_id=handoff.conversation_id,
            kind=STALLED,
            severity=severity,
            subject_type=Flag.SubjectType.HANDOFF,
            subject_id=handoff.pk,
            evidence=merged,
            raised_at=now,
        ), True
    flag.evidence = merged
    flag.severity = severity
    flag.updated_at = now
    return flag, False


def stalled_flag_merge(
    current: dict[str, Any] | None, *, stalled_before: int, evidence: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The severity and evidence of a handoff_stalled flag after one more stall: a first
    flag is medium unless the handoff stalled before; a refreshed one is high and keeps
    each stalled state in `stalls`."""
    if current is None:
        severity = Flag.Severity.MEDIUM if stalled_before < 1 else Flag.Severity.HIGH
        return severity, {**evidence, "stalls": [evidence["state"]]}
    stalls = [*current.get("stalls", []), evidence["state"]]
    return Flag.Severity.HIGH, {**evidence, "stalls": stalls}


# --- rebuilding ---------------------------------------------------------------------------


def handoffs_rebuild(
    *,
    conversation_ids: Iterable[int] | None = None,
    on_progress: Callable[[int], Any] | None = None,
) -> int:
    """Drop the derived handoff rows of some conversations (all when None) and replay their
    messages and events through the machine, in time order. For a changed machine or
    policy applied to history; returns how many conversations were replayed."""
    conversations = Conversation.objects.all()
    if conversation_ids is not None:
        conversations = conversations.filter(pk__in=list(conversation_ids))
    # Retention emptied some of these conversations' text: replaying them would not find the
    # customers' asks for a human again and would delete their findings for good. Their
    # handoffs stay as they are.
    conversations = conversations.exclude(
        Exists(Message.objects.filter(conversation=OuterRef("pk"), purged_at__isnull=False)))
    count = 0
    for conversation_id in conversations.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            handoff_days_mark([conversation_id])  # the days of the handoffs about to go
            Handoff.objects.filter(conversation_id=conversation_id).delete()
            HumanAsk.objects.filter(conversation_id=conversation_id).delete()
            Flag.objects.filter(
                conversation_id=conversation_id, kind__in=[STALLED, DROPPED, MISSED]
            ).delete()
            _replay_in_arrival_order(conversation_id)
        count += 1
        if on_progress:
            on_progress(1)
    return count


def _replay_in_arrival_order(conversation_id: int) -> None:
    """Apply a conversation's rows as they arrived: one journey_apply per raw event (a
    webhook delivery), in the order the deliveries were received, as the live path did."""
    units: dict[Any, tuple[Any, list[Message], list[ConversationEvent]]] = {}

    def unit(row: Message | ConversationEvent, at: datetime) -> tuple:
        raw = row.raw_event
        key = ("raw", raw.pk) if raw is not None else ("row", type(row).__name__, row.pk)
        order = (raw.received_at, raw.pk) if raw is not None else (at, 0)
        return units.setdefault(key, (order, [], []))

    messages = Message.objects.filter(conversation_id=conversation_id).select_related(
        "participant", "raw_event"
    )
    for message in messages:
        unit(message, message.sent_at)[1].append(message)
    events = ConversationEvent.objects.filter(conversation_id=conversation_id).select_related(
        "raw_event"
    )
    for event in events:
        unit(event, event.occurred_at)[2].append(event)
    replayed: set[int] = set()
    token = _replayed.set(replayed)
    try:
        for _, unit_messages, unit_events in sorted(units.values(), key=lambda u: u[0]):
            raw_ids = {row.raw_event_id for row in (*unit_messages, *unit_events)}
            replayed.update(i for i in raw_ids if i is not None)
            journey_apply(messages=unit_messages, conversation_events=unit_events)
    finally:
        _replayed.reset(token)
