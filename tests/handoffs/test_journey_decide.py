"""The machine's decide step on its own: an explicit state and a batch's items in, a plan
out, with no database (these tests have no `django_db` mark: a query would fail them)."""

from datetime import UTC, datetime, timedelta

from handoffs.flags import DROPPED, STALLED, reply_clear_note
from handoffs.journey_decide import items_build, journey_decide
from handoffs.journey_state import (
    BatchState,
    ConversationState,
    EventRow,
    FlagRow,
    HandoffRow,
    MessageRow,
    Rules,
    WaitRow,
)
from handoffs.policies import policy_pick

T0 = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
CONVERSATION = 7
RULES = Rules(patterns=(r"\bhuman\b",), ai_replies_allowed=1, missed_ai_turns=2,
              whatsapp_window_hours=24)
_ids = iter(range(1000, 10**6))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def message(seconds: float, kind: str, body: str = "hello") -> MessageRow:
    return MessageRow(
        pk=next(_ids), conversation_id=CONVERSATION, sent_at=at(seconds), author_kind=kind,
        direction="inbound" if kind == "customer" else "outbound", body=body,
        raw_event_id=None, agent=("nora", "Nora") if kind == "human" else ("", ""),
    )


def event(seconds: float, type_: str, **data) -> EventRow:
    return EventRow(pk=next(_ids), conversation_id=CONVERSATION, type=type_,
                    occurred_at=at(seconds), actor_kind="ai", actor_id="", actor_name="",
                    data=data, raw_event_id=None)


def state(conversation: ConversationState, *, waited: set[int] = frozenset()) -> BatchState:
    return BatchState(rules=RULES, now=at(3600), policies=[], seen=set(), waited=set(waited),
                      conversations={conversation.pk: conversation})


def engaged_handoff(policy: dict) -> HandoffRow:
    return HandoffRow(pk=11, conversation_id=CONVERSATION, number=1, channel="web",
                      state="engaged", state_entered_at=at(0), requested_at=at(0),
                      engaged_at=at(0), policy=policy, agent_id="nora", agent_name="Nora")


def decide(batch: BatchState, messages=(), events=()):
    return journey_decide(batch, items_build(list(messages), list(events)))


def test_a_request_then_a_human_reply_engages_the_handoff():
    conversation = ConversationState(pk=CONVERSATION, channel="web",
                                     last_customer_message_at=at(-10),
                                     later_messages=[], ai_times=[at(-5)])
    reply = message(40, "human", "Hi, Nora here")
    conversation.later_messages = [reply]
    plan = decide(state(conversation), [reply], [event(0, "handoff.requested")])

    [handoff] = plan.new_handoffs
    assert (handoff.state, handoff.engaged_at, handoff.time_to_human) == ("engaged", at(40), 40)
    assert (handoff.agent_id, handoff.agent_name) == ("nora", "Nora")
    assert [(t.trigger, t.from_state, t.to_state) for t in plan.transitions] == [
        ("request", "", "requested"), ("engage", "requested", "engaged")]
    [wait] = plan.new_waits  # the request's wait, ended by the reply within its minute
    assert (wait.kind, wait.ended_at, wait.met) == ("requested", at(40), True)
    assert plan.new_flags == [] and conversation.active is handoff


def test_a_handoff_closed_before_a_human_engaged_is_dropped():
    conversation = ConversationState(pk=CONVERSATION, channel="web",
                                     last_customer_message_at=at(-10))
    plan = decide(state(conversation), [], [event(0, "handoff.requested", queue="tier1"),
                                            event(50, "conversation.closed")])

    [handoff] = plan.new_handoffs
    assert (handoff.state, handoff.ended_at) == ("abandoned", at(50))
    assert handoff.dropped_reasons == ["closed_before_human"]
    [flag] = plan.new_flags
    assert (flag.kind, flag.handoff, flag.severity) == (DROPPED, handoff, "high")
    assert flag.evidence["reasons"] == ["closed_before_human"]
    assert flag.evidence["details"]["closed_before_human"]["waited_seconds"] == 50
    assert conversation.active is None


def test_the_ai_answering_after_requesting_a_human_drops_the_handoff():
    conversation = ConversationState(pk=CONVERSATION, channel="web",
                                     last_customer_message_at=at(-10))
    ai = [message(10, "ai", "Let me check"), message(20, "ai", "Still checking")]
    plan = decide(state(conversation), ai, [event(0, "handoff.requested")])

    [handoff] = plan.new_handoffs
    assert handoff.state == "requested" and handoff.ai_replies_after_request == 2
    assert handoff.last_ai_message_id == ai[1].pk
    [flag] = plan.new_flags
    assert flag.kind == DROPPED and flag.evidence["reasons"] == ["ai_kept_answering"]
    assert flag.evidence["details"]["ai_kept_answering"]["excerpt"] == "Still checking"


def test_a_stalled_reply_wait_is_cleared_by_the_reply():
    policy = policy_pick([], channel="web")
    handoff = engaged_handoff(policy)
    wait = WaitRow(pk=21, handoff=handoff, kind="reply", started_at=at(60),
                   allowed_seconds=300, business_hours=False, deadline_at=at(360),
                   source_message_id=5, stalled_at=at(390))  # the sweep flagged it
    handoff.open_waits = [wait]
    conversation = ConversationState(pk=CONVERSATION, channel="web",
                                     last_customer_message_at=at(60), handoffs=[handoff],
                                     active=handoff)
    stalled = FlagRow(pk=31, conversation_id=CONVERSATION, kind=STALLED, severity="medium",
                      subject_type="handoff", subject_id=11, handoff=handoff,
                      evidence={"state": "reply", "deadline_at": at(360).isoformat()},
                      raised_at=at(390))
    conversation.flags[(STALLED, "handoff", handoff)] = stalled
    plan = decide(state(conversation, waited={5}), [message(410, "human")])

    assert plan.ended_waits == [wait]
    assert (wait.ended_at, wait.waited_seconds, wait.met) == (at(410), 350, False)
    assert handoff.stalls == 0  # the sweep counted this stall already
    assert plan.changed_flags == [stalled] and plan.new_flags == []
    assert (stalled.status, stalled.note) == ("resolved", reply_clear_note(at(410)))
    assert plan.new_waits == [] and plan.transitions == []


def test_a_batch_delivered_again_changes_nothing():
    """[customer +60, customer +70, human +410] applied once, then found again."""
    policy = policy_pick([], channel="web")
    handoff = engaged_handoff(policy)
    conversation = ConversationState(pk=CONVERSATION, channel="web",
                                     last_customer_message_at=at(0), handoffs=[handoff],
                                     active=handoff)
    batch = [message(60, "customer"), message(70, "customer"), message(410, "human")]
    first = decide(state(conversation), batch)
    [wait] = first.new_waits
    assert (wait.started_at, wait.source_message_id, wait.met) == (at(60), batch[0].pk, False)
    [flag] = first.new_flags
    assert flag.kind == STALLED and flag.status == "resolved"

    # As loaded for the second delivery: the wait ended, the first message waited on.
    wait.pk, handoff.open_waits, handoff.reply_waits_ended = 22, [], [wait]
    conversation.flags.clear()
    again = decide(state(conversation, waited={batch[0].pk}), batch)
    assert again.new_waits == [] and again.new_flags == [] and again.changed_flags == []
    assert again.ended_waits == [] and again.transitions == []
