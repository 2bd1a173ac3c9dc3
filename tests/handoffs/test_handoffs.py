"""The handoff machine beyond the scenario library: SLA policies from the admin, business
calendars, idempotent replays, the sweep command, the metrics and their denominators, and
real WhatsApp messages from Twilio moving the 24-hour window."""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from conversations.models import Conversation, Flag
from demo.scenarios import (
    REFERENCE_WEEK,
    SCENARIOS,
    Scenario,
    Step,
    scenario_get,
    scenario_play,
)
from handoffs.models import BusinessCalendar, Handoff, HandoffTransition, HumanAsk, SLAPolicy, Wait
from handoffs.selectors import handoff_metrics, percentile
from handoffs.sweep import handoffs_sweep
from tests.support.events import PATH, SECRET
from tests.support.scenarios import play as play_scenario
from tests.support.signing import events_headers, twilio_fixture
from tests.support.twilio import TwilioClient

MONDAY = REFERENCE_WEEK

pytestmark = pytest.mark.django_db


def play(client, settings, scenario: Scenario) -> Conversation:
    conversation, _ = play_scenario(client, settings, scenario)
    return conversation


def snapshot() -> dict[str, list]:
    """Every derived handoff row, without ids or clock columns, in a stable order."""
    return {
        "handoffs": list(Handoff.objects.order_by("conversation_id", "number").values(
            "conversation_id", "number", "state", "requested_at", "engaged_at", "ended_at",
            "time_to_human", "dropped_reasons", "ai_replies_after_request", "stalled_count")),
        "transitions": list(HandoffTransition.objects.order_by("source_type", "source_id").values(
            "handoff__number", "trigger", "from_state", "to_state", "applied", "occurred_at",
            "source_type", "source_id", "reason")),
        "waits": list(Wait.objects.order_by("handoff_id", "started_at", "kind").values(
            "kind", "started_at", "deadline_at", "ended_at", "waited_seconds", "met",
            "stalled_at")),
        "flags": list(Flag.objects.order_by("kind", "subject_type", "subject_id").values(
            "kind", "status", "subject_type", "subject_id", "severity")),
        "asks": list(HumanAsk.objects.order_by("message_id").values(
            "message_id", "status", "ai_turns", "repeats")),
    }


def test_reprocessing_every_raw_event_changes_nothing(client, settings):
    for scenario in SCENARIOS[:6]:
        play(client, settings, scenario)
    before = snapshot()
    assert before["handoffs"] and before["flags"] and before["transitions"]
    with time_machine.travel(MONDAY + timedelta(days=3), tick=False):
        call_command("reprocess_events", "--all", "--no-progress", stdout=io.StringIO())
        call_command("reprocess_events", "--all", "--no-progress", stdout=io.StringIO())
    assert snapshot() == before


def test_rebuilding_history_gives_the_same_handoffs(client, settings):
    for key in ("web-on-time", "web-late-queue", "sms-ai-kept-talking", "web-out-of-order"):
        play(client, settings, scenario_get(key))
    before = snapshot()
    with time_machine.travel(MONDAY + timedelta(days=3), tick=False):
        out = io.StringIO()
        call_command("rebuild_handoffs", "--no-progress", stdout=out)
    assert "rebuilt 4 conversations" in out.getvalue()
    after = snapshot()
    assert after["handoffs"] == before["handoffs"]
    assert [(t["trigger"], t["to_state"], t["applied"]) for t in after["transitions"]] == [
        (t["trigger"], t["to_state"], t["applied"]) for t in before["transitions"]]
    # The late queue wait, seen by the sweep the first time, is flagged when it ends now.
    assert [(f["kind"], f["status"]) for f in after["flags"]] == [
        (f["kind"], f["status"]) for f in before["flags"]]


