"""Set-based journey work for PostgreSQL batches: the machine's commonest shapes.

In a busy deployment most of what the machine sees is plain: customers asking for a
human while the AI answers (asks watched, repeats and AI turns counted, handoff_missed at
the limit), a human taking a conversation over from the AI, and the middle of an engaged
handoff (customer messages start a reply wait, human replies end it; a late one raises
handoff_stalled and the reply clears it). One by one (`services._conversation_apply`)
that is a few ORM statements per message. Here those conversations of a batch are
decided in memory from what `journey_apply` and a few queries loaded for the whole batch,
with the functions the per-row path uses (`wait_end`, `stalled_flag_decide`,
`stall_clear_note`, `ask_missed_evidence`, ...), and written in one statement per kind:
handoffs and their log entries, asks, new waits, ended waits, the handoffs' clocks and
stall counts (added up in the database), flags, the conversations' flag rank.
Everything else (a handoff requested, moving or ending, catch-up of overtaking rows,
handoffs after an earlier one) stays on the per-row path, which is the reference:
tests/handoffs/test_handoff_batch.py applies the same input both ways and compares every row.

Runs under the conversation row locks journey_apply takes for the whole batch, so
concurrent batches touching one conversation are serialized as on the per-row path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from conversations.conf import auditor_settings
from conversations.models import (
    AIStep,
    AuthorKind,
    Channel,
    Conversation,
    ConversationEvent,
    Flag,
    Message,
    Participant,
)

# services imports this module; the module object resolves its names when called.
from . import services
from .machine import State, Trigger
from .models import Handoff, HandoffTransition, HumanAsk, Wait

if TYPE_CHECKING:
    from .services import _Item


def set_based(item_count: int) -> bool:
    """PostgreSQL, a real batch, and the setting on (False: per row, e.g. to compare)."""
    return (
        item_count > 1
        and services._replayed.get() is None  # rebuild_handoffs: per row, as history came
        and connection.vendor == "postgresql"
        and bool(auditor_settings.JOURNEY_SET_BASED)
    )


def engaged_plain(handoff: Handoff | None, items: list[_Item]) -> bool:
    """Whether a conversation's items only continue an engaged handoff: messages, no
    handoff or conversation event (the caller leaves out AI replies to a watched ask)."""
    return (
        handoff is not None
        and handoff.state == State.ENGAGED
        and handoff.engaged_at is not None
        and all(i.event is None for i in items)
    )


def takeover_candidate(handoff: Handoff | None, items: list[_Item]) -> _Item | None:
    """The human reply that takes a conversation over, if its items are that simple: no
    handoff in progress, no handoff or conversation event, and before the reply nothing
    but customer messages that ask for no human and AI messages."""
    if handoff is not None or any(i.event is not None for i in items):
        return None
    for item in items:
        if services._is_human_reply(item.message):
            return item
        if services._is_customer(item.message) and services.human_request_match(
            item.message.body
        ):
            return None
    return None


def asks_plain(handoff: Handoff | None, items: list[_Item]) -> bool:
    """No handoff and nothing that could open one: customer and AI messages only."""
    return handoff is None and all(
        i.event is None and not services._is_human_reply(i.message) for i in items
    )


@dataclass
class AsksBatch:
    """services._customer_ask and _asks_count_ai_turn for a batch's conversations with no
    handoff: their asks loaded once, counted in memory, written in a few statements."""

    conversation_ids: list[int]
    asks: dict[int, list[HumanAsk]] = field(default_factory=dict)  # in id order, new last
    flags: dict[int, Flag] = field(default_factory=dict)  # ask's message id -> active missed
    new_asks: list[HumanAsk] = field(default_factory=list)
    changed_asks: dict[int, HumanAsk] = field(default_factory=dict)  # loaded ones, by pk
    new_flags: list[Flag] = field(default_factory=list)
    changed_flags: dict[int, Flag] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.asks = {c: [] for c in self.conversation_ids}
        loaded = HumanAsk.objects.filter(conversation_id__in=self.conversation_ids).select_related(
            "message"
        ).order_by("pk")
        for ask in loaded:
            self.asks[ask.conversation_id].append(ask)
        watched = [a.message_id for asks in self.asks.values() for a in asks
                   if a.status == HumanAsk.Status.WATCHING]
        if watched:
            self.flags = {f.subject_id: f for f in Flag.objects.filter(
                kind=services.MISSED, subject_type=Flag.SubjectType.MESSAGE,
                subject_id__in=watched, status__in=Flag.ACTIVE_STATUSES)}

    def apply(self, conversation_id: int, items: list[_Item], *, possible: bool) -> None:
        for item in items:
            message = item.message
            if services._is_customer(message):
                possible = self._customer(conversation_id, message) or possible
            elif services._is_ai_reply(message) and possible:
                self._ai_turn(conversation_id, message)

    def _customer(self, conversation_id: int, message: Message) -> bool:
        """An ask watched, or counted as a repeat; True when a new ask is watched."""
        matched = services.human_request_match(message.body)
        if not matched:
            return False
        asks = self.asks[conversation_id]
        if any(
            a.message_id == message.pk
            or (a.message_id < message.pk and (a.last_repeat_message_id or 0) >= message.pk)
            for a in asks
        ):
            return False
        for ask in asks:
            if ask.status == HumanAsk.Status.WATCHING and ask.asked_at <= message.sent_at:
                ask.repeats += 1
                ask.last_repeat_message_id = message.pk
                self._ask_changed(ask)
                return False
        ask = HumanAsk(conversation_id=conversation_id, message=message,
                       asked_at=message.sent_at, matched=matched[:255])
        asks.append(ask)
        self.new_asks.append(ask)
        return True

    def _ai_turn(self, conversation_id: int, message: Message) -> None:
        limit = auditor_settings.HANDOFF_MISSED_AI_TURNS
        for ask in self.asks[conversation_id]:
            if (
                ask.status != HumanAsk.Status.WATCHING
                or ask.asked_at > message.sent_at
                or (ask.last_ai_message_id is not None and ask.last_ai_message_id >= message.pk)
            ):
                continue
            ask.ai_turns += 1
            ask.last_ai_message_id = message.pk
            if ask.ai_turns >= limit:
                ask.status, ask.decided_at = HumanAsk.Status.MISSED, message.sent_at
                self._missed(ask, at=message.sent_at)
            self._ask_changed(ask)

    def _missed(self, ask: HumanAsk, *, at: datetime) -> None:
        """services.flag_raise for handoff_missed, in memory."""
        evidence = services.ask_missed_evidence(ask, services.ai_turns_why(ask.ai_turns))
        flag = self.flags.get(ask.message_id)
        if flag is None:
            flag = Flag(conversation_id=ask.conversation_id, kind=services.MISSED,
                        severity=Flag.Severity.HIGH, subject_type=Flag.SubjectType.MESSAGE,
                        subject_id=ask.message_id, evidence=evidence, raised_at=at)
            self.flags[ask.message_id] = flag
            self.new_flags.append(flag)
        else:
            flag.evidence, flag.severity = evidence, Flag.Severity.HIGH
            if flag.pk is not None:
                flag.updated_at = timezone.now()
                self.changed_flags[flag.pk] = flag

    def _ask_changed(self, ask: HumanAsk) -> None:
        if ask.pk is not None:
            self.changed_asks[ask.pk] = ask

    def write(self) -> None:
        if self.new_asks:
            HumanAsk.objects.bulk_create(self.new_asks)
        if self.changed_asks:
            _execute(_ASKS_UPDATE, [
                {"id": a.pk, "ai_turns": a.ai_turns, "last_ai_message_id": a.last_ai_message_id,
                 "repeats": a.repeats, "last_repeat_message_id": a.last_repeat_message_id,
                 "status": a.status, "decided_at": a.decided_at}
                for a in self.changed_asks.values()
            ])
        _flags_write(self.new_flags, self.changed_flags, ["evidence", "severity", "updated_at"])


@dataclass
class Takeover:
    """What takeovers_check loaded for the batch's takeovers."""

    policies: dict[str, dict[str, Any]]  # channel -> SLA policy snapshot
    actors: dict[int, tuple[str, str]]  # participant id -> (external id, display name)
    watching: dict[int, list[tuple[int, datetime]]]  # conversation -> watched asks


