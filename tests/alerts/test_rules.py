"""Each rule kind fires and resolves on hand-built data; grouping, snooze, mute, digest and
rule versions."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts.delivery import digests_build
from alerts.flag_rules import flags_scan
from alerts.lifecycle import alert_acknowledge, alert_mute, alert_snooze
from alerts.models import Alert, AlertEvent, Delivery, FlagWatermark, Rule
from alerts.rules import rule_save
from alerts.services import alerts_evaluate, alerts_evaluate_flags
from conversations.models import AIStep, Flag, Outcome
from conversations.services import flag_set_status

from .conftest import conversation, destination, dropped_flag, handoff, make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(local_destinations):
    return destination("webhook", "http://127.0.0.1:9/never", secret="whsec_" + "A" * 32)


def firing(rule):
    return list(Alert.objects.filter(rule=rule, state=Alert.State.FIRING))


def test_flag_rule_fires_groups_repeats_and_resolves_when_flags_close(hook):
    now = timezone.now()
    rule = make_rule(kind="flag", flag_kinds=["handoff_dropped"], min_severity="medium",
                     channels=["whatsapp"], destinations=[hook])
    first = dropped_flag(at=now)
    dropped_flag(at=now, channel="sms")  # other channel: not this rule's
    dropped_flag(at=now, severity="low")  # below the minimum severity
    alerts_evaluate_flags(now=now)
    [alert] = firing(rule)
    assert alert.occurrences == 1
    assert "Handoff dropped on WhatsApp in the billing queue" in alert.summary
    assert alert.conversation_ids == [first.conversation_id]
    # The outbox row was written with the alert, and it is one per destination.
    assert list(Delivery.objects.values_list("event", "status")) == [("fired", "pending")]

    second = dropped_flag(at=now + timedelta(minutes=1))
    alerts_evaluate_flags(now=now + timedelta(minutes=1))
    alerts_evaluate_flags(now=now + timedelta(minutes=2))  # a flag counts once
    [alert] = firing(rule)
    assert alert.occurrences == 2
    assert alert.summary.startswith("2 matching flags since")
    assert [e.kind for e in alert.events.all()] == ["fired", "repeated"]
    assert Delivery.objects.count() == 1  # repeats are grouped, not sent again

    flag_set_status(flag=first, status=Flag.Status.RESOLVED, by="m")
    alerts_evaluate_flags(now=now + timedelta(minutes=3))
    assert firing(rule)  # one flag behind it is still open
    flag_set_status(flag=second, status=Flag.Status.FALSE_POSITIVE, by="m")
    alerts_evaluate_flags(now=now + timedelta(minutes=4))
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED
    assert list(Delivery.objects.order_by("pk").values_list("event", flat=True)) == [
        "fired", "resolved"]


def test_flag_rule_open_for_n_minutes_waits(hook):
    now = timezone.now()
    rule = make_rule(kind="flag", flag_kinds=["handoff_dropped"], open_minutes=30)
    early = dropped_flag(at=now - timedelta(minutes=10))
    acked = dropped_flag(at=now - timedelta(minutes=40))
    flag_set_status(flag=acked, status=Flag.Status.ACKNOWLEDGED, by="m")
    alerts_evaluate_flags(now=now)
    assert not firing(rule)  # one too young, one acknowledged in time
    alerts_evaluate_flags(now=now + timedelta(minutes=21))
    [alert] = firing(rule)
    assert alert.conversation_ids == [early.conversation_id]


def test_flag_scan_rereads_an_id_that_committed_late(hook):
    now = timezone.now()
    rule = make_rule(kind="flag", flag_kinds=["handoff_dropped"], group_by="conversation")
    a, b, c = (dropped_flag(at=now) for _ in range(3))
    # As if b's transaction had not committed when the scan passed: take it away, scan,
    # then let it "commit" with its id.
    row = {f.attname: getattr(b, f.attname) for f in Flag._meta.concrete_fields}
    Flag.objects.filter(pk=b.pk).delete()
    flags_scan(now=now)
    gaps = FlagWatermark.objects.get().gaps  # (ids of earlier tests' rolled-back rows too)
    assert str(b.pk) in gaps and str(a.pk) not in gaps and str(c.pk) not in gaps
    assert {al.conversation_ids[0] for al in firing(rule)} == {
        a.conversation_id, c.conversation_id}
    Flag.objects.create(**row)
    flags_scan(now=now + timedelta(seconds=15))
    assert {al.conversation_ids[0] for al in firing(rule)} == {
        a.conversation_id, b.conversation_id, c.conversation_id}
    assert str(b.pk) not in FlagWatermark.objects.get().gaps


def test_metric_rule_needs_the_minimum_sample_and_resolves(hook):
    now = timezone.now()
    rule = make_rule(kind="metric", metric="dropped_rate", threshold=5, comparison="above",
                     window_minutes=30, min_sample=10, group_by="channel")
    for i in range(3):  # three handoffs at night, two dropped: 67%, but too few
        handoff(at=now - timedelta(minutes=5), dropped=i < 2)
    alerts_evaluate(now=now)
    assert not firing(rule)
    for _ in range(9):
        handoff(at=now - timedelta(minutes=10), dropped=False)
    handoff(at=now - timedelta(minutes=40), dropped=True)  # outside the window
    alerts_evaluate(now=now)
    [alert] = firing(rule)  # 2 of 12 = 16.7%
    assert alert.group_key == "whatsapp"
    assert alert.sample == 12 and round(alert.value, 1) == 16.7
    assert "Dropped rate on whatsapp was 16.7% over the last 30 min (12 in the sample)" in (
        alert.summary)
    alerts_evaluate(now=now + timedelta(minutes=1))
    assert Alert.objects.count() == 1 and alert.events.count() == 1  # still the same one
    alerts_evaluate(now=now + timedelta(minutes=31))  # the window has moved past them
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED


def test_anomaly_rule_against_the_same_hour_of_week(hook):
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    rule = make_rule(kind="anomaly", metric="handoffs", window_minutes=60, min_sample=5,
                     anomaly_z=3.5, min_history_weeks=3)
    for week, count in ((1, 10), (2, 12), (3, 9)):
        for _ in range(count):
            handoff(at=now - timedelta(weeks=week, minutes=20))
    for _ in range(11):  # a normal Tuesday morning
        handoff(at=now - timedelta(minutes=20))
    alerts_evaluate(now=now)
    assert not firing(rule)
    for _ in range(14):  # 25: more than double
        handoff(at=now - timedelta(minutes=10))
    alerts_evaluate(now=now)
    [alert] = firing(rule)
    assert "2.5 times what is usual" in alert.summary
    assert "over 3 weeks" in alert.summary
    assert alert.threshold == 10  # the median of 10, 12, 9


def test_anomaly_rule_without_enough_history_stays_quiet(hook):
    now = timezone.now()
    rule = make_rule(kind="anomaly", metric="handoffs", window_minutes=60, min_sample=5,
                     min_history_weeks=3)
    for _ in range(3):
        handoff(at=now - timedelta(weeks=1, minutes=20))
    for _ in range(40):
        handoff(at=now - timedelta(minutes=20))
    alerts_evaluate(now=now)
    assert not firing(rule)


def _release_conversations(now, version, n, handed):
    for i in range(n):
        conv = conversation(at=now - timedelta(hours=2), channel="web")
        AIStep.objects.create(conversation=conv, external_id=f"s{conv.pk}", operation="chat",
                              occurred_at=now - timedelta(hours=2), request_model="m",
                              prompt_name="support", prompt_version=version)
        if i < handed:
            Outcome.objects.create(conversation=conv, external_id="o", occurred_at=now,
                                   csat=2 if version == "v2" else 5)
            from handoffs.models import Handoff
            Handoff.objects.create(conversation=conv, number=1, channel="web",
                                   state="engaged", state_entered_at=now, requested_at=now)


def test_release_rule_compares_new_prompt_version_with_previous(hook):
    now = timezone.now()
    rule = make_rule(kind="release", metric="handoff_rate", group_by="prompt_version",
                     window_minutes=7 * 1440, min_sample=30, alpha=0.05)
    _release_conversations(now - timedelta(hours=5), "v1", 60, handed=9)   # 15%
    _release_conversations(now, "v2", 20, handed=9)
    alerts_evaluate(now=now)
    assert not firing(rule)  # v2 has 20 conversations: not enough yet
    _release_conversations(now, "v2", 40, handed=18)  # 27 of 60 = 45%
    alerts_evaluate(now=now)
    [alert] = firing(rule)
    assert alert.group_key == "prompt_version:v1->v2"
    assert "prompt version v2 replaced v1, the handoff rate went from 15.0% to 45.0%" in (
        alert.summary)
    assert "two-proportion z-test, p = " in alert.summary and "Cohen's h = +0.68" in (
        alert.summary)


def test_snooze_mute_and_acknowledge_hold_notifications(hook):
    now = timezone.now()
    rule = make_rule(kind="flag", flag_kinds=["handoff_dropped"], destinations=[hook],
                     group_by="conversation")
    pd = destination("pagerduty", "http://127.0.0.1:9/pd", secret="routing")
    rule.destinations.add(pd)
    dropped_flag(at=now)
    alerts_evaluate_flags(now=now)
    [alert] = firing(rule)
    alert_acknowledge(alert=alert, by="manager1")
    # Acknowledging tells PagerDuty only; the webhook hears fired and nothing else.
    assert sorted(Delivery.objects.values_list("destination__kind", "event")) == [
        ("pagerduty", "acknowledged"), ("pagerduty", "fired"), ("webhook", "fired")]
    alert_snooze(alert=alert, by="manager1", until=now + timedelta(hours=1))
    flag = Flag.objects.get(pk=alert.flag_matches.get().flag_id)
    flag_set_status(flag=flag, status=Flag.Status.RESOLVED, by="m")
    alerts_evaluate_flags(now=now + timedelta(minutes=5))
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED
    assert Delivery.objects.filter(event="resolved").count() == 0  # snoozed: silent
    assert [e.kind for e in alert.events.all()] == [
        "fired", "acknowledged", "snoozed", "resolved"]

    dropped_flag(at=now)
    alerts_evaluate_flags(now=now + timedelta(minutes=6))
    [other] = firing(rule)
    alert_mute(alert=other, by="manager1")
    flag_set_status(flag=Flag.objects.get(pk=other.flag_matches.get().flag_id),
                    status=Flag.Status.RESOLVED, by="m")
    alerts_evaluate_flags(now=now + timedelta(minutes=7))
    assert not Delivery.objects.filter(alert=other, event="resolved").exists()
    assert AlertEvent.objects.filter(alert=other, kind="muted", by="manager1").exists()


def test_digest_rule_holds_events_and_sends_one_summary(hook):
    now = timezone.now()
    rule = make_rule(kind="flag", flag_kinds=["handoff_dropped"], digest="hourly",
                     group_by="conversation", destinations=[hook])
    for _ in range(3):
        dropped_flag(at=now)
    alerts_evaluate_flags(now=now)
    assert len(firing(rule)) == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"digest"}
    [bundle] = digests_build(period="hourly", now=now)
    assert bundle.payload["type"] == "alert.digest"
    assert bundle.payload["summary"] == "3 alerts fired and 0 resolved in the last hour."
    assert len(bundle.payload["items"]) == 3
    assert Delivery.objects.filter(digest=bundle).count() == 3
    assert digests_build(period="hourly", now=now) == []  # nothing held twice
    assert digests_build(period="daily", now=now) == []


def test_rule_changes_are_versioned_with_who_changed_what():
    rule = make_rule(kind="metric", metric="sla_met", threshold=90, comparison="below")
    rule = rule_save(rule=rule, data={"threshold": 85, "min_sample": 40}, by="alice")
    rule = rule_save(rule=rule, data={"threshold": 85}, by="bob")  # no change: no version
    assert rule.version == 2
    latest, first = rule.versions.all()
    assert (latest.version, latest.changed_by) == (2, "alice")
    assert latest.changes == {"threshold": [90, 85], "min_sample": [20, 40]}
    assert first.changed_by == "manager1" and first.fields["metric"] == "sla_met"
    with pytest.raises(ValidationError) as err:
        rule_save(rule=rule, data={"metric": "nope"}, by="alice")
    assert "metric" in err.value.message_dict
    assert Rule.objects.get(pk=rule.pk).metric == "sla_met"


def test_handoff_rate_rule_counts_the_conversations_of_the_window_handed_off(hook):
    now = timezone.now()
    rule = make_rule(kind="metric", metric="handoff_rate", threshold=30, comparison="above",
                     window_minutes=60, min_sample=4, group_by="channel")
    for _ in range(2):
        handoff(at=now - timedelta(minutes=10))  # a conversation and its handoff
        conversation(at=now - timedelta(minutes=10))  # one the AI kept
    handoff(at=now - timedelta(minutes=90))  # before the window
    alerts_evaluate(now=now)
    [alert] = firing(rule)
    assert alert.sample == 4 and alert.value == 50.0
    assert "Handoff rate on whatsapp was 50.0% over the last 1 h (4 in the sample)" in (
        alert.summary)
