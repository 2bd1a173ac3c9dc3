"""Delivery through the outbox to real receivers started by the test: a local HTTP server
(signed webhooks verified the way a receiver verifies them, Slack Block Kit, PagerDuty
Events v2) and a real SMTP server; retries after 500s and timeouts with backoff, the dead
letter, quiet hours, SSRF refusals, and the send-test button's service."""

import json
import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import jsonschema
import pytest
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

import alerts
from alerts.delivery import (
    backoff_seconds,
    deliveries_due,
    delivery_attempt,
    destination_test,
)
from alerts.models import Delivery, Destination
from alerts.netguard import UnsafeDestination, url_check
from alerts.outbox import quiet_until
from alerts.services import alerts_evaluate_flags
from conversations.models import Flag
from conversations.services import flag_set_status

from .conftest import destination, dropped_flag, make_rule

pytestmark = pytest.mark.django_db
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def fire(*destinations, **rule):
    rule.setdefault("flag_kinds", ["handoff_dropped"])
    made = make_rule(kind="flag", destinations=destinations, **rule)
    flag = dropped_flag(at=timezone.now())
    alerts_evaluate_flags()
    return made, flag


def send_all():
    for pk in deliveries_due():
        delivery_attempt(delivery_id=pk)


def test_signed_webhook_is_verified_by_the_receiver(receiver, local_destinations):
    hook = destination("webhook", receiver.url, secret=SECRET)
    fire(hook)
    send_all()
    [request] = receiver.requests
    headers = request["headers"]
    payload = Webhook(SECRET).verify(request["body"], headers)  # raises if forged
    assert payload["type"] == "alert.fired"
    assert payload["alert"]["severity"] == "high"
    assert "Handoff dropped on WhatsApp" in payload["alert"]["summary"]
    delivery = Delivery.objects.get()
    assert headers["webhook-id"] == delivery.key == headers["idempotency-key"]
    assert delivery.status == "sent" and delivery.attempts == 1
    schema = json.loads((Path(alerts.__file__).parent / "schemas"
                         / "alert-webhook.schema.json").read_text())
    jsonschema.validate(payload, schema)  # the published schema describes what is sent
    with pytest.raises(Exception):  # noqa: B017 — a receiver with another secret refuses it
        Webhook("whsec_" + "B" * 32).verify(request["body"], headers)


def test_retries_after_500_and_timeout_with_the_same_key_then_sent(receiver,
                                                                   local_destinations,
                                                                   settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "ALERTS_READ_TIMEOUT": 0.5}
    hook = destination("webhook", receiver.url, secret=SECRET)
    receiver.statuses = [500]
    fire(hook)
    delivery = Delivery.objects.get()
    first = delivery_attempt(delivery_id=delivery.pk)
    assert first.sent is False and first.error == "The receiver answered 500."
    receiver.delay = 1.0  # second attempt: the receiver hangs past the read timeout
    second = delivery_attempt(delivery_id=delivery.pk)
    assert second.error == "The receiver did not answer in time."
    receiver.delay = 0
    assert delivery_attempt(delivery_id=delivery.pk).sent is True
    keys = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert keys == {delivery.key}  # one idempotency key for every attempt
    assert delivery_attempt(delivery_id=delivery.pk) is None  # sent: never again


def test_backoff_is_exponential_and_a_delivery_dies_after_max_attempts(receiver,
                                                                       local_destinations,
                                                                       settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "ALERTS_BACKOFF_SECONDS": 10.0,
                                "ALERTS_MAX_ATTEMPTS": 3}
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    receiver.statuses = [500, 503, 500]
    fire(destination("webhook", receiver.url, secret=SECRET))
    delivery = Delivery.objects.get()
    attempt = delivery_attempt(delivery_id=delivery.pk)
    assert attempt.retry_in == 10
    assert delivery_attempt(delivery_id=delivery.pk) is None  # not due yet
    for wait in (20, None):
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert delivery_attempt(delivery_id=delivery.pk).retry_in == wait
    delivery.refresh_from_db()
    assert delivery.status == "dead" and delivery.last_error == "The receiver answered 500."


def test_slack_block_kit_and_pagerduty_trigger_acknowledge_resolve(receiver,
                                                                   local_destinations):
    slack = destination("slack", receiver.url)
    pd = destination("pagerduty", receiver.url, secret="R0UTINGKEY")
    rule, flag = fire(slack, pd)
    send_all()
    bodies = [receiver.json(i) for i in range(len(receiver.requests))]
    slack_body = next(b for b in bodies if "blocks" in b)
    assert slack_body["blocks"][0]["type"] == "header"
    assert slack_body["text"].startswith("Alert: ")
    trigger = next(b for b in bodies if "routing_key" in b)
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == "R0UTINGKEY"
    assert trigger["payload"]["severity"] == "error"
    from alerts.lifecycle import alert_acknowledge
    alert = rule.alerts.get()
    alert_acknowledge(alert=alert, by="manager1")
    flag_set_status(flag=flag, status=Flag.Status.RESOLVED, by="m")
    alerts_evaluate_flags()
    send_all()
    pd_actions = [(b["event_action"], b["dedup_key"]) for b in
                  (receiver.json(i) for i in range(len(receiver.requests))) if "routing_key" in b]
    dedup = f"handoff-auditor-alert-{alert.pk}"
    assert pd_actions == [("trigger", dedup), ("acknowledge", dedup), ("resolve", dedup)]
    assert sum(1 for r in receiver.requests if "blocks" in r["body"].decode()) == 2


