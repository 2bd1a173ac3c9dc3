"""The host settings switch from the embedded defaults to real servers by environment alone."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "name": str(settings.DATABASES["default"]["NAME"]),
    "options": settings.DATABASES["default"].get("OPTIONS", {}),
    "broker": settings.CELERY_BROKER_URL,
    "tokens": settings.HANDOFF_AUDITOR["TWILIO_AUTH_TOKENS"],
    "public": settings.HANDOFF_AUDITOR["PUBLIC_BASE_URL"],
    "hosts": settings.ALLOWED_HOSTS,
}))
"""


def probe(tmp_path, **env):
    base = {k: v for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "TWILIO_AUTH_TOKEN"}}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
                SECRET_KEY="test-settings-probe-key")
    base.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=base, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_embedded_defaults_are_sqlite_wal_and_filesystem_broker(tmp_path):
    conf = probe(tmp_path)
    assert conf["engine"] == "django.db.backends.sqlite3"
    assert conf["name"] == str(tmp_path / "db.sqlite3")
    assert "journal_mode=WAL" in conf["options"]["init_command"]
    assert conf["broker"] == "filesystem://localhost/"
    assert (tmp_path / "broker" / "queue").is_dir()
    assert conf["tokens"] == []


def test_database_and_broker_urls_switch_to_postgresql_and_redis(tmp_path):
    conf = probe(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/somewhere",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
        TWILIO_AUTH_TOKEN="new-token, old-token",
        HANDOFF_AUDITOR_PUBLIC_BASE_URL="https://support.example.com/",
    )
    assert conf["engine"] == "django.db.backends.postgresql"
    assert conf["name"] == "somewhere"
    assert conf["broker"] == "redis://127.0.0.1:6379/3"
    assert conf["tokens"] == ["new-token", "old-token"]
    assert conf["public"] == "https://support.example.com"
    assert "support.example.com" in conf["hosts"]


def test_a_bare_filesystem_broker_url_is_the_embedded_one(tmp_path):
    conf = probe(tmp_path, CELERY_BROKER_URL="filesystem://")
    assert conf["broker"] == "filesystem://localhost/"
    assert (tmp_path / "broker" / "queue").is_dir()


# What a worker, beat and the web process log through the configured LOGGING: the real
# Celery loggers and message templates, and a task sent through the embedded broker (what
# webhooks and seed_demo do).
LOG_PROBE = """
import logging, django
django.setup()
from celery import beat
from celery.app import trace
from celery.worker import strategy
from config.celery import app
from conversations.tasks import apply_raw_events

with app.connection_for_write() as connection:
    apply_raw_events.apply_async(connection=connection, retry=False)
context = {"name": "conversations.tasks.apply_raw_events", "id": "9f1c", "runtime": 0.04,
           "return_value": 1, "args": "()", "kwargs": "{}"}
strategy.logger.info(trace.LOG_RECEIVED, context)
trace.info(trace.LOG_SUCCESS, context)
beat.info("Scheduler: Sending due task %s (%s)", "apply-raw-events", context["name"])
beat.info("beat: Starting...")
trace.logger.error("Task %(name)s[%(id)s] raised unexpected: %(exc)s",
                   dict(context, exc="OperationalError()"))
logging.getLogger("conversations.applier").error("raw event 7 failed: bad payload")
"""


def logged(tmp_path, **env) -> str:
    base = {k: v for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "LOG_LEVEL", "LOG_LEVEL_TASKS"}}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
                SECRET_KEY="test-settings-probe-key", **env)
    result = subprocess.run([sys.executable, "-c", LOG_PROBE], cwd=ROOT, env=base,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_logs_are_quiet_at_info_without_per_task_lines_or_kombu_warnings(tmp_path):
    out = logged(tmp_path)
    assert list((tmp_path / "broker" / "queue").iterdir()), "the task was not sent"
    assert "No hostname was supplied" not in out
    assert "received" not in out
    assert "succeeded in" not in out
    assert "Sending due task" not in out
    # Start-up lines, a task's failure and our own errors still show.
    assert "beat: Starting..." in out
    assert "conversations.tasks.apply_raw_events[9f1c] raised unexpected" in out
    assert "raw event 7 failed: bad payload" in out


def test_log_level_tasks_info_brings_the_per_task_lines_back(tmp_path):
    out = logged(tmp_path, LOG_LEVEL_TASKS="info")
    assert "Task conversations.tasks.apply_raw_events[9f1c] received" in out
    assert "Task conversations.tasks.apply_raw_events[9f1c] succeeded in 0.04s: 1" in out
    assert "Scheduler: Sending due task apply-raw-events" in out
    assert "No hostname was supplied" not in out


def test_an_unknown_log_level_tasks_is_refused(tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
                SECRET_KEY="test-settings-probe-key", LOG_LEVEL_TASKS="loud")
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                            env=base, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "LOG_LEVEL_TASKS='LOUD': not a logging level" in result.stderr
