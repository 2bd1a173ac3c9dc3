"""Issue 13, production defaults: no start without SECRET_KEY (debug off), TLS settings
behind a proxy, security headers, password reset only with a mail backend, the API's schema
and docs for signed-in callers, short staff sessions, Twilio's 403 without our URL, a demo
login that `make run` no longer resets, and `check --deploy` silent about our settings when
they are production ones."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from tests.support.roles import user_in
from tests.support.twilio import TOKEN

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
STRONG_EVENTS_SECRET = "whsec_" + "cHJvZHVjdGlvbi1ldmVudHMtc2VjcmV0LTMyLWJ5dGVzISE="
PRODUCTION = {
    "SECRET_KEY": "x" * 20 + "-production-key-" + "y" * 30,
    "DJANGO_BEHIND_TLS_PROXY": "1",
    "HANDOFF_AUDITOR_PUBLIC_BASE_URL": "https://auditor.example.com",
    "HANDOFF_AUDITOR_EVENTS_SECRETS": STRONG_EVENTS_SECRET,
    "TWILIO_AUTH_TOKEN": TOKEN,
}
SETTINGS_PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({k: getattr(settings, k, None) for k in (
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER")}))
"""


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in {"SECRET_KEY", "DJANGO_DEBUG", "DATABASE_URL", "PYTEST_CURRENT_TEST",
                         "HANDOFF_AUDITOR_EVENTS_SECRETS", "TWILIO_AUTH_TOKEN",
                         # set by the browser tests in this process (Playwright runs an
                         # event loop), not by an operator
                         "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=base, capture_output=True,
                          text=True, timeout=120)


def test_no_secret_key_with_debug_off_refuses_to_start(tmp_path):
    refused = run(["-c", SETTINGS_PROBE], HANDOFF_AUDITOR_DATA_DIR=str(tmp_path))
    assert refused.returncode != 0 and "SECRET_KEY is not set" in refused.stderr
    assert run(["-c", SETTINGS_PROBE], HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
               DJANGO_DEBUG="1").returncode == 0
    makefile, bin_run = (ROOT / "Makefile").read_text(), (ROOT / "bin" / "run").read_text()
    assert "run: export SECRET_KEY ?=" in makefile and "export SECRET_KEY=" in bin_run


def test_behind_a_tls_proxy_cookies_are_secure_http_redirects_and_hsts_is_on(tmp_path):
    import json

    out = run(["-c", SETTINGS_PROBE], HANDOFF_AUDITOR_DATA_DIR=str(tmp_path), **PRODUCTION)
    conf = json.loads(out.stdout.strip().splitlines()[-1])
    assert conf["SESSION_COOKIE_SECURE"] and conf["CSRF_COOKIE_SECURE"]
    assert conf["SECURE_SSL_REDIRECT"] and conf["SECURE_HSTS_SECONDS"] >= 31536000
    assert conf["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_check_deploy_reports_nothing_of_ours_with_production_settings(tmp_path):
    ok = run(["manage.py", "check", "--deploy"], HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
             **PRODUCTION)
    assert "handoff_auditor." not in ok.stdout + ok.stderr, ok.stdout + ok.stderr
    demo = run(["manage.py", "check", "--deploy"], HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
               **{**PRODUCTION, "HANDOFF_AUDITOR_PUBLIC_BASE_URL": "http://auditor.example.com",
                  "HANDOFF_AUDITOR_EVENTS_SECRETS":
                      "whsec_ZGVtby1zZWNyZXQtZm9yLWxvY2FsLXVzZS1vbmx5",
                  "TWILIO_AUTH_TOKEN": "changeme"})
    for warning in ("handoff_auditor.W001", "handoff_auditor.W003", "handoff_auditor.W004"):
        assert warning in demo.stdout + demo.stderr, warning


def test_pages_send_nosniff_and_a_referrer_policy(client):
    response = client.get("/accounts/login/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_password_reset_is_not_offered_without_a_mail_backend(client):
    assert client.get("/accounts/password_reset/").status_code == 404
    assert "password_reset" not in client.get("/accounts/login/").content.decode()


def test_the_api_schema_and_docs_need_a_signed_in_caller(client, settings):
    for path in ("/api/schema/", "/api/docs/", "/api/redoc/"):
        assert client.get(path).status_code in (401, 403), path
    viewer = Client()
    viewer.force_login(user_in("viewer", "docs-reader"))
    for path in ("/api/schema/", "/api/docs/", "/api/redoc/"):
        assert viewer.get(path).status_code == 200, path
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "API_DOCS_PUBLIC": True}
    assert client.get("/api/schema/").status_code == 200


def test_staff_sessions_are_shorter(settings):
    staff, other = Client(), Client()
    staff.force_login(User.objects.create_user("admin-ish", is_staff=True))
    other.force_login(user_in("viewer", "not-staff"))
    assert staff.session.get_expiry_age() == 8 * 3600
    assert other.session.get_expiry_age() == settings.SESSION_COOKIE_AGE


def test_twilios_403_does_not_echo_the_internal_url(client):
    from urllib.parse import urlencode

    response = client.post("/hooks/twilio/messages/",
                           urlencode({"MessageSid": "SM1", "From": "+1", "To": "+2"}),
                           content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": "forged"})
    assert response.status_code == 403
    text = response.content.decode()
    assert "testserver" not in text and "http" not in text and "/hooks/" not in text


def test_make_run_keeps_a_changed_demo_password(monkeypatch):
    monkeypatch.delenv("HANDOFF_AUDITOR_DEMO_PASSWORD", raising=False)
    call_command("ensure_demo_user", stdout=open(os.devnull, "w"))  # noqa: SIM115
    demo = User.objects.get(username="demo")
    assert demo.check_password("demo") and demo.is_superuser
    demo.set_password("changed-and-long-enough")
    demo.save()
    call_command("ensure_demo_user", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert User.objects.get(username="demo").check_password("changed-and-long-enough")


def test_check_deploy_is_silent_with_every_production_choice_made(tmp_path):
    # Beyond our own warnings: nothing at all once the operator has opted into HSTS for the
    # whole domain and the e-mail ESPs have their own secrets (no shared one).
    out = run(["manage.py", "check", "--deploy"], HANDOFF_AUDITOR_DATA_DIR=str(tmp_path),
              **PRODUCTION, DJANGO_HSTS_INCLUDE_SUBDOMAINS="1", DJANGO_HSTS_PRELOAD="1",
              ANYMAIL_WEBHOOK_SECRET_POSTMARK="anymail:postmark-own-secret")
    assert out.returncode == 0, out.stderr
    assert "System check identified no issues" in out.stdout, out.stdout + out.stderr
