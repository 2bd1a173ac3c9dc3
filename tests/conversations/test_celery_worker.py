"""A real Celery worker on the real Redis broker runs the catch-up task against PostgreSQL."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.celery import app
from conversations.events import MessageEvent
from conversations.models import Message, MessageStatusEvent, RawEvent
from conversations.services import message_record
from conversations.tasks import reconcile_delivery_statuses

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("make test runs Celery tests on Redis: set CELERY_BROKER_URL=redis://...")
    queue = f"test-{uuid.uuid4().hex[:8]}"
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "HANDOFF_AUDITOR_DATA_DIR": str(tmp_path),
        # The wake test counts the per-task lines (quiet by default; README, Settings).
        "LOG_LEVEL_TASKS": "INFO",
    }
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
         "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield queue, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


def test_worker_on_redis_joins_reports_left_waiting(worker):
    queue, log = worker
    message = message_record(event=MessageEvent(
        channel="sms", direction="outbound", author_kind="human", provider="twilio",
        provider_message_id="SMworker", business_address="+14155550100",
        customer_address="+12125550147", occurred_at=timezone.now(), body="On it!",
    ))
    # A report the after-commit join missed (process killed between commit and join).
    MessageStatusEvent.objects.create(
        provider="twilio", provider_message_id="SMworker", status="delivered",
        provider_status="delivered", occurred_at=timezone.now(),
    )
    reconcile_delivery_statuses.apply_async(queue=queue)

    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        message.refresh_from_db()
        if message.status == "delivered":
            break
        time.sleep(0.3)
    assert message.status == "delivered", log.read_text()[-3000:]
    assert MessageStatusEvent.objects.get().message_id == message.pk
    assert Message.objects.count() == 1


def test_worker_on_redis_sweeps_handoffs(worker):
    """Beat's sweep task, run by a real worker: a handoff waiting past its SLA is flagged."""
    from conversations.applier import raw_event_ingest
    from conversations.models import Flag
    from handoffs.tasks import sweep_handoffs

    queue, log = worker
    asked = (timezone.now() - timezone.timedelta(hours=1)).isoformat()
    ref = {"channel": "sms", "business_address": "+14155550100",
           "customer_address": "+12125550199"}
    raw_event_ingest(provider="events", kind="events", dedupe_key="webhook:sweep-worker",
                     content_type="application/json", body=json.dumps([
                         {"type": "handoff.requested", "id": "sweep-worker-req",
                          "timestamp": asked, "data": {"conversation": ref,
                                                       "requested_by": "customer"}}]))
    sweep_handoffs.apply_async(queue=queue)

    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not Flag.objects.exists():
        time.sleep(0.3)
    flag = Flag.objects.filter(kind="handoff_stalled").first()
    assert flag is not None, log.read_text()[-3000:]
    assert flag.evidence["state"] == "requested" and flag.evidence["waited_seconds"] >= 3600


def test_webhooks_wake_a_worker_that_applies_them(worker, client, settings):
    """Webhooks only store and wake the applier through the broker: a burst of them is
    applied by the worker within seconds, with a couple of tasks per wake interval, not
    one per webhook; a webhook after a pause wakes it again."""
    from tests.support.signing import twilio_fixture
    from tests.support.twilio import TwilioClient

    queue, log = worker
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "APPLIER_WAKE": "task",
                                "APPLIER_QUEUE": queue, "APPLIER_WAKE_SECONDS": 0.5}
    twilio = TwilioClient(client)
    params = twilio_fixture("inbound_sms")
    started = time.monotonic()
    for i in range(20):
        response = twilio.message({**params, "MessageSid": f"SMburst{i:02d}", "Body": f"#{i}"})
        assert response.status_code == 200
    sent_in = time.monotonic() - started

    def applied(n: int) -> bool:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if Message.objects.count() >= n:
                return True
            time.sleep(0.1)
        return False

    assert applied(20), log.read_text()[-3000:]
    tasks = log.read_text().count("apply_raw_events[")
    # Two wakes at most per 0.5 s interval of the burst (leading and trailing), each logged
    # as received and succeeded.
    assert tasks <= 2 * 2 * (int(sent_in / 0.5) + 2), (tasks, sent_in)

    time.sleep(1.0)  # past the interval: the next webhook wakes the worker at once
    twilio.message({**params, "MessageSid": "SMafter", "Body": "later"})
    assert applied(21), log.read_text()[-3000:]
    assert not RawEvent.objects.filter(status="pending").exists()
