"""The batched evaluation pass: many rules write one alert per rule and group, with the
reads shared (the number of statements of a pass does not grow with the rules of the same
metric and window); and delivery through a receiver that goes down and comes back."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.delivery import deliveries_sweep
from alerts.models import Alert, AlertEvent, Delivery, FlagMatch, FlagWatermark, Rule
from alerts.services import alerts_evaluate
from conversations.models import Flag

from .conftest import Receiver, destination, dropped_flag, handoff, make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(local_destinations):
    return destination("webhook", "http://127.0.0.1:9/never", secret="whsec_" + "A" * 32)


def test_a_pass_with_many_rules_writes_one_alert_per_rule_and_group(hook):
    now = timezone.now()
    rules = [make_rule(kind="metric", metric="dropped_rate", threshold=5, comparison="above",
                       window_minutes=30, min_sample=1, group_by="channel",
                       destinations=[hook]) for _ in range(12)]
    for channel in ("whatsapp", "sms"):
        handoff(channel=channel, at=now - timedelta(minutes=5), dropped=True)
        handoff(channel=channel, at=now - timedelta(minutes=5))

    alerts_evaluate(now=now)
    alerts_evaluate(now=now + timedelta(minutes=1))  # still breaking: the same alerts
    for rule in rules:
        assert sorted(Alert.objects.filter(rule=rule, state="firing")
                      .values_list("group_key", flat=True)) == ["sms", "whatsapp"]
    assert Alert.objects.count() == 24
    assert AlertEvent.objects.filter(kind="fired").count() == 24
    assert AlertEvent.objects.count() == 24  # a condition still holding is not a repeat
    assert Delivery.objects.filter(event="fired").count() == 24  # one per alert

    alerts_evaluate(now=now + timedelta(minutes=31))  # the window has moved past them
    assert not Alert.objects.filter(state="firing").exists()
    for alert in Alert.objects.all():
        assert [e.kind for e in alert.events.all()] == ["fired", "resolved"]
    assert Delivery.objects.filter(event="resolved").count() == 24


def test_many_flag_rules_group_the_flags_of_one_scan(hook):
    now = timezone.now()
    rules = [make_rule(kind="flag", flag_kinds=["handoff_dropped"], destinations=[hook])
             for _ in range(10)]
    flags = [dropped_flag(at=now) for _ in range(3)]
    alerts_evaluate(now=now)
    for rule in rules:
        [alert] = Alert.objects.filter(rule=rule)
        assert alert.occurrences == 3
        assert alert.summary.startswith("3 matching flags since")
        assert [e.kind for e in alert.events.all()] == ["fired", "repeated", "repeated"]
        assert sorted(alert.conversation_ids) == sorted(f.conversation_id for f in flags)
    assert FlagMatch.objects.count() == 30
    assert Delivery.objects.count() == 10  # the repeats are grouped into the fired one


def _pass_statements(count: int, now, hook) -> int:
    """Statements of one pass with `count` rules of each kind on the same metric and
    window (the rules of earlier calls disabled), each rule firing."""
    Rule.objects.update(enabled=False)
    for _ in range(count):
        make_rule(kind="metric", metric="dropped_rate", threshold=5, comparison="above",
                  window_minutes=30, min_sample=1, group_by="channel", destinations=[hook])
        make_rule(kind="anomaly", metric="handoffs", window_minutes=60, min_sample=1,
                  destinations=[hook])
        make_rule(kind="flag", flag_kinds=["handoff_dropped"], group_by="channel",
                  destinations=[hook])
    # The scan starts after the newest flag (ids other tests took are not gaps to recheck).
    newest = Flag.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    FlagWatermark.objects.update_or_create(pk=1, defaults={"last_id": newest, "gaps": {}})
    for channel in ("whatsapp", "sms"):
        dropped_flag(channel=channel, at=now - timedelta(minutes=1))
    with CaptureQueriesContext(connection) as queries:
        alerts_evaluate(now=now)
    return len(queries.captured_queries)


def test_the_statements_of_a_pass_do_not_grow_with_the_rules_of_one_metric(hook):
    now = timezone.now()
    few = _pass_statements(2, now, hook)
    assert Alert.objects.filter(state="firing").count() == 2 * 2 * 2
    many = _pass_statements(20, now + timedelta(seconds=1), hook)
    assert Alert.objects.filter(state="firing", rule__enabled=True).count() == 20 * 2 * 2
    assert many == few, (few, many)


def test_a_receiver_down_then_back_gets_every_delivery_once(local_destinations, settings):
    """Refused connections, then 500s, then back: each delivery arrives once; once the
    receiver takes a delivery, its other backed-off deliveries are sent at the next
    sweep instead of after their backoff."""
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "ALERTS_BACKOFF_SECONDS": 600.0}
    down = Receiver()
    port, url = down.server.server_address[1], down.url
    down.close()  # nothing listens: connections are refused
    hook = destination("webhook", url, secret="whsec_" + "A" * 32)
    make_rule(kind="flag", flag_kinds=["handoff_dropped"], group_by="conversation",
              destinations=[hook])
    for _ in range(4):
        dropped_flag(at=timezone.now())
    alerts_evaluate()
    assert deliveries_sweep() == 4
    assert set(Delivery.objects.values_list("attempts", "status")) == {(1, "pending")}
    assert "could not be reached" in Delivery.objects.first().last_error

    back = Receiver(port=port)
    try:
        back.statuses = [500, 500]
        Delivery.objects.update(next_attempt_at=timezone.now())  # their backoff is over
        assert deliveries_sweep() == 4
        assert Delivery.objects.filter(status="pending", attempts=2).count() == 2
        assert deliveries_sweep() == 0  # the two 500s wait 20 minutes...
        dropped_flag(at=timezone.now())
        alerts_evaluate()
        assert deliveries_sweep() == 1  # ...until the receiver takes a new one:
        assert deliveries_sweep() == 2  # then they are sent at the next sweep
        assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
        taken = [r["headers"]["webhook-id"] for r in back.requests if r["status"] == 200]
        assert sorted(taken) == sorted(Delivery.objects.values_list("key", flat=True))
        assert len(taken) == 5
        assert deliveries_sweep() == 0
    finally:
        back.close()
