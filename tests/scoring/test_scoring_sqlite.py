"""Scoring on the embedded default (`make run`: SQLite, no PostgreSQL): the ORM upsert path
stores the same rows, and a second run changes nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json
import django
django.setup()
from django.utils import timezone
from conversations.events import MessageEvent
from conversations.models import Flag
from conversations.services import message_record
from scoring.models import Score
from scoring.services import messages_score

m = message_record(event=MessageEvent(
    channel="sms", direction="outbound", author_kind="ai", provider="twilio",
    provider_message_id="SMsqlite", business_address="+14155550100",
    customer_address="+12125550147", occurred_at=timezone.now(),
    body="<think>angry customer</think> Sorry! Your order ships today.",
))
messages_score(message_ids=[m.pk])
first = sorted(Score.objects.values_list("id", "name", "value", "author"))
messages_score(message_ids=[m.pk])
again = sorted(Score.objects.values_list("id", "name", "value", "author"))
print(json.dumps({"names": sorted(n for _, n, _, _ in first), "same": first == again,
                  "flags": sorted(Flag.objects.values_list("kind", flat=True))}))
'''


def test_scoring_on_sqlite(tmp_path):
    # The embedded defaults all through: SQLite, and the filesystem broker under tmp_path
    # for the task message_record's signal queues (not the suite's shared Redis).
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "PYTHONPATH"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
               PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT,
                   env=env, check=True, timeout=300)
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["names"] == ["brand_tone", "emoji", "formality", "greeting_signoff",
                               "language", "length", "phrases", "politeness", "readability",
                               "warmth"]
    assert result["same"] is True
    assert result["flags"] == ["reasoning_leak"]
