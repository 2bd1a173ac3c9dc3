"""The sweep's decisions without a database: `sweep_decide` takes a loaded batch and returns
the plan the writers carry out (pytest-django refuses any query here: no django_db mark)."""

from dataclasses import replace
from datetime import UTC, datetime

from handoffs.sweep import ActiveFlag, DueWait, HandoffFacts, SweepState, sweep_decide

OFFICE = {
    "timezone": "Europe/Madrid",
    "weekly": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
}
FRIDAY_17_MADRID = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
MONDAY_10_MADRID = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # two business hours later
MONDAY_10_40_MADRID = datetime(2026, 11, 23, 9, 40, tzinfo=UTC)

HANDOFF = HandoffFacts(
    id=1, conversation_id=10, number=1, channel="whatsapp", state="queued", queue="tier1",
    agent_id="", policy={"id": 3, "name": "office", "calendar": OFFICE}, stalled_count=0,
    requested_at=FRIDAY_17_MADRID, requested_by="ai",
    last_customer_message_at=FRIDAY_17_MADRID, window_expires_at=None, dropped_reasons=[],
    dropped_at=None,
)


def wait(id: int, kind: str = "queued", **changes) -> DueWait:
    return replace(DueWait(
        id=id, handoff_id=1, kind=kind, started_at=FRIDAY_17_MADRID,
        deadline_at=MONDAY_10_MADRID, allowed_seconds=7200.0, business_hours=True,
    ), **changes)


def test_a_due_business_hours_wait_raises_a_stalled_flag_with_business_figures():
    plan = sweep_decide(SweepState(MONDAY_10_40_MADRID, {1: HANDOFF}, waits=[wait(5)]))

    assert plan.waits_stalled == [5]
    assert plan.stalled_counts == {1: 1}
    assert plan.by_state == {"queued": 1}
    assert plan.conversations == [10]
    [flag] = plan.flags.values()
    assert (flag.id, flag.kind, flag.subject_id, flag.severity) == (
        None, "handoff_stalled", 1, "medium")
    # Friday 17:00-18:00 and Monday 09:00-10:40 in Madrid: the weekend does not count.
    assert flag.evidence | {"detected_at": None} == {
        "state": "queued", "entered_at": FRIDAY_17_MADRID.isoformat(),
        "deadline_at": MONDAY_10_MADRID.isoformat(), "waited_seconds": 9600.0,
        "allowed_seconds": 7200.0, "over_by_seconds": 2400.0, "business_hours": True,
        "policy": {"id": 3, "name": "office"}, "handoff": 1, "channel": "whatsapp",
        "queue": "tier1", "agent": "", "detected_at": None, "stalls": ["queued"],
    }


def test_a_handoff_already_flagged_gets_its_flag_refreshed_not_a_second_one():
    active = ActiveFlag(id=7, severity="medium",
                        evidence={"state": "queued", "stalls": ["queued"]})
    state = SweepState(
        MONDAY_10_40_MADRID, {1: replace(HANDOFF, state="assigned", stalled_count=1)},
        waits=[wait(6, "assigned")], flags={("handoff_stalled", 1): active},
    )
    plan = sweep_decide(state)

    [flag] = plan.flags.values()
    assert (flag.id, flag.severity) == (7, "high")
    assert flag.evidence["state"] == "assigned"
    assert flag.evidence["stalls"] == ["queued", "assigned"]
    assert plan.stalled_counts == {1: 1}


def test_two_waits_of_one_handoff_in_a_batch_make_one_flag():
    plan = sweep_decide(SweepState(
        MONDAY_10_40_MADRID, {1: HANDOFF}, waits=[wait(5), wait(6, "reply")]))

    [flag] = plan.flags.values()
    assert (flag.id, flag.severity, flag.evidence["stalls"]) == (None, "high", ["queued", "reply"])
    assert plan.stalled_counts == {1: 2}
    assert plan.waits_stalled == [5, 6]


def test_a_wait_counted_in_wall_clock_time_ignores_the_calendar():
    plan = sweep_decide(SweepState(MONDAY_10_40_MADRID, {1: HANDOFF},
                                   waits=[wait(5, business_hours=False)]))
    [flag] = plan.flags.values()
    # Friday 16:00 to Monday 09:40 UTC, every second.
    assert flag.evidence["waited_seconds"] == 3 * 86400 - 6 * 3600 - 20 * 60


EXPIRED = datetime(2026, 11, 21, 16, 0, tzinfo=UTC)


def test_a_closed_window_drops_a_waiting_handoff_and_only_clears_the_others():
    waiting = replace(HANDOFF, window_expires_at=EXPIRED)
    engaged = replace(HANDOFF, id=2, conversation_id=20, state="engaged",
                      window_expires_at=EXPIRED)
    plan = sweep_decide(SweepState(MONDAY_10_40_MADRID, {1: waiting, 2: engaged},
                                   windows=[1, 2]))

    assert plan.windows_cleared == [1, 2]
    assert plan.window_expired == 1
    assert plan.drops == {1: (["whatsapp_window_expired"], MONDAY_10_40_MADRID)}
    [flag] = plan.flags.values()
    assert (flag.id, flag.kind, flag.subject_id, flag.severity) == (
        None, "handoff_dropped", 1, "high")
    assert flag.evidence["reasons"] == ["whatsapp_window_expired"]
    detail = flag.evidence["details"]["whatsapp_window_expired"]
    assert detail["window_expired_at"] == EXPIRED.isoformat()
    assert detail["state"] == "queued"
    assert plan.waits_stalled == [] and plan.stalled_counts == {}


def test_a_closed_window_adds_its_reason_to_the_handoffs_dropped_flag():
    first = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    handoff = replace(HANDOFF, window_expires_at=EXPIRED, dropped_reasons=["ai_kept_answering"],
                      dropped_at=first)
    active = ActiveFlag(id=9, severity="high", evidence={
        "reason": "ai_kept_answering", "reasons": ["ai_kept_answering"],
        "details": {"ai_kept_answering": {"ai_replies": 3}}})
    plan = sweep_decide(SweepState(MONDAY_10_40_MADRID, {1: handoff}, windows=[1],
                                   flags={("handoff_dropped", 1): active}))

    assert plan.drops == {1: (["ai_kept_answering", "whatsapp_window_expired"], first)}
    [flag] = plan.flags.values()
    assert flag.id == 9
    assert flag.evidence["reasons"] == ["ai_kept_answering", "whatsapp_window_expired"]
    assert flag.evidence["details"]["ai_kept_answering"] == {"ai_replies": 3}
