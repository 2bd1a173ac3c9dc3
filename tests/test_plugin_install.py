"""The plugin installed into a minimal host project (tests/minimal_host/), as the README's
"Add to an existing Django project" says, without this repository's config/.

Every step runs in a subprocess whose import path holds only what `pip install` would put
there (the packages pyproject.toml ships, linked into a temporary site directory) plus the
host project itself: a plugin module that reached for config/ would fail to import.
"""

import json

import pytest

from tests.support.plugin_host import OLD_TOKEN, django_admin, script
from tests.support.signing import twilio_fixture

PUBLIC_URL = "https://support.example.com/hooks/twilio/messages/"

pytestmark = pytest.mark.slow


CONFIG_PROBE = """
config = sorted(m for m in sys.modules if m == "config" or m.startswith("config."))
"""


def test_migrate_applies_the_plugin_migrations_and_the_host_is_consistent(host):
    assert "Applying conversations.0001_initial... OK" in host["migrate"]
    # Django's system checks pass (admin, templates, the plugin's models) ...
    assert "no issues" in django_admin(host, "check", "--fail-level", "WARNING")
    # ... and the shipped migrations match the models under the host's settings (no
    # DEFAULT_AUTO_FIELD here: the plugin's apps must not depend on the host's choice).
    assert "No changes detected" in django_admin(host, "makemigrations", "--check",
                                                 "--dry-run")


WEBHOOK = CONFIG_PROBE.join(["""
from urllib.parse import urlencode
from django.contrib import admin
from django.test import Client
from conversations.models import Conversation, Message, RawEvent
from tests.support.signing import twilio_signature

params, token = json.loads(sys.argv[1]), sys.argv[2]
client = Client(HTTP_HOST="support.example.com")

def post(signature=None):
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    response = client.post("/hooks/twilio/messages/", urlencode(params),
                           content_type="application/x-www-form-urlencoded", headers=headers)
    return {"status": response.status_code, "content_type": response["Content-Type"],
            "body": response.content.decode(), "raw_events": RawEvent.objects.count()}

out = {
    "unsigned": post(),
    # Signed for the URL Django sees, not the public one Twilio calls: refused.
    "signed_for_internal_url": post(
        twilio_signature("http://support.example.com/hooks/twilio/messages/", params, token)),
    "signed": post(twilio_signature(sys.argv[3], params, token)),
    "replayed": post(twilio_signature(sys.argv[3], params, token)),
    # The webhook only stored it; the host's applier (its Celery worker, or this command)
    # applies it.
    "pending": list(RawEvent.objects.values_list("status", flat=True)),
    "apply": __import__("django.core.management").core.management.call_command(
        "apply_events", "--no-progress"),
    "conversations": list(Conversation.objects.values(
        "channel", "customer_address", "business_address", "message_count")),
    "messages": list(Message.objects.values("body", "provider_message_id", "direction")),
    "raw_events": list(RawEvent.objects.values("url", "status")),
    "admin_login": client.get("/admin/login/").status_code,
    "admin_registered": admin.site.is_registered(Conversation),
}
""", """
out["config"] = config
print(json.dumps(out))
"""])


def test_signed_twilio_webhook_is_stored_and_unsigned_is_refused(host):
    params = twilio_fixture("inbound_whatsapp_media")
    # Signed with the second token of TWILIO_AUTH_TOKEN: the README's split(",") rotation.
    out = script(host, WEBHOOK, json.dumps(params), OLD_TOKEN, PUBLIC_URL)

    assert out["unsigned"]["status"] == 403
    assert json.loads(out["unsigned"]["body"])["error"] == "missing_signature"
    assert out["signed_for_internal_url"]["status"] == 403
    assert json.loads(out["signed_for_internal_url"]["body"])["error"] == "invalid_signature"
    assert out["unsigned"]["raw_events"] == out["signed_for_internal_url"]["raw_events"] == 0

    assert out["signed"]["status"] == 200
    assert out["signed"]["content_type"].startswith("text/xml")
    assert out["signed"]["body"].endswith("<Response/>")
    assert out["replayed"]["status"] == 200 and out["replayed"]["raw_events"] == 1
    assert out["pending"] == ["pending"]

    assert out["conversations"] == [{
        "channel": "whatsapp", "customer_address": "+5215512345678",
        "business_address": "+14155238886", "message_count": 1,
    }]
    assert out["messages"] == [{
        "body": params["Body"], "provider_message_id": params["MessageSid"],
        "direction": "inbound",
    }]
    assert out["raw_events"] == [{"url": PUBLIC_URL, "status": "processed"}]
    assert out["admin_login"] == 200 and out["admin_registered"] is True
    assert out["config"] == [], "the plugin imported the repository's host project"


def test_beat_schedule_entry_from_the_readme_names_a_registered_task(host):
    out = script(host, CONFIG_PROBE.join(["""
from celery import current_app
from django.conf import settings
import conversations.tasks  # a host's Celery app autodiscovers these modules
import handoffs.tasks
names = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
""", """
print(json.dumps({"missing": [n for n in names if n not in current_app.tasks],
                  "config": config}))
"""]))
    assert out == {"missing": [], "config": []}


def test_auditor_home_page_works_in_the_host(host):
    out = script(host, """
from django.contrib.auth import get_user_model
from django.test import Client
user, _ = get_user_model().objects.get_or_create(username="lead", is_staff=True,
                                                 is_superuser=True)
client = Client(HTTP_HOST="support.example.com", raise_request_exception=False)
client.force_login(user)
anonymous = Client(HTTP_HOST="support.example.com").get("/auditor/", follow=True)
response = client.get("/auditor/")
print(json.dumps({"status": response.status_code,
                  "anonymous": [anonymous.status_code, anonymous.request["PATH_INFO"]],
                  "sign_in_form": b'name="password"' in anonymous.content}))
""")
    # Signed in: the page renders; signed out: the plugin's sign-in page is where one lands.
    assert out == {"status": 200, "anonymous": [200, "/accounts/login/"], "sign_in_form": True}
