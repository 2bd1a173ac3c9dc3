"""The handoff machine's rules: pure Python over an explicit state, returning a plan.

`journey_decide(state, items)` applies each conversation's items in time order:

- conversation events map to triggers (machine.EVENT_TRIGGERS); a human agent's outbound
  message is the `engage` trigger; `machine.next_state` decides, and every event that
  concerns a handoff is logged, applied or not, with its reason;
- entering a waiting state opens a wait with its SLA deadline (business time where the
  policy says so); leaving it ends the wait with the time waited and whether it met;
- while engaged, a customer message opens a reply wait that the next human reply ends,
  unless it was already answered (a reply wait of the handoff covered its time);
- flags that an event proves at once are raised at once: handoff_dropped (ended before a
  human engaged; the AI kept answering after requesting a human), handoff_missed, and
  handoff_stalled for a wait that ends late unflagged; a human reply clears a stall.

No database, no clock: `state.now` is the batch's wall-clock time. The state is updated
as items are applied, so later items (and `journey_write`) see what earlier ones did.
"""

from datetime import datetime, timedelta
from typing import Any

from conversations.flag_text import duration_words
from conversations.models import AuthorKind, Channel

from .business_time import business_add, business_seconds
from .flags import _wait_evidence, late_wait_evidence, note_time, reply_clear_note, wait_end
from .journey_findings import (
    EVENT,
    MESSAGE,
    Findings,
    is_ai_reply,
    is_customer,
    is_human_reply,
)
from .journey_state import (
    BatchState,
    EventRow,
    HandoffRow,
    Item,
    MessageRow,
    Plan,
    WaitRow,
)
from .machine import EVENT_TRIGGERS, OPENING, TERMINAL, WAITING, State, Trigger, next_state
from .policies import _policy_ref, policy_calendar, policy_pick

REPLY = "reply"
TAKEOVER_REASON = (
    "a human replied while the AI was in charge, with no handoff requested (takeover)"
)


def items_build(
    messages: list[MessageRow], events: list[EventRow]
) -> dict[int, list[Item]]:
    """Each conversation's items in time order (events before messages at one instant,
    then as they came); events that trigger nothing are left out."""
    by_conversation: dict[int, list[Item]] = {}
    seq = 0
    for event in events:
        trigger = EVENT_TRIGGERS.get(event.type)
        if trigger is not None:
            seq += 1
            by_conversation.setdefault(event.conversation_id, []).append(
                Item(at=event.occurred_at, order=0, seq=seq, trigger=trigger, event=event)
            )
    for message in messages:
        seq += 1
        by_conversation.setdefault(message.conversation_id, []).append(
            Item(
                at=message.sent_at,
                order=1,
                seq=seq,
                trigger=Trigger.ENGAGE if is_human_reply(message) else None,
                message=message,
            )
        )
    for items in by_conversation.values():
        items.sort(key=lambda i: (i.at, i.order, i.seq))
    return by_conversation


def journey_decide(state: BatchState, items: dict[int, list[Item]]) -> Plan:
    """The plan for a batch: every conversation of `state` with its items, in id order."""
    plan = Plan()
    for conversation_id in sorted(state.conversations):
        _Decide(state, plan, state.conversations[conversation_id]).apply(
            items.get(conversation_id, [])
        )
    return plan


