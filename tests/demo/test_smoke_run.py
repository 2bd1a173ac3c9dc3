"""Smoke test of the `make run` path on the embedded defaults: SQLite and kombu's filesystem
broker, no server running. The same steps as `make run` (except seed_demo), then bin/run
(honcho: gunicorn, a Celery worker and beat) driven over real HTTP.
"""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.support.signing import twilio_fixture, twilio_request

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "smoke-token-0123456789abcdef0123"
START_TIMEOUT = 60

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check: Callable[[], bool], log: Path, proc: subprocess.Popen,
             timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            pytest.fail(f"bin/run exited ({proc.returncode}) before {what}:\n{tail(log)}")
        time.sleep(0.25)
    pytest.fail(f"no {what} after {timeout:.0f} s:\n{tail(log)}")


def tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no output)"


def answers(url: str, status: int = 200) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == status
    except (requests.ConnectionError, requests.Timeout):
        # Timeout: gunicorn has bound the port but its workers are still booting Django
        # (seen on a loaded 2-core machine); not answering yet, like a refused connection.
        return False


@pytest.fixture
def embedded_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE",
                        "HANDOFF_AUDITOR_PUBLIC_BASE_URL", "PYTHONPATH"}}
    env.update(
        HANDOFF_AUDITOR_DATA_DIR=str(tmp_path / "var"),
        TWILIO_AUTH_TOKEN=TOKEN,
        SECRET_KEY="insecure-local-only-handoff-auditor-demo-key-change-me",  # as make run
        HANDOFF_AUDITOR_HOST="127.0.0.1",
        HANDOFF_AUDITOR_PORT=str(free_port()),
        # Beat sends a sweep every second, so the run's output would show beat's and the
        # worker's per-task lines if they were on (checked at the end of the run).
        HANDOFF_AUDITOR_SWEEP_SECONDS="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"manage.py {args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_make_run_processes_serve_ingest_and_work_on_the_embedded_defaults(
    embedded_env, tmp_path
):
    env = embedded_env
    data_dir = Path(env["HANDOFF_AUDITOR_DATA_DIR"])
    base = f"http://127.0.0.1:{env['HANDOFF_AUDITOR_PORT']}"

    # The steps of `make run` before it execs bin/run (seed_demo aside).
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    assert "demo login" in manage(env, "ensure_demo_user")
    assert (data_dir / "db.sqlite3").is_file()

    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(ROOT / "bin" / "run")], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for("login page", lambda: answers(f"{base}/accounts/login/"), log, proc)
        output = tail(log, 100_000)
        assert f"Handoff Auditor is starting at {base}/" in output
        assert "Sign in as: demo / demo" in output
        # The port setting and the demo events secret, as the README's top says.
        assert f"HANDOFF_AUDITOR_PORT={env['HANDOFF_AUDITOR_PORT']}" in output
        assert "whsec_ZGVtby1zZWNyZXQtZm9yLWxvY2FsLXVzZS1vbmx5" in output

        assert answers(f"{base}/admin/login/")
        assert requests.get(f"{base}/healthz", timeout=5).text == "ok"
        # collectstatic output served by whitenoise (the admin would be unstyled otherwise).
        assert answers(f"{base}/static/admin/css/base.css")

        # A signed Twilio webhook over real HTTP, stored in the SQLite file.
        params = twilio_fixture("inbound_sms")
        url = f"{base}/hooks/twilio/messages/"
        body, headers = twilio_request(url, params, TOKEN)
        response = requests.post(url, data=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        assert response.text.endswith("<Response/>")
        unsigned = requests.post(url, data=params, timeout=30)
        assert unsigned.status_code == 403

        def recorded() -> list[tuple]:
            with sqlite3.connect(data_dir / "db.sqlite3") as db:
                return db.execute(
                    "SELECT c.customer_address, c.message_count, m.body "
                    "FROM conversations_message m "
                    "JOIN conversations_conversation c ON c.id = m.conversation_id "
                    "WHERE m.provider_message_id = ?", [params["MessageSid"]],
                ).fetchall()

        # The webhook only stored it; the Celery worker, woken through the filesystem
        # broker, is the applier.
        wait_for("the webhook's message applied by the worker", lambda: bool(recorded()),
                 log, proc)
        assert recorded() == [("+12125550147", 1, params["Body"])]

        # The worker and beat came up on the filesystem broker ...
        wait_for("ready Celery worker",
                 lambda: re.search(r"worker\.1 +\|.*@.* ready\.", tail(log, 10**6)), log, proc)
        wait_for("Celery beat",
                 lambda: re.search(r"beat\.1 +\|.*beat: Starting", tail(log, 10**6)), log,
                 proc)
        # ... and the worker runs a task sent through that broker by another process: the
        # dashboard rollup of the conversation's day (beat's own rollup is a minute away).
        day = conversation_day(data_dir, params["MessageSid"])
        assert rolled_up(data_dir, day) is None
        sent = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "config", "call",
             "audit.tasks.refresh_dashboard_rollups"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        wait_for("the rollup task run by the worker",
                 lambda: rolled_up(data_dir, day) is not None, log, proc)
        assert rolled_up(data_dir, day) == 1

        # The demo login reaches the home page, which lists the conversation.
        session = requests.Session()
        form = session.get(f"{base}/accounts/login/", timeout=10)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert csrf, form.text[:2000]
        home = session.post(
            f"{base}/accounts/login/",
            data={"username": "demo", "password": "demo", "next": "/inbox/",
                  "csrfmiddlewaretoken": csrf.group(1)},
            headers={"Referer": f"{base}/accounts/login/"}, timeout=10,
        )
        assert home.status_code == 200, home.text[:2000]
        assert home.url == f"{base}/inbox/", home.url
        assert "<h1>Inbox</h1>" in home.text
        assert "+12125550147" in home.text

        # The README's curl example signs and sends an event that is stored (docs stay true).
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        snippet = readme.split("Sign and send one from a shell", 1)[1]
        snippet = snippet.split("```sh\n", 1)[1].split("```", 1)[0]
        sent = subprocess.run(["bash", "-c", snippet.replace("127.0.0.1:8000", base[7:])],
                              capture_output=True, text=True, timeout=30)
        answer = json.loads(sent.stdout)
        assert answer["status"] in ("pending", "processed"), (sent.stdout, sent.stderr)

        def body() -> tuple | None:
            with sqlite3.connect(data_dir / "db.sqlite3") as db:
                return db.execute("SELECT body FROM conversations_message "
                                  "WHERE provider_message_id = 'wc_42_1'").fetchone()

        wait_for("the README's event applied", lambda: body() is not None, log, proc)
        assert body() == ("Can I talk to a person?",)

        # ... and so does its Python example.
        python = readme.split("Or from Python", 1)[1].split("```python\n", 1)[1]
        python = python.split("```", 1)[0].replace("127.0.0.1:8000", base[7:])
        sent = subprocess.run([sys.executable, "-c", python], capture_output=True, text=True,
                              timeout=30)
        assert sent.stdout.startswith("200 "), (sent.stdout, sent.stderr)
        wait_for("the README's Python event applied",
                 lambda: db_has_message(data_dir, "wc_42_2"), log, proc)
        assert proc.poll() is None, tail(log)

        # Ctrl-C stops web, worker and beat, with no error on the way out.
        before = len(tail(log, 10**7))
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        ending = tail(log, 10**7)[before:]
        assert not re.search(r"Traceback|\bERROR\b|CRITICAL|KeyboardInterrupt", ending), ending
        assert not answers(f"{base}/healthz")

        # Quiet at INFO over the whole run: no line per task, no kombu hostname warning;
        # the start-up lines are still there.
        output = tail(log, 10**7)
        assert re.search(r"worker\.1 +\|.*@.* ready\.", output)
        assert not re.search(r"\bTask [\w.]+\[[0-9a-f-]+\] (received|succeeded)", output), output
        assert "Sending due task" not in output, output
        assert "No hostname was supplied" not in output, output
    finally:
        stop(proc)


def conversation_day(data_dir: Path, provider_message_id: str) -> str:
    with sqlite3.connect(data_dir / "db.sqlite3") as db:
        return db.execute(
            "SELECT date(c.started_at) FROM conversations_conversation c "
            "JOIN conversations_message m ON m.conversation_id = c.id "
            "WHERE m.provider_message_id = ?", [provider_message_id]).fetchone()[0]


def rolled_up(data_dir: Path, day: str) -> int | None:
    """The conversations the dashboard rollup counts on `day`; None before it is built."""
    with sqlite3.connect(data_dir / "db.sqlite3") as db:
        if db.execute("SELECT 1 FROM audit_dashboardday WHERE day = ?", [day]).fetchone():
            return db.execute("SELECT COALESCE(SUM(conversations), 0) "
                              "FROM audit_conversationdaily WHERE day = ?", [day]).fetchone()[0]
    return None


def db_has_message(data_dir: Path, provider_message_id: str) -> bool:
    with sqlite3.connect(data_dir / "db.sqlite3") as db:
        return db.execute("SELECT 1 FROM conversations_message WHERE provider_message_id = ?",
                          [provider_message_id]).fetchone() is not None


def stop(proc: subprocess.Popen) -> None:
    """Stop honcho and everything it started (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # Children may outlive honcho briefly; none may survive the test.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_make_run_seeds_the_demo_on_the_embedded_defaults(embedded_env):
    """`make run`'s seed_demo on SQLite: every part of the demo (alerts' evaluation and
    delivery included) goes through the portable writers; a second start adds nothing."""
    env = embedded_env
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo")
    db = Path(env["HANDOFF_AUDITOR_DATA_DIR"]) / "db.sqlite3"

    def counts() -> dict[str, int]:
        with sqlite3.connect(db) as conn:
            return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("conversations_conversation", "alerts_alert",
                                  "alerts_alertevent", "alerts_rule")}

    first = counts()
    assert first["conversations_conversation"] > 0
    assert first["alerts_rule"] > 0 and first["alerts_alert"] > 0 and first["alerts_alertevent"] > 0
    manage(env, "seed_demo")
    assert counts() == first
