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
    assert conf["broker"] == "filesystem://"
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
