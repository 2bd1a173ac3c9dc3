"""The ingest rules without a database: state + events in, a plan out (ingest_decide)."""

from datetime import UTC, datetime, timedelta

import pytest

from conversations.events import (
    AIStepEvent,
    ConversationRef,
    LifecycleEvent,
    MessageEvent,
    NormalizationError,
    StatusEvent,
)
from conversations.ingest_decide import decide
from conversations.ingest_state import EmailThread, IngestState, KnownMessage, StoredReport

T0 = datetime(2026, 11, 22, 10, tzinfo=UTC)
WEB = ("web", "widget:shop", "visitor-1")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def msg(pmid, minutes, *, kind="customer", direction="inbound", name="", customer="visitor-1",
        external="", **extra):
    return MessageEvent(channel="web", direction=direction, author_kind=kind, provider="events",
                        provider_message_id=pmid, business_address="widget:shop",
                        customer_address=customer, occurred_at=at(minutes), author_name=name,
                        conversation_external_id=external, **extra)


def status(pmid, value, minutes, code=""):
    return StatusEvent(provider="events", provider_message_id=pmid, status=value,
                       provider_status=value, occurred_at=at(minutes), error_code=code)


def closed(minutes, event_id="z1"):
    ref = ConversationRef(channel="web", business_address="widget:shop",
                          customer_address="visitor-1")
    return LifecycleEvent(conversation=ref, external_id=event_id, type="conversation.closed",
                          occurred_at=at(minutes))


def plan_of(events, state=None, window_hours=72):
    return decide(state or IngestState(), events, raw_event_id=7, now=T0,
                  window_hours=window_hours)


def test_the_first_message_opens_a_thread_and_the_next_ones_land_in_it():
    plan = plan_of([msg("m1", 0, name="Amy"), msg("m2", 1, name="Amy B.")])
    [segment] = plan.segments
    [thread] = segment.threads
    assert (thread.channel, thread.business_address, thread.customer_address) == WEB
    assert [m.values["conversation_id"] for m in segment.messages] == [thread.ref] * 2
    [participant] = segment.participants  # one author, renamed to the latest name
    assert participant.display_name == "Amy B."
    assert plan.conversations == {thread.ref}


def test_a_known_thread_and_author_are_used_and_renamed():
    state = IngestState(open_threads={WEB: 41}, participants={(41, "customer", "visitor-1"):
                                                              (5, "Amy")})
    plan = plan_of([msg("m1", 0, name="Amy B.")], state)
    [segment] = plan.segments
    assert segment.threads == [] and segment.participants == []
    assert segment.messages[0].values["conversation_id"] == 41
    assert plan.renames == {5: "Amy B."}


def test_a_close_ends_the_segment_and_the_next_message_opens_a_new_thread():
    plan = plan_of([msg("m1", 0), closed(1), msg("m2", 2)])
    first, second = plan.segments
    assert first.closes == [(first.threads[0].ref, "z1", at(1))]
    assert len(second.threads) == 1 and second.threads[0].ref != first.threads[0].ref
    assert second.messages[0].values["conversation_id"] == second.threads[0].ref


def test_a_close_found_again_closes_nothing_and_cuts_nothing():
    state = IngestState(open_threads={WEB: 41}, lifecycle={(41, "z1"): 900})
    plan = plan_of([closed(1), msg("m2", 2)], state)
    assert [s.closes for s in plan.segments] == [[]]
    assert plan.lifecycle == [("id", 900)]
    assert plan.segments[0].messages[0].values["conversation_id"] == 41


def test_a_message_recorded_before_is_found_again_and_changes_nothing():
    state = IngestState(messages={("events", "m1"): KnownMessage(3, 41, "received", 1, T0, "")})
    plan = plan_of([msg("m1", 0), msg("m2", 1), msg("m2", 1)], state)
    [segment] = plan.segments
    assert [m.values["provider_message_id"] for m in segment.messages] == ["m2"]
    assert plan.messages[0] == 3 and plan.messages[1] == plan.messages[2] < 0