class _Decide(Findings):
    """One conversation's items; the methods are the rules, named as in the docs."""

    def apply(self, items: list[Item]) -> None:
        c = self.c
        handoff = c.active
        batch_messages = {i.message.pk for i in items if i.message is not None}
        batch_events = {i.event.pk for i in items if i.event is not None}
        for item in items:
            before = handoff
            if item.event is not None:
                if (EVENT, item.event.pk) in self.s.seen:
                    continue
                handoff = self.trigger(handoff, item.trigger, at=item.at,
                                       source=(EVENT, item.event.pk), event=item.event)
            else:
                handoff = self.message(handoff, item.message)
            if handoff is not None and handoff is not before:
                handoff = self.catch_up(handoff, batch_messages, batch_events)
        c.active = handoff
        self.plan.day_conversations.add(c.pk)
        self.plan.day_moments.extend(h.requested_at for h in c.handoffs)

    # --- waits ----------------------------------------------------------------------------

    def wait_open(self, handoff: HandoffRow, *, kind: str, at: datetime,
                  source_message_id: int | None = None) -> None:
        allowed = (handoff.policy.get("limits") or {}).get(kind)
        calendar = policy_calendar(handoff.policy)
        wait = WaitRow(
            handoff=handoff, kind=kind, started_at=at, allowed_seconds=allowed,
            business_hours=calendar is not None,
            deadline_at=None if allowed is None else business_add(at, allowed, calendar),
            source_message_id=source_message_id,
        )
        handoff.open_waits.append(wait)
        self.plan.new_waits.append(wait)
        if source_message_id is not None:
            self.s.waited.add(source_message_id)

    def waits_close(self, handoff: HandoffRow, *, at: datetime,
                    kinds: tuple[str, ...] | None = None) -> list[WaitRow]:
        """End the handoff's open waits (those begun by `at`) and record how long they took;
        one that ended late and unflagged raises handoff_stalled now."""
        closing = [w for w in handoff.open_waits
                   if w.started_at <= at and (kinds is None or w.kind in kinds)]
        calendar = policy_calendar(handoff.policy)
        for wait in closing:
            handoff.open_waits.remove(wait)
            if wait.kind == REPLY:
                handoff.reply_waits_ended.append(wait)
            late = wait_end(wait, at=at, calendar=calendar)
            if wait.pk is not None:
                self.plan.ended_waits.append(wait)
            if late:
                handoff.stalls += 1
                self.touch(handoff, "stalled_count")
                self.stalled_raise(handoff, late_wait_evidence(wait, handoff, at=at), at,
                                   began=wait.deadline_at)
        return closing

    def window_set(self, handoff: HandoffRow) -> None:
        """WhatsApp: while the customer waits for a human, the 24-hour window may close."""
        if (handoff.channel == Channel.WHATSAPP and handoff.state in WAITING
                and handoff.last_customer_message_at is not None):
            handoff.window_expires_at = handoff.last_customer_message_at + timedelta(
                hours=self.s.rules.whatsapp_window_hours)
        else:
            handoff.window_expires_at = None

    def deadline_evidence(self, handoff: HandoffRow) -> dict[str, Any]:
        wait = max(handoff.open_waits, key=lambda w: w.started_at, default=None)
        if wait is None:
            return {}
        return {
            "wait": wait.kind,
            "deadline_at": wait.deadline_at.isoformat() if wait.deadline_at else None,
            "allowed_seconds": wait.allowed_seconds,
            "business_hours": wait.business_hours,
            "policy": _policy_ref(handoff.policy),
        }

    # --- triggers -------------------------------------------------------------------------

    def trigger(self, handoff: HandoffRow | None, trigger: Trigger, *, at: datetime,
                source: tuple[str, int], event: EventRow | None = None,
                message: MessageRow | None = None) -> HandoffRow | None:
        """Apply one trigger; returns the conversation's active handoff afterwards."""
        if handoff is None:
            return self.no_active(trigger, at=at, source=source, event=event, message=message)
        if at < handoff.requested_at:
            if trigger == Trigger.REQUEST:
                # The request arrived after later steps: it dates the handoff, moves nothing.
                self.log(handoff, trigger=trigger, at=at, source=source,
                         from_state=handoff.state,
                         reason=f"already {handoff.state}; requested_at corrected from "
                         f"{handoff.requested_at.isoformat()}")
                # The rollup of the day it was requested on before still counts it there.
                self.plan.day_moments.append(handoff.requested_at)
                handoff.requested_at = at
                # Who asked is the request's to say: an assignment or a reply that opened
                # the handoff before it arrived only implied a human.
                handoff.requested_by = _requested_by(event) or handoff.requested_by
                self.touch(handoff, "requested_at", "requested_by", "updated_at")
                if handoff.engaged_at is not None:
                    self.time_to_human_set(handoff)
                return handoff
            self.log(handoff, trigger=trigger, at=at, source=source, from_state=handoff.state,
                     reason="occurred before this handoff was requested")
            return handoff
        target, why = next_state(State(handoff.state), trigger)
        if target is None:
            self.log(handoff, trigger=trigger, at=at, source=source, from_state=handoff.state,
                     reason=why)
            return handoff
        return self.enter(handoff, target, trigger=trigger, at=at, source=source, event=event,
                          message=message)

    def time_to_human_set(self, handoff: HandoffRow) -> None:
        handoff.time_to_human = (handoff.engaged_at - handoff.requested_at).total_seconds()
        handoff.time_to_human_business = business_seconds(
            handoff.requested_at, handoff.engaged_at, policy_calendar(handoff.policy))
        self.touch(handoff, "time_to_human", "time_to_human_business")

    def no_active(self, trigger: Trigger, *, at: datetime, source: tuple[str, int],
                  event: EventRow | None, message: MessageRow | None) -> HandoffRow | None:
        c = self.c
        latest = c.handoffs[-1] if c.handoffs else None
        if latest is not None and latest.ended_at is not None and at <= latest.ended_at:
            # Dated inside a handoff that has ended: logged there, opens nothing.
            if message is None:
                self.log(latest, trigger=trigger, at=at, source=source,
                         from_state=latest.state,
                         reason=f"the handoff already ended ({latest.state})")
                return None
            ended = latest
            if at < latest.requested_at:
                ended = next((h for h in reversed(c.handoffs) if h.requested_at <= at
                              and h.ended_at is not None and h.ended_at >= at), latest)
            # A human reply: if that handoff never saw it (it never engaged, or engaged
            # later), the reply came late, and the log keeps it; else it was one of many.
            if ended.engaged_at is None or at < ended.engaged_at:
                self.log(ended, trigger=trigger, at=at, source=source,
                         from_state=ended.state,
                         reason=f"the handoff already ended ({ended.state}); this reply, "
                         "dated before its end, arrived after it")
            return None
        if trigger in (Trigger.RESOLVE, Trigger.CLOSE):
            self.asks_missed(at=at, why=f"conversation {trigger}d without a handoff")
            return None
        if trigger == Trigger.RETURN:
            return None
        if trigger == Trigger.ENGAGE:
            # A human who replies while the AI is in charge takes over: a handoff nobody
            # requested. Mail a human answers with no AI around is not a handoff.
            since = latest.ended_at if latest is not None else None
            if not any(t <= at and (since is None or t > since) for t in c.ai_times):
                return None
        state = OPENING[trigger]
        handoff = self.open(state=state, trigger=trigger, at=at, event=event, message=message,
                            number=(latest.number + 1) if latest else 1)
        self.log(handoff, trigger=trigger, at=at, source=source, from_state="", to_state=state,
                 reason="opened" if trigger != Trigger.ENGAGE else TAKEOVER_REASON,
                 evidence=self.deadline_evidence(handoff))
        self.asks_satisfied(handoff, at=at)
        return handoff

    def open(self, *, state: State, trigger: Trigger, at: datetime, event: EventRow | None,
             message: MessageRow | None, number: int) -> HandoffRow:
        data = (event.data if event else None) or {}
        queue = str(data.get("queue") or "")
        agent_id, agent_name = _actor(event, message)
        staffed = state in (State.ASSIGNED, State.ENGAGED)
        engaged = state == State.ENGAGED
        handoff = HandoffRow(
            conversation_id=self.c.pk,
            number=number,
            channel=self.c.channel,
            state=state,
            state_entered_at=at,
            requested_by=_requested_by(event) if trigger != Trigger.ENGAGE else "human",
            reason=str(data.get("reason") or ""),
            queue=queue,
            agent_id=agent_id if staffed else "",
            agent_name=agent_name if staffed else "",
            team=_team(event) if staffed else "",
            requested_at=at,
            queued_at=at if state == State.QUEUED else None,
            assigned_at=at if state == State.ASSIGNED else None,
            engaged_at=at if engaged else None,
            time_to_human=0.0 if engaged else None,
            time_to_human_business=0.0 if engaged else None,
            policy=policy_pick(self.s.policies, channel=self.c.channel, queue=queue),
            last_customer_message_at=self.c.last_customer_message_at,
        )
        self.window_set(handoff)
        self.c.handoffs.append(handoff)
        self.plan.new_handoffs.append(handoff)
        if state in WAITING:
            self.wait_open(handoff, kind=state, at=at)
        return handoff

    def enter(self, handoff: HandoffRow, target: State, *, trigger: Trigger, at: datetime,
              source: tuple[str, int], event: EventRow | None,
              message: MessageRow | None) -> HandoffRow | None:
        """Move a handoff to `target` (a forward move from the table) and do what it implies."""
        before = State(handoff.state)
        agent_id, agent_name = _actor(event, message)
        if target == before:  # reassignment
            reason = f"reassigned from {handoff.agent_id or 'nobody'}"
            if agent_id != handoff.agent_id or _team(event):
                handoff.team = _team(event)
            handoff.agent_id, handoff.agent_name = agent_id, agent_name
            self.touch(handoff, "agent_id", "agent_name", "team", "updated_at")
            self.log(handoff, trigger=trigger, at=at, source=source, from_state=before,
                     to_state=target, reason=reason)
            return handoff

        closed = self.waits_close(handoff, at=at)
        handoff.state, handoff.state_entered_at = target, at
        self.touch(handoff, "state", "state_entered_at", "updated_at", "window_expires_at")
        if trigger == Trigger.QUEUE:
            queue = str(((event.data if event else None) or {}).get("queue") or "")
            handoff.queued_at = at
            if queue and queue != handoff.queue:
                handoff.queue = queue
                handoff.policy = policy_pick(self.s.policies, channel=handoff.channel,
                                             queue=queue)
                self.touch(handoff, "policy")
            self.touch(handoff, "queued_at", "queue")
        if target in (State.ASSIGNED, State.ENGAGED) and agent_id:
            if agent_id != handoff.agent_id or _team(event):
                handoff.team = _team(event)
            handoff.agent_id, handoff.agent_name = agent_id, agent_name
            self.touch(handoff, "agent_id", "agent_name", "team")
        if target == State.ASSIGNED:
            handoff.assigned_at = at
            self.touch(handoff, "assigned_at")
        if target == State.ENGAGED:
            handoff.engaged_at = at
            self.touch(handoff, "engaged_at")
            self.time_to_human_set(handoff)
        if target in TERMINAL:
            handoff.ended_at = at
            self.touch(handoff, "ended_at")
        self.window_set(handoff)

        if target in WAITING:
            self.wait_open(handoff, kind=target, at=at)
        evidence: dict[str, Any] = {"waits_closed": [_wait_evidence(w) for w in closed]}
        evidence.update(self.deadline_evidence(handoff))
        if target == State.ENGAGED:
            self.reply_wait_overtaken(handoff, at=at)
            evidence["time_to_human_seconds"] = round(handoff.time_to_human or 0, 1)
            evidence["time_to_human_business_seconds"] = round(
                handoff.time_to_human_business or 0, 1)
            who = handoff.agent_name or handoff.agent_id or "agent"
            self.stalled_clear(
                handoff, at=at, kinds=WAITING,
                note=f"Cleared automatically: a human ({who}) replied at {note_time(at)}, "
                f"{duration_words(handoff.time_to_human or 0)} after the request.",
            )
        self.log(handoff, trigger=trigger, at=at, source=source, from_state=before,
                 to_state=target, evidence=evidence)
        if target == State.ABANDONED:
            self.dropped(handoff, reason=f"{trigger}d_before_human", at=at, evidence={
                "state_when_ended": before,
                "ended_at": at.isoformat(),
                "waited_seconds": round((at - handoff.requested_at).total_seconds(), 1),
                "waits": [_wait_evidence(w) for w in closed],
            })
        return None if target in TERMINAL else handoff

    def catch_up(self, handoff: HandoffRow, skip_messages: set[int],
                 skip_events: set[int]) -> HandoffRow | None:
        """A handoff just opened: apply what arrived before it but is dated after its
        request (out-of-order delivery: the agent's reply, or the close, overtook the
        handoff events), in time order, so the order of arrival does not change where the
        handoff ends."""
        since = handoff.requested_at
        late: list[tuple[datetime, int, int, EventRow | MessageRow]] = []
        for e in self.c.later_events:
            if (e.occurred_at >= since and e.pk not in skip_events
                    and (EVENT, e.pk) not in self.s.seen):
                late.append((e.occurred_at, 0, e.pk, e))
        for m in self.c.later_messages:
            if m.sent_at >= since and m.pk not in skip_messages:
                late.append((m.sent_at, 1, m.pk, m))
        for at, _, _, row in sorted(late, key=lambda x: x[:3]):
            if handoff is None:
                break
            if isinstance(row, EventRow):
                handoff = self.trigger(handoff, EVENT_TRIGGERS[row.type], at=at,
                                       source=(EVENT, row.pk), event=row)
            else:
                handoff = self.message(handoff, row)
        return handoff

    # --- messages -------------------------------------------------------------------------

    def message(self, handoff: HandoffRow | None, message: MessageRow) -> HandoffRow | None:
        at = message.sent_at
        if is_human_reply(message):
            if (MESSAGE, message.pk) in self.s.seen:
                return handoff
            if handoff is not None and at < handoff.requested_at:
                return handoff  # a reply from before this handoff: earlier history
            if handoff is not None and handoff.state == State.ENGAGED:
                if self.waits_close(handoff, at=at, kinds=(REPLY,)):
                    self.stalled_clear(handoff, at=at, kinds=(REPLY,),
                                       note=reply_clear_note(at))
                return handoff
            return self.trigger(handoff, Trigger.ENGAGE, at=at, source=(MESSAGE, message.pk),
                                message=message)
        if is_customer(message):
            if handoff is not None:
                # Even one dated before the request: delivered late, it is still the
                # customer's last word, which opens WhatsApp's window.
                self.customer_waits(handoff, message)
            else:
                self.customer_ask(message)
            return handoff
        if is_ai_reply(message):
            self.asks_count_ai_turn(message)
            if (handoff is not None and handoff.state in WAITING and at >= handoff.requested_at
                    and handoff.last_ai_message_id != message.pk):
                handoff.ai_replies_after_request += 1
                handoff.last_ai_message_id = message.pk
                self.touch(handoff, "ai_replies_after_request", "last_ai_message_id")
                allowed = self.s.rules.ai_replies_allowed
                if handoff.ai_replies_after_request > allowed:
                    self.dropped(handoff, reason="ai_kept_answering", at=at, evidence={
                        "ai_replies_after_request": handoff.ai_replies_after_request,
                        "allowed": allowed,
                        "state": handoff.state,
                        "latest_ai_message": message.pk,
                        "latest_ai_message_at": at.isoformat(),
                        "excerpt": message.body[:200],
                    })
        return handoff

    def customer_waits(self, handoff: HandoffRow, message: MessageRow) -> None:
        at = message.sent_at
        if handoff.last_customer_message_at is None or at > handoff.last_customer_message_at:
            handoff.last_customer_message_at = at
            window_before = handoff.window_expires_at
            self.window_set(handoff)
            # Only the WhatsApp window needs it stored; elsewhere it is kept in memory.
            if handoff.window_expires_at != window_before or handoff.channel == Channel.WHATSAPP:
                self.touch(handoff, "last_customer_message_at", "window_expires_at")
        if handoff.state != State.ENGAGED or handoff.engaged_at is None or at < handoff.engaged_at:
            return
        if message.pk in self.s.waited or any(w.kind == REPLY for w in handoff.open_waits):
            return
        # Answered already: a reply wait of this handoff was open at its time (the same
        # batch delivered again, or the message reported after the reply).
        if any(w.started_at <= at <= w.ended_at for w in handoff.reply_waits_ended):
            return
        self.wait_open(handoff, kind=REPLY, at=at, source_message_id=message.pk)

    def reply_wait_overtaken(self, handoff: HandoffRow, *, at: datetime) -> None:
        """Customer messages dated after the engagement that arrived before it: the first
        one after the latest human reply starts a reply wait, as if they came in order."""
        messages = self.c.later_messages
        last_human = max((m.sent_at for m in messages if is_human_reply(m) and m.sent_at >= at),
                         default=at)
        waiting = min((m for m in messages if is_customer(m) and m.sent_at > last_human),
                      key=lambda m: (m.sent_at, m.pk), default=None)
        if (waiting is not None and waiting.pk not in self.s.waited
                and not any(w.kind == REPLY for w in handoff.open_waits)):
            self.wait_open(handoff, kind=REPLY, at=waiting.sent_at,
                           source_message_id=waiting.pk)

def _requested_by(event: EventRow | None) -> str:
    if event is None:
        return ""
    return str((event.data or {}).get("requested_by") or event.actor_kind or "")


def _team(event: EventRow | None) -> str:
    """The agent's team from a handoff.assigned event (channels.events puts it in data)."""
    if event is None or event.actor_kind != AuthorKind.HUMAN:
        return ""
    return str((event.data or {}).get("team") or "")[:100]


def _actor(event: EventRow | None, message: MessageRow | None) -> tuple[str, str]:
    if event is not None and event.actor_kind == AuthorKind.HUMAN:
        return event.actor_id, event.actor_name
    if message is not None:
        return message.agent
    return "", ""
