"""Delivery through real Celery workers on Redis against PostgreSQL: queued when the alert
commits, and a worker killed in the middle of sending leaves its delivery to be sent again
(at least once, with the same idempotency key) by another worker after the sweep."""

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

from alerts.models import Delivery
from alerts.services import alerts_evaluate_flags
from alerts.tasks import send_due_deliveries
from config.celery import app

from .conftest import destination, dropped_flag, make_rule

ROOT = Path(__file__).resolve().parents[2]
CLAIM_SECONDS = 3
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(settings):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("Celery tests run on Redis: set CELERY_BROKER_URL=redis://...")
    name = f"test-alerts-{uuid.uuid4().hex[:8]}"
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "ALERTS_QUEUE": name,
                                "ALERTS_ALLOW_HTTP": True,
                                "ALERTS_ALLOW_PRIVATE_ADDRESSES": True,
                                "ALERTS_CLAIM_SECONDS": CLAIM_SECONDS}
    yield name
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


@pytest.fixture
def workers(tmp_path, queue):
    started: list[subprocess.Popen] = []
    db = connection.settings_dict

    def start(label: str) -> subprocess.Popen:
        env = {**os.environ,
               "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
               "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
               "HANDOFF_AUDITOR_DATA_DIR": str(tmp_path),
               "HANDOFF_AUDITOR_ALERTS_ALLOW_HTTP": "1",
               "HANDOFF_AUDITOR_ALERTS_ALLOW_PRIVATE_ADDRESSES": "1",
               "HANDOFF_AUDITOR_ALERTS_CLAIM_SECONDS": str(CLAIM_SECONDS),
               "HANDOFF_AUDITOR_ALERTS_QUEUE": queue,
               "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps({
                   "visibility_timeout": 2, "unacked_restore_interval": 1,
                   "unacked_restore_throttle": 1})}
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel", "INFO",
             "-n", f"{label}-{queue}@%h"],
            cwd=ROOT, env=env, stdout=(tmp_path / f"{label}.log").open("w"),
            stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def wait_for(predicate, seconds=60, what=lambda: ""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"gave up waiting: {what()}")


def test_a_worker_killed_while_sending_loses_nothing(workers, receiver):
    hook = destination("webhook", receiver.url, secret="whsec_" + "A" * 32)
    make_rule(kind="flag", flag_kinds=["handoff_dropped"], group_by="conversation",
              destinations=[hook])
    for _ in range(3):
        dropped_flag(at=timezone.now())
    receiver.delay = 30  # the receiver hangs: the first worker is stuck mid-send
    alerts_evaluate_flags()  # commits three alerts and their outbox rows; queued at commit
    assert Delivery.objects.count() == 3
    first = workers("a")
    wait_for(lambda: len(receiver.requests) == 1, what=lambda: str(receiver.requests))
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    receiver.delay = 0
    workers("b")
    time.sleep(CLAIM_SECONDS + 0.5)  # the dead worker's lease runs out
    send_due_deliveries()  # what beat does every 15 s
    wait_for(lambda: Delivery.objects.filter(status="sent").count() == 3,
             what=lambda: str(list(Delivery.objects.values("status", "attempts",
                                                           "last_error"))))
    keys = [r["headers"]["webhook-id"] for r in receiver.requests]
    assert set(keys) == set(Delivery.objects.values_list("key", flat=True))
    # The delivery the killed worker was sending arrived twice, with one idempotency key.
    assert sorted(keys.count(k) for k in set(keys)) == [1, 1, 2]