def takeovers_check(
    candidates: dict[int, _Item], batch_ids: set[int], conversations: dict[int, Conversation]
) -> tuple[set[int], Takeover]:
    """Which candidates the set-based path can take over, in a few queries for all: never
    had a handoff (the per-row path decides between ended handoffs), the AI was in charge
    (an AI message or step dated by the reply), nothing dated after the reply arrived
    earlier (the per-row catch-up would apply it), no ask judged missed after the reply
    (it would be answered in time after all)."""
    ids = list(candidates)
    at = {c: item.at for c, item in candidates.items()}
    no = set(Handoff.objects.filter(conversation_id__in=ids).values_list(
        "conversation_id", flat=True))
    ai_first: dict[int, datetime] = {}
    for model, when in ((Message, "sent_at"), (AIStep, "occurred_at")):
        rows = model.objects.filter(conversation_id__in=ids, **{f"{when}__lte": max(at.values())})
        if model is Message:
            rows = rows.filter(author_kind=AuthorKind.AI)
        for cid, first in rows.values("conversation_id").annotate(first=Min(when)).values_list(
            "conversation_id", "first"
        ):
            ai_first[cid] = min(first, ai_first.get(cid, first))
    no |= {c for c in ids if c not in ai_first or ai_first[c] > at[c]}
    since = min(at.values())
    for cid, when in Message.objects.filter(
        conversation_id__in=ids, sent_at__gte=since
    ).exclude(pk__in=batch_ids).values_list("conversation_id", "sent_at"):
        if when >= at[cid]:
            no.add(cid)
    for cid, when in ConversationEvent.objects.filter(
        conversation_id__in=ids, occurred_at__gte=since, type__in=services.CATCH_UP_TYPES
    ).values_list("conversation_id", "occurred_at"):
        if when >= at[cid]:
            no.add(cid)
    watching: dict[int, list[tuple[int, datetime]]] = {}
    for ask_id, cid, status, asked_at, decided_at in HumanAsk.objects.filter(
        conversation_id__in=ids,
        status__in=[HumanAsk.Status.WATCHING, HumanAsk.Status.MISSED],
    ).values_list("pk", "conversation_id", "status", "asked_at", "decided_at"):
        if status == HumanAsk.Status.WATCHING:
            watching.setdefault(cid, []).append((ask_id, asked_at))
        elif asked_at <= at[cid] < decided_at:
            no.add(cid)
    ok = set(ids) - no
    participants = {candidates[c].message.participant_id for c in ok} - {None}
    actors = {
        pk: (external_id, name)
        for pk, external_id, name in Participant.objects.filter(pk__in=participants).values_list(
            "pk", "external_id", "display_name"
        )
    }
    policies = services.sla_policies_resolve(channels={conversations[c].channel for c in ok})
    return ok, Takeover(policies=policies, actors=actors, watching=watching)