def deliver_at(client, events, delivery_id, clock, at):
    clock.move_to(at)
    body = json.dumps(events).encode()
    response = client.post(PATH, body, content_type="application/json",
                           headers=events_headers(body, SECRET, msg_id=delivery_id))
    assert response.status_code == 200, response.content


VIP = Scenario("web-vip-queue", "web", "A VIP queue has its own, tighter policy", (
    Step(0, "customer", "I need help with my order"),
    Step(0.2, "handoff.requested"),
    Step(0.3, "handoff.queued", data={"queue": "vip"}),
    Step(2, "sweep"),
    Step(3, "human", "Hello! Nora here."),
))


def test_an_admin_policy_for_a_queue_wins_and_its_flag_may_stay_open(client, settings):
    SLAPolicy.objects.create(name="web any", channel="web", queued_limit=timedelta(minutes=30))
    SLAPolicy.objects.create(name="vip", queue="vip", queued_limit=timedelta(minutes=1),
                             auto_resolve=False)
    conversation = play(client, settings, VIP)
    handoff = Handoff.objects.get(conversation=conversation)
    assert handoff.policy["name"] == "vip"
    flag = Flag.objects.get(conversation=conversation, kind="handoff_stalled")
    assert flag.evidence["policy"]["name"] == "vip"
    assert flag.evidence["allowed_seconds"] == 60
    # The human replied, but this policy does not resolve flags by itself.
    assert handoff.state == "engaged" and flag.status == "open"


