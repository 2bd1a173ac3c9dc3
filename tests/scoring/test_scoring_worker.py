"""Scoring through real Celery workers on Redis against PostgreSQL: queued after commit,
and a task whose worker is killed mid-way is redelivered and completed exactly once."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.celery import app
from conversations.events import MessageEvent
from conversations.models import Flag
from conversations.services import message_record
from scoring.models import BrandVoice, Score
from scoring.services import message_ids_enqueue
from scoring.tasks import score_catch_up
from tests.support.scoring_brand import BRISA

ROOT = Path(__file__).resolve().parents[2]
DIMENSIONS = {"formality", "warmth", "politeness", "readability", "length", "emoji",
              "greeting_signoff", "phrases", "brand_tone", "language"}

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _dsn() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def queue(settings):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("make test runs Celery tests on Redis: set CELERY_BROKER_URL=redis://...")
    name = f"test-scoring-{uuid.uuid4().hex[:8]}"
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "SCORING_QUEUE": name,
                                "SCORING_ON_RECORD": True}
    yield name
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(name)


@pytest.fixture
def workers(tmp_path, queue):
    started: list[subprocess.Popen] = []

    def start(label: str) -> Path:
        env = {
            **os.environ,
            "DATABASE_URL": _dsn(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "HANDOFF_AUDITOR_DATA_DIR": str(tmp_path),
            # The test follows one task by its "received" and "succeeded" lines.
            "LOG_LEVEL_TASKS": "INFO",
            # A killed worker's unacknowledged task goes back to the queue after 2 s, looked
            # for every second (kombu: an hour, looked for every 100 s).
            "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps({
                "visibility_timeout": 2, "unacked_restore_interval": 1,
                "unacked_restore_throttle": 1,
            }),
        }
        log = tmp_path / f"worker-{label}.log"
        started.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel", "INFO",
             "-n", f"{label}-{queue}@%h"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        ))
        return log

    start.procs = started
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


def record(body, *, sid, direction="outbound", author_kind="ai"):
    return message_record(event=MessageEvent(
        channel="sms", direction=direction, author_kind=author_kind, provider="twilio",
        provider_message_id=sid, business_address="+14155550100",
        customer_address="+12125550147", occurred_at=timezone.now(), body=body,
    ))


def test_new_messages_are_scored_by_a_worker_after_commit(workers, queue):
    BrandVoice.objects.create(**BRISA, is_default=True)
    log = workers("a")
    with transaction.atomic():
        inbound = record("Where is my order? This is so frustrating.", sid="SMin",
                         direction="inbound", author_kind="customer")
        reply = record("Sorry for the wait! calm down, it ships today.", sid="SMout")
        with app.connection_for_write() as conn:
            # Nothing is queued before the messages are committed.
            assert conn.default_channel.client.llen(queue) == 0
    wait_for(lambda: Score.objects.filter(message=reply, name="brand_tone").exists()
             and Score.objects.filter(message=inbound).exists(),
             what=lambda: log.read_text()[-2000:])
    assert set(Score.objects.filter(message=reply).values_list("name", flat=True)) == DIMENSIONS
    assert set(Score.objects.filter(message=inbound).values_list("name", flat=True)) == {
        "warmth", "frustration", "language"}
    assert Flag.objects.get(kind="tone_off_brand").subject_id == reply.pk


def _waiting_on_lock(cur) -> list[int]:
    cur.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' "
        "AND query ~ '^INSERT INTO \"?scoring_score\"? '"
    )
    return [row[0] for row in cur.fetchall()]


def test_task_killed_mid_way_is_redelivered_and_scores_once(workers, queue, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "SCORING_ON_RECORD": False}
    BrandVoice.objects.create(**BRISA, is_default=True)
    messages = [record(f"Hey, calm down, order {i} ships today", sid=f"SMk{i}")
                for i in range(3)]

    with psycopg.connect(_dsn(), autocommit=False) as blocker, blocker.cursor() as cur:
        # Hold the score table so the first worker stops inside its write transaction.
        cur.execute("LOCK TABLE scoring_score IN SHARE MODE")
        first = workers("first")
        assert message_ids_enqueue(message_ids=[m.pk for m in messages]) == 1
        with psycopg.connect(_dsn(), autocommit=True) as watcher, watcher.cursor() as wcur:
            wait_for(lambda: _waiting_on_lock(wcur), what=lambda: first.read_text()[-2000:])
            task_id = next(line for line in first.read_text().splitlines()
                           if "Task scoring.tasks.score_messages[" in line and "received" in line
                           ).split("score_messages[", 1)[1].split("]", 1)[0]
            proc = workers.procs[0]
            os.killpg(proc.pid, signal.SIGKILL)  # mid-task: no ack, no commit
            proc.wait(timeout=20)
            blocker.rollback()  # release the table; the dead worker's transaction aborts
            wait_for(lambda: not _waiting_on_lock(wcur),
                     what=lambda: "the killed worker's backend")
    assert not Score.objects.exists()
    assert not Flag.objects.exists()

    second = workers("second")
    wait_for(lambda: f"score_messages[{task_id}] succeeded" in second.read_text(),
             seconds=90, what=lambda: second.read_text()[-2000:])
    for m in messages:
        assert set(Score.objects.filter(message=m).values_list("name", flat=True)) == DIMENSIONS
    assert Score.objects.count() == len(messages) * len(DIMENSIONS)
    assert Flag.objects.filter(kind="tone_off_brand").count() == len(messages)


def test_catch_up_queues_what_was_never_scored(workers, queue, settings):
    # As after a broker outage: the messages were recorded but nothing was queued.
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "SCORING_ON_RECORD": False}
    BrandVoice.objects.create(**BRISA, is_default=True)
    missed = [record(f"Your order {i} ships today. Thanks!", sid=f"SMc{i}") for i in range(3)]
    log = workers("catchup")
    assert score_catch_up() == 1  # one batch
    wait_for(lambda: Score.objects.filter(name="brand_tone").count() == 3,
             what=lambda: log.read_text()[-2000:])
    assert score_catch_up() == 0  # nothing left to do
    assert {s.message_id for s in Score.objects.filter(name="brand_tone")} == {
        m.pk for m in missed}
