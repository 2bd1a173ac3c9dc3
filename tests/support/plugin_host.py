"""The plugin installed into the minimal host project (tests/minimal_host/): a temporary site
directory holding only what `pip install` would put there (the packages pyproject.toml
ships) plus the tests package, migrated once per module; commands and scripts run in it as
subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What pyproject.toml ships ([tool.setuptools] packages), and the host project's package.
PLUGIN_PACKAGES = ("conversations", "channels", "handoffs", "scoring", "alerts", "audit")
NEW_TOKEN, OLD_TOKEN = "host-new-token-0123456789abcdef", "host-old-token-fedcba9876543210"


@pytest.fixture(scope="module")
def migrated_host(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("minimal_host")
    site = tmp / "site"
    site.mkdir()
    for package in (*PLUGIN_PACKAGES, "tests"):
        (site / package).symlink_to(ROOT / package, target_is_directory=True)
    env = {k: v for k, v in os.environ.items()
           if k not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL",
                        "PYTHONPATH", "HANDOFF_AUDITOR_DATA_DIR"}}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.minimal_host.settings",
        PYTHONPATH=str(site),
        MINIMAL_HOST_DB=str(tmp / "migrated.sqlite3"),
        TWILIO_AUTH_TOKEN=f"{NEW_TOKEN},{OLD_TOKEN}",
    )
    state = {"tmp": tmp, "env": env}
    state["migrate"] = django_admin(state, "migrate", "--noinput")
    return state


@pytest.fixture
def host(migrated_host, tmp_path) -> dict:
    """The migrated host with a database of its own for this test."""
    db = tmp_path / "db.sqlite3"
    db.write_bytes(Path(migrated_host["env"]["MINIMAL_HOST_DB"]).read_bytes())
    return {**migrated_host, "env": {**migrated_host["env"], "MINIMAL_HOST_DB": str(db)}}


def run(host: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=host["tmp"], env=host["env"], capture_output=True,
        text=True, timeout=180,
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


def django_admin(host: dict, *args: str) -> str:
    return run(host, "-m", "django", *args)


def script(host: dict, code: str, *args: str) -> dict:
    """Run `code` in the host (django.setup() done); it prints one JSON object last."""
    prelude = "import json, sys\nimport django\ndjango.setup()\n"
    out = run(host, "-c", prelude + code, *args)
    return json.loads(out.strip().splitlines()[-1])