def test_a_policy_with_a_business_calendar_counts_business_time(client, settings):
    calendar = BusinessCalendar.objects.create(
        name="Madrid", timezone="Europe/Madrid",
        weekly={d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    calendar.full_clean()
    SLAPolicy.objects.create(name="web office hours", channel="web", calendar=calendar,
                             requested_limit=timedelta(hours=1))
    # Friday 17:30 Madrid (16:30 UTC): half an hour on Friday, half on Monday.
    friday = datetime(2026, 11, 20, 16, 30, tzinfo=UTC)
    scenario = Scenario("web-friday", "web", "", (
        Step(0, "customer", "hello"), Step(0, "handoff.requested"),
        Step(60 * 63 + 50, "sweep"),  # Monday 09:20 Madrid: not due yet
        Step(60 * 64 + 10, "sweep"),  # Monday 09:40 Madrid: 10 min over
    ))
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    sweeps = []
    with time_machine.travel(friday, tick=False) as clock:
        def sweep(at):
            clock.move_to(at)
            sweeps.append(handoffs_sweep().stalled)
        scenario_play(scenario, start=friday,
                      deliver=lambda e, i, at: deliver_at(client, e, i, clock, at), sweep=sweep)
    assert sweeps == [0, 1]
    wait = Wait.objects.get()
    assert wait.business_hours and wait.deadline_at == datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    flag = Flag.objects.get(kind="handoff_stalled")
    assert flag.evidence["waited_seconds"] == 4200  # 30 min Friday + 40 min Monday
    assert flag.evidence["business_hours"] is True


def test_the_sweep_command_reports_and_never_flags_twice(client, settings):
    scenario = Scenario("sms-unanswered", "sms", "", (
        Step(0, "customer", "help"), Step(0.1, "handoff.requested"),
    ))
    play(client, settings, scenario)
    later = (MONDAY + timedelta(minutes=30)).isoformat()
    out = io.StringIO()
    call_command("sweep_handoffs", "--now", later, "--no-progress", stdout=out)
    assert "stalled: 1 (requested 1)" in out.getvalue()
    out = io.StringIO()
    call_command("sweep_handoffs", "--now", later, "--no-progress", stdout=out)
    assert "stalled: 0 (none)" in out.getvalue()
    assert Flag.objects.filter(kind="handoff_stalled").count() == 1


def test_the_sweep_command_refuses_a_naive_time():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="offset"):
        call_command("sweep_handoffs", "--now", "2026-11-16T10:00:00", "--no-progress")


TWO_DROPS = Scenario("web-two-drops", "web", "Two handoffs, both dropped", (
    Step(0, "customer", "hi"), Step(0.1, "ai", "Hello!"),
    Step(0.2, "handoff.requested"), Step(1, "conversation.resolved"),
    Step(5, "customer", "still there?"), Step(5.2, "handoff.requested"),
    Step(6, "conversation.resolved"),
))
HUMAN_ONLY = Scenario("web-human-only", "web", "No AI: not a handoff", (
    Step(0, "customer", "hi"), Step(1, "human", "Hello, Nora here"),
))


def test_metrics_count_each_conversation_once_and_rates_stay_within_100(client, settings):
    for scenario in (*[scenario_get(k) for k in (
            "web-on-time", "web-late-queue", "web-missed-request", "web-out-of-order")],
            TWO_DROPS, HUMAN_ONLY):
        play(client, settings, scenario)
    week = dict(since=MONDAY - timedelta(days=1), until=MONDAY + timedelta(days=6),
                now=MONDAY + timedelta(days=6))
    (web,) = handoff_metrics(group_by="channel", **week)
    assert web.key == "web"
    # Eligible: on-time, late-queue, missed, out-of-order, two-drops (human-only is not).
    assert (web.conversations_eligible, web.conversations_handed_off) == (5, 4)
    assert web.handoff_rate == 0.8
    assert web.handoffs == 5 and web.conversations_with_handoff == 4
    # Two dropped handoffs in one conversation count once.
    assert web.conversations_dropped == 1 and web.dropped_rate == 0.25
    assert web.stalled == 1 and web.returned_rate == 0
    # Requested -> first human reply: 162 s, 690 s, 78 s.
    assert web.time_to_human_p50 == 162
    assert web.time_to_human_p90 == pytest.approx(584.4)
    assert web.reached_human == 3
    # Queues timed: on-time's (met), late-queue's (breached) and out-of-order's, whose
    # queueing was reported after the assignment and is applied in time order (met).
    queued = web.sla["queued"]
    assert (queued.met, queued.breached) == (2, 1)
    assert queued.rate == pytest.approx(2 / 3)
    assert web.sla["requested"].breached == 0
    (overall,) = handoff_metrics(**week)
    assert overall.key == "all" and overall.handoff_rate == 0.8
    by_agent = {m.key: m for m in handoff_metrics(group_by="agent", **week)}
    assert by_agent["nora.agent"].handoffs == 3 and by_agent["nora.agent"].handoff_rate is None
    (day,) = handoff_metrics(group_by="day", **week)
    assert day.key == "2026-11-16" and day.handoffs == 5
    for metrics in (web, overall, day):
        for rate in (metrics.handoff_rate, metrics.dropped_rate, metrics.returned_rate):
            assert rate is None or 0 <= rate <= 1


def test_percentile_interpolates_like_postgres():
    assert percentile([], 0.5) is None
    assert percentile([78, 690, 162], 0.5) == 162
    assert percentile([78, 690, 162], 0.9) == pytest.approx(584.4)
    assert percentile([5], 0.9) == 5


def test_whatsapp_messages_from_twilio_move_the_window(client, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    twilio = TwilioClient(client)
    inbound = twilio_fixture("inbound_whatsapp_media")
    # Named the way Twilio writes WhatsApp addresses: the same conversation as the webhook's.
    ref = {"channel": "whatsapp", "business_address": inbound["To"],
           "customer_address": inbound["From"]}
    with time_machine.travel(MONDAY, tick=False) as clock:
        assert twilio.message(inbound).status_code == 200
        deliver_at(client, [{"type": "handoff.requested", "id": "wa-req", "timestamp":
                             MONDAY.isoformat(), "data": {"conversation": ref,
                                                          "requested_by": "customer"}}],
                   "wa-1", clock, MONDAY + timedelta(seconds=5))
        handoff = Handoff.objects.get()
        assert handoff.window_expires_at == MONDAY + timedelta(hours=24)
        # The customer writes again 20 hours later: the window moves with it.
        clock.move_to(MONDAY + timedelta(hours=20))
        again = {**inbound, "MessageSid": "SMagain", "SmsSid": "SMagain",
                 "SmsMessageSid": "SMagain", "NumMedia": "0", "Body": "¿Hola?"}
        for key in [k for k in again if k.startswith("Media")]:
            del again[key]
        assert twilio.message(again).status_code == 200
        clock.move_to(MONDAY + timedelta(hours=25))
        handoffs_sweep()
        assert not Flag.objects.filter(kind="handoff_dropped").exists()
        clock.move_to(MONDAY + timedelta(hours=44, minutes=1))
        handoffs_sweep()
    flag = Flag.objects.get(kind="handoff_dropped")
    assert flag.evidence["reasons"] == ["whatsapp_window_expired"]
    details = flag.evidence["details"]["whatsapp_window_expired"]
    assert details["window_expired_at"] == (MONDAY + timedelta(hours=44)).isoformat()
    assert Conversation.objects.get().message_count == 2


def test_a_message_with_no_handoff_around_costs_the_machine_one_query(client):
    """The webhook hot path: an inbound message where no handoff is in progress and nobody
    asks for a human is one indexed look at handoffs, nothing more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    twilio = TwilioClient(client)
    params = {**twilio_fixture("inbound_sms"), "Body": "Where is my order #5521?",
              "MessageSid": "SMnohandoff", "SmsSid": "SMnohandoff", "SmsMessageSid": "SMnohandoff"}
    with CaptureQueriesContext(connection) as queries:
        assert twilio.message(params).status_code == 200
    touching = [q["sql"] for q in queries if "handoffs_" in q["sql"]]
    assert len(touching) == 1, touching
    assert not Handoff.objects.exists() and not HumanAsk.objects.exists()
    # The fixture's own words ask for a person: that message is watched.
    assert twilio.message(twilio_fixture("inbound_sms")).status_code == 200
    assert HumanAsk.objects.get().matched == "talk to a person"


def test_a_batch_delivered_again_under_a_new_webhook_id_changes_nothing(client, settings):
    """While a human is engaged: [customer +60 s, customer +70 s, human +410 s], delivered
    twice under two webhook ids, gives one reply wait and one handoff_stalled flag."""
    from tests.support.events import message

    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    start = MONDAY + timedelta(hours=10)

    def stamp(seconds: float) -> str:
        return (start + timedelta(seconds=seconds)).isoformat()

    customer = "visitor-redelivered"
    with time_machine.travel(start + timedelta(seconds=600), tick=False) as clock:
        opening = [message("rd-1", customer, at=stamp(0)),
                   message("rd-2", customer, kind="ai", direction="outbound", at=stamp(5)),
                   message("rd-3", customer, kind="human", direction="outbound", at=stamp(30))]
        deliver_at(client, opening, "msg_rd_open", clock, start + timedelta(seconds=40))
        assert Handoff.objects.get().state == "engaged"
        batch = [message("rd-4", customer, at=stamp(60)),
                 message("rd-5", customer, at=stamp(70)),
                 message("rd-6", customer, kind="human", direction="outbound", at=stamp(410))]
        deliver_at(client, batch, "msg_rd_first", clock, start + timedelta(seconds=420))
        once = snapshot()
        deliver_at(client, batch, "msg_rd_again", clock, start + timedelta(seconds=430))
    assert snapshot() == once
    [wait] = [w for w in once["waits"] if w["kind"] == "reply"]
    assert (wait["started_at"], wait["ended_at"], wait["met"]) == (
        start + timedelta(seconds=60), start + timedelta(seconds=410), False)
    assert [(f["kind"], f["status"]) for f in once["flags"]] == [("handoff_stalled", "resolved")]
