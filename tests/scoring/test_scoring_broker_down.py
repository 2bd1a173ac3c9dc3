"""With the broker unreachable, queueing a scoring task neither raises nor keeps every
later message waiting on the dead broker: the first failure is logged and, for the backoff,
new messages are left to the catch-up sweep without trying."""

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import django
django.setup()
from scoring.services import message_ids_enqueue, message_recorded_receive
print("first", message_ids_enqueue(message_ids=[1, 2, 3]))
print("second", message_ids_enqueue(message_ids=[4]))
message_recorded_receive(message_ids=[5])  # the signal path: on_commit runs at once here
print("done")
'''


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the with block ends


def test_unreachable_broker_is_logged_then_skipped(tmp_path):
    # No DATABASE_URL: the embedded SQLite default under tmp_path (on_commit asks the
    # connection whether a transaction is open; nothing is read or written).
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env = {**env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0",
           "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT),
           "HANDOFF_AUDITOR_DATA_DIR": str(tmp_path), "LOG_LEVEL": "INFO"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["first", "0", "second", "0", "done"]
    log = done.stderr  # the host project's LOGGING writes to stderr
    assert log.count("could not queue scoring of 3 messages") == 1
    assert log.count("broker unavailable lately") == 2  # the second call and the signal's