@dataclass
class _HandoffWork:
    handoff: Handoff
    stalls: int = 0  # late waits ended: stalled_count += stalls
    clock_dirty: bool = False  # last_customer_message_at (and window) to store


@dataclass
class EngagedBatch:
    """The in-memory effects of the engaged conversations of one batch, then their writes."""

    handoffs: list[Handoff]
    seen: set[tuple[str, int]]
    work: list[_HandoffWork] = field(default_factory=list)
    new_waits: list[Wait] = field(default_factory=list)
    ended_waits: list[Wait] = field(default_factory=list)  # loaded open, ended now
    flags: dict[int, Flag] = field(default_factory=dict)  # handoff id -> active stalled flag
    new_flags: list[Flag] = field(default_factory=list)
    changed_flags: dict[int, Flag] = field(default_factory=dict)  # loaded ones, by pk
    refreshed_new: list[Flag] = field(default_factory=list)

    takeovers: list[Handoff] = field(default_factory=list)  # opened here, inserted first
    transitions: list[HandoffTransition] = field(default_factory=list)
    asks_satisfied: list[tuple[int, Handoff, datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Keyed by conversation: a handoff opened in this batch has no id while planned.
        active = services.stalled_flags_active(h.pk for h in self.handoffs)
        self.flags = {h.conversation_id: active[h.pk] for h in self.handoffs if h.pk in active}

    def takeover(
        self, conversation: Conversation, reply: _Item, items: list[_Item], takeover: Takeover
    ) -> None:
        """services._no_active_handoff for a human's reply where the AI was in charge and no
        handoff ever was (takeovers_check made sure), then the rest of the items engaged."""
        message, at = reply.message, reply.at
        policy = takeover.policies[conversation.channel]
        handoff = Handoff(
            conversation=conversation,
            number=1,
            channel=conversation.channel,
            state=State.ENGAGED,
            state_entered_at=at,
            requested_by="human",
            reason="",
            queue="",
            agent_id=takeover.actors.get(message.participant_id, ("", ""))[0],
            agent_name=takeover.actors.get(message.participant_id, ("", ""))[1],
            requested_at=at,
            engaged_at=at,
            time_to_human=0.0,
            time_to_human_business=0.0,
            policy=policy,
            last_customer_message_at=conversation.last_customer_message_at,
        )
        services._window_set(handoff)
        handoff._open_waits = []
        handoff._inserted = (handoff.last_customer_message_at, handoff.window_expires_at)
        self.takeovers.append(handoff)
        self.transitions.append(HandoffTransition(
            handoff=handoff,
            trigger=Trigger.ENGAGE,
            from_state="",
            to_state=State.ENGAGED,
            applied=True,
            occurred_at=at,
            source_type=services.Source.MESSAGE,
            source_id=message.pk,
            reason=services.TAKEOVER_REASON,
            evidence=services._wait_deadline_evidence(handoff),
        ))
        for ask_id, asked_at in takeover.watching.get(conversation.pk, ()):
            if asked_at <= at:
                self.asks_satisfied.append((ask_id, handoff, at))
        self.apply(handoff, items[items.index(reply) + 1:])

    def apply(self, handoff: Handoff, items: list[_Item]) -> None:
        """One conversation's items, in time order, as _conversation_apply would."""
        work = _HandoffWork(handoff)
        self.work.append(work)
        for item in items:
            message = item.message
            if services._is_human_reply(message):
                if (services.Source.MESSAGE, message.pk) in self.seen:
                    continue
                if message.sent_at >= handoff.requested_at:
                    self._human_reply(work, message.sent_at)
            elif services._is_customer(message):
                self._customer(work, message)
            # An AI reply while engaged, with no ask watched, changes nothing.

    def _customer(self, work: _HandoffWork, message: Any) -> None:
        """services._customer_waits, in memory."""
        handoff, at = work.handoff, message.sent_at
        if handoff.last_customer_message_at is None or at > handoff.last_customer_message_at:
            handoff.last_customer_message_at = at
            window_before = handoff.window_expires_at
            services._window_set(handoff)
            if handoff.window_expires_at != window_before or handoff.channel == Channel.WHATSAPP:
                work.clock_dirty = True
        if at < handoff.engaged_at:
            return
        open_waits = handoff._open_waits
        if message._has_wait or any(w.kind == Wait.Kind.REPLY for w in open_waits):
            return
        allowed = (handoff.policy.get("limits") or {}).get(Wait.Kind.REPLY)
        calendar = services.policy_calendar(handoff.policy)
        wait = Wait(
            handoff=handoff,
            kind=Wait.Kind.REPLY,
            started_at=at,
            allowed_seconds=allowed,
            business_hours=calendar is not None,
            deadline_at=None if allowed is None else services.business_add(at, allowed, calendar),
            source_message=message,
        )
        open_waits.append(wait)
        self.new_waits.append(wait)

    def _human_reply(self, work: _HandoffWork, at: datetime) -> None:
        """services._message_apply for a human reply while engaged: end the reply waits
        begun by then, raise what was late, clear the stalled flag."""
        handoff = work.handoff
        open_waits = handoff._open_waits
        ending = [w for w in open_waits if w.started_at <= at and w.kind == Wait.Kind.REPLY]
        if not ending:
            return
        calendar = services.policy_calendar(handoff.policy)
        for wait in ending:
            open_waits.remove(wait)
            if services.wait_end(wait, at=at, calendar=calendar):
                work.stalls += 1
                evidence = services.late_wait_evidence(wait, handoff, at=at)
                flag, created = services.stalled_flag_decide(
                    self.flags.get(handoff.conversation_id), handoff, evidence, at
                )
                if created:
                    flag._handoff = handoff  # subject_id once the handoff is inserted
                self._flag_changed(flag, created)
                self.flags[handoff.conversation_id] = flag
            if wait.pk is not None:
                self.ended_waits.append(wait)
        if not handoff.policy.get("auto_resolve", True):
            return
        flag = self.flags.get(handoff.conversation_id)
        if flag is not None and flag.evidence.get("state") == Wait.Kind.REPLY:
            flag.status = Flag.Status.RESOLVED
            flag.status_changed_at = timezone.now()
            flag.status_changed_by = services.AUTO
            flag.note = services.stall_clear_note(flag, at, services.reply_clear_note(at))
            self._flag_changed(flag, False)
            del self.flags[handoff.conversation_id]

    def _flag_changed(self, flag: Flag, created: bool) -> None:
        if created:
            self.new_flags.append(flag)
        elif flag.pk is not None:
            self.changed_flags[flag.pk] = flag
        elif flag.status in Flag.ACTIVE_STATUSES and flag not in self.refreshed_new:
            # Raised, then refreshed in this batch: one by one it is created, then updated
            # (updated_at = the refresh's time, which the INSERT's auto_now would replace).
            self.refreshed_new.append(flag)

    # --- writes ---------------------------------------------------------------------------

    def write(self) -> None:
        if self.takeovers:
            # Inserted as opened; what the items changed after is in the UPDATE below.
            later = [(h.last_customer_message_at, h.window_expires_at) for h in self.takeovers]
            for h in self.takeovers:
                h.last_customer_message_at, h.window_expires_at = h._inserted
            Handoff.objects.bulk_create(self.takeovers)
            for h, (clock, window) in zip(self.takeovers, later, strict=True):
                h.last_customer_message_at, h.window_expires_at = clock, window
            HandoffTransition.objects.bulk_create(self.transitions)
        if self.asks_satisfied:
            _execute(_ASKS_SATISFIED, [
                {"id": ask_id, "handoff_id": h.pk, "decided_at": at}
                for ask_id, h, at in self.asks_satisfied
            ])
        for flag in self.new_flags:
            flag.subject_id = flag._handoff.pk
        if self.new_waits:
            Wait.objects.bulk_create(self.new_waits)
        if self.ended_waits:
            _execute(_WAITS_END, [
                {"id": w.pk, "ended_at": w.ended_at, "waited_seconds": w.waited_seconds,
                 "met": w.met, "stalled_at": w.stalled_at}
                for w in self.ended_waits
            ])
        rows = [
            {"id": w.handoff.pk, "stalls": w.stalls, "clock": w.clock_dirty,
             "last_customer_message_at": w.handoff.last_customer_message_at,
             "window_expires_at": w.handoff.window_expires_at}
            for w in self.work
            if w.stalls or w.clock_dirty
        ]
        if rows:
            _execute(_HANDOFFS_UPDATE, rows)
        self._flags_write()

    def _flags_write(self) -> None:
        refreshed_at = {id(f): f.updated_at for f in self.refreshed_new}

        def restamp() -> None:
            for flag in self.refreshed_new:
                flag.updated_at = refreshed_at[id(flag)]
                self.changed_flags[flag.pk] = flag

        _flags_write(self.new_flags, self.changed_flags, _FLAG_FIELDS, inserted=restamp)


def _flags_write(
    new: list[Flag],
    changed: dict[int, Flag],
    fields: list[str],
    *,
    inserted: Callable[[], None] | None = None,
) -> None:
    """Insert and update flags, then refresh their conversations' rank once. An active
    flag raised concurrently (the sweep, another path) makes the INSERT fail: `new` are
    then merged one by one, as flag_raise does (and `inserted` is not called)."""
    if new:
        try:
            with transaction.atomic():
                Flag.objects.bulk_create(new)
        except IntegrityError:
            for flag in new:
                _flag_merge(flag)
        else:
            if inserted is not None:
                inserted()
    if changed:
        Flag.objects.bulk_update(list(changed.values()), fields)
    conversations = {f.conversation_id for f in (*new, *changed.values())}
    if conversations:
        services.conversations_flag_rank_refresh(conversation_ids=conversations)


def _flag_merge(flag: Flag) -> None:
    merged, _ = services.flag_raise(
        conversation=services.Conversation(pk=flag.conversation_id),
        kind=flag.kind,
        severity=flag.severity,
        subject_type=flag.subject_type,
        subject_id=flag.subject_id,
        evidence=flag.evidence,
        at=flag.raised_at,
    )
    if flag.status != merged.status:
        services.flag_set_status(
            flag=merged, status=flag.status, by=flag.status_changed_by, note=flag.note
        )


_FLAG_FIELDS = [
    "evidence", "severity", "updated_at", "status", "status_changed_at", "status_changed_by",
    "note",
]

_ASKS_UPDATE = """
UPDATE handoffs_humanask a
   SET ai_turns = v.ai_turns, last_ai_message_id = v.last_ai_message_id, repeats = v.repeats,
       last_repeat_message_id = v.last_repeat_message_id, status = v.status,
       decided_at = v.decided_at
  FROM json_to_recordset(%s::json) AS v(
       id bigint, ai_turns integer, last_ai_message_id bigint, repeats integer,
       last_repeat_message_id bigint, status text, decided_at timestamptz)
 WHERE a.id = v.id
"""

_ASKS_SATISFIED = """
UPDATE handoffs_humanask a
   SET status = 'satisfied', handoff_id = v.handoff_id, decided_at = v.decided_at
  FROM json_to_recordset(%s::json) AS v(id bigint, handoff_id bigint, decided_at timestamptz)
 WHERE a.id = v.id
"""

_WAITS_END = """
UPDATE handoffs_wait w
   SET ended_at = v.ended_at, waited_seconds = v.waited_seconds, met = v.met,
       stalled_at = v.stalled_at
  FROM json_to_recordset(%s::json) AS v(
       id bigint, ended_at timestamptz, waited_seconds double precision, met boolean,
       stalled_at timestamptz)
 WHERE w.id = v.id
"""

# The clock is stored only where the per-row path would save it (WhatsApp, or a window
# that moved); stall counts add up in the database, as the per-row F() update does.
_HANDOFFS_UPDATE = """
UPDATE handoffs_handoff h
   SET last_customer_message_at = CASE WHEN v.clock THEN v.last_customer_message_at
                                       ELSE h.last_customer_message_at END,
       window_expires_at = CASE WHEN v.clock THEN v.window_expires_at
                                ELSE h.window_expires_at END,
       stalled_count = h.stalled_count + v.stalls
  FROM json_to_recordset(%s::json) AS v(
       id bigint, stalls integer, clock boolean, last_customer_message_at timestamptz,
       window_expires_at timestamptz)
 WHERE h.id = v.id
"""


def _execute(sql: str, rows: list[dict[str, Any]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, [orjson.dumps(rows).decode()])