def test_email_reaches_a_real_smtp_server(smtp_server):
    mail = destination("email", "oncall@example.com, lead@example.com")
    fire(mail)
    send_all()
    [envelope] = smtp_server.messages
    assert sorted(envelope.rcpt_tos) == ["lead@example.com", "oncall@example.com"]
    text = envelope.content.decode()
    assert "Subject: [Handoff Auditor] Alert: " in text
    assert "Handoff dropped on WhatsApp" in text
    assert f"<{Delivery.objects.get().key}@handoff-auditor>" in text


def test_quiet_hours_hold_until_they_end(receiver, local_destinations):
    hook = destination("webhook", receiver.url, secret=SECRET, quiet_start=time(0, 0),
                       quiet_end=time(23, 59, 59), quiet_timezone="UTC")
    fire(hook)
    delivery = Delivery.objects.get()
    assert delivery.next_attempt_at > timezone.now()
    assert delivery_attempt(delivery_id=delivery.pk) is None and not receiver.requests
    night = Destination(quiet_start=time(22), quiet_end=time(7), quiet_timezone="Europe/Berlin")
    at = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)  # 00:30 in Berlin
    assert quiet_until(night, at) == datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    assert quiet_until(night, at - timedelta(hours=12)) is None


@pytest.mark.parametrize("url,words", [
    ("http://hooks.example.com/x", "Only https:// URLs are allowed."),
    ("ftp://hooks.example.com/x", "The URL must start with https://."),
    ("https://user:pw@hooks.example.com/x", "may not carry a user name"),
    ("https://127.0.0.1/x", "a loopback address"),
    ("https://localhost:8443/x", "a loopback address"),
    ("https://10.1.2.3/x", "a private address"),
    ("https://169.254.169.254/latest/meta-data", "a link-local address"),
    ("https://[::1]/x", "a loopback address"),
    ("https://[::ffff:192.168.0.1]/x", "a private address"),
    ("https://0.0.0.0/x", "an unspecified address"),
])
def test_ssrf_attempts_are_refused(url, words):
    with pytest.raises(UnsafeDestination) as err:
        url_check(url)
    assert words in str(err.value)


def test_a_private_target_is_refused_at_send_time_and_not_retried(receiver):
    hook = destination("webhook", receiver.url, secret=SECRET)  # http + loopback, defaults
    fire(hook)
    send_all()
    delivery = Delivery.objects.get()
    assert delivery.status == "dead" and "https://" in delivery.last_error
    assert not receiver.requests


def test_redirects_are_not_followed(receiver, local_destinations):
    receiver.statuses = [302]
    hook = destination("webhook", receiver.url, secret=SECRET)
    attempt = destination_test(destination=hook)
    assert attempt.sent is False and "redirect" in attempt.error
    assert len(receiver.requests) == 1


def test_send_test_reports_success(receiver, local_destinations):
    hook = destination("slack", receiver.url)
    assert destination_test(destination=hook).sent is True
    assert "Test message from Handoff Auditor" in receiver.json()["text"]


@pytest.mark.django_db(transaction=True)
def test_a_worker_sending_to_a_destination_does_not_block_another_delivery_to_it(
        receiver, local_destinations):
    """Two workers at once, same destination: each claims its own delivery (the claim
    locks the delivery row only, not the destination it joins)."""
    hook = destination("slack", receiver.url)
    now = timezone.now()
    first, second = (Delivery.objects.create(key=f"k{i}", destination=hook, event="test",
                                             payload={"type": "alert.test", "summary": "x",
                                                      "timestamp": now.isoformat()},
                                             next_attempt_at=now, created_at=now)
                     for i in range(2))
    claimed, release = threading.Event(), threading.Event()

    def other_worker():  # takes `first` and holds its claim's transaction open
        try:
            with transaction.atomic():
                delivery_claim_locked(first.pk)
                claimed.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert claimed.wait(10)
    try:
        assert delivery_attempt(delivery_id=second.pk).sent is True
    finally:
        release.set()
        thread.join()
    assert delivery_attempt(delivery_id=first.pk).sent is True


def delivery_claim_locked(pk: int) -> None:
    """The claim's own locking query, left open by the caller's transaction."""
    from alerts.delivery import _claimable

    assert _claimable([pk], timezone.now()).first() is not None