def test_statuses_move_only_forward_and_the_first_of_equal_ranks_stays():
    state = IngestState(messages={("events", "m1"): KnownMessage(3, 41, "sent", 2, T0, "")})
    plan = plan_of([status("m1", "read", 1), status("m1", "delivered", 2),
                    status("m1", "sent", 3)], state)
    assert (plan.advances[3][0], plan.advances[3][2]) == ("read", at(1))
    assert len(plan.segments[0].reports) == 3  # every report kept
    plan = plan_of([msg("m2", 0, kind="ai", direction="outbound"),
                    status("m2", "failed", 1, "30008"), status("m2", "delivered", 2)])
    values = plan.segments[0].messages[0].values
    assert (values["status"], values["error_code"], values["status_at"]) == (
        "failed", "30008", at(1))


def test_reports_before_their_message_wait_and_join_it_by_rank():
    stored = {("events", "m1", "read"): StoredReport(11, "read", at(2), "", waiting=True)}
    plan = plan_of([status("m1", "delivered", 1), status("m1", "delivered", 9),
                    msg("m1", 0, kind="ai", direction="outbound")],
                   IngestState(reports=stored))
    [segment] = plan.segments
    new = segment.messages[0]
    assert new.values["status"] == "read"  # the highest rank, whatever the arrival order
    kept = segment.reports
    assert len(kept) == 1 and kept[0]["message_id"] == new.ref  # one per provider status
    assert segment.report_joins == [("events", "m1", "read", new.ref)]  # the stored one
    assert plan.join_after_commit == {("events", "m1")}


def test_an_ai_step_reported_before_its_message_links_when_it_comes():
    ref = ConversationRef(channel="web", business_address="widget:shop",
                          customer_address="visitor-1")
    step = AIStepEvent(conversation=ref, external_id="s1", occurred_at=at(0), operation="chat",
                       message_provider_id="m1")
    plan = plan_of([step, msg("m1", 1, kind="ai", direction="outbound")])
    [segment] = plan.segments
    assert segment.steps[(segment.threads[0].ref, "s1")]["message_id"] == \
        segment.messages[0].ref
    assert segment.step_links == [("events", "m1")]  # and one stored earlier, if any


def test_events_follow_external_ids_and_need_a_conversation():
    state = IngestState(keys={"events:c-1": 55})
    named = LifecycleEvent(conversation=ConversationRef(channel="web", external_id="c-1"),
                           external_id="h1", type="handoff.requested", occurred_at=at(0))
    plan = plan_of([named], state)
    assert plan.segments[0].lifecycle[(55, "h1")]["type"] == "handoff.requested"
    with pytest.raises(NormalizationError):
        plan_of([LifecycleEvent(conversation=ConversationRef(channel="web"), external_id="h",
                                type="handoff.requested", occurred_at=at(0))])


def email(pmid, minutes, *, subject="Parcel", references=()):
    return MessageEvent(channel="email", direction="inbound", author_kind="customer",
                        provider="email", provider_message_id=pmid,
                        business_address="help@shop.test", customer_address="amy@c.test",
                        occurred_at=at(minutes), subject=f"Re: {subject}",
                        thread_subject=subject, references=tuple(references))


def test_email_threads_by_reference_then_by_subject_within_the_window():
    pair = ("help@shop.test", "amy@c.test")
    state = IngestState(keys={"email:<a@shop.test>": 70},
                        email_threads={pair: [EmailThread(71, "Parcel", at(0))]})
    plan = plan_of([
        email("<r1@c.test>", 5, subject="Other", references=["<a@shop.test>"]),  # by reference
        email("<r2@c.test>", 10, subject="parcel"),  # by subject, case aside
        email("<r3@c.test>", 60 * 80, subject="parcel"),  # past the window: a new thread
        email("<r4@c.test>", 60 * 81, references=["<r3@c.test>"]),  # the new thread, by key
    ], state)
    [segment] = plan.segments
    threads = [m.values["conversation_id"] for m in segment.messages]
    assert threads[:2] == [70, 71]
    assert threads[2] == threads[3] == segment.threads[0].ref
    assert segment.threads[0].subject == "parcel"
    assert segment.keys["email:<r1@c.test>"] == 70 and "email:<a@shop.test>" not in segment.keys
