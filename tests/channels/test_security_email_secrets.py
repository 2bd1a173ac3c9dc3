"""Issue 13: the basic-auth secret of one e-mail ESP route must not open the others. Each
ESP's routes (/hooks/email/<esp>/inbound/ and /tracking/) take their own credentials from
HANDOFF_AUDITOR["EMAIL_WEBHOOK_SECRETS"] (env ANYMAIL_WEBHOOK_SECRET_<ESP>); the older
shared ANYMAIL["WEBHOOK_SECRET"] still serves ESPs without their own. Requests are posted
the way each ESP posts them (tests/support/email.py)."""

import json

import pytest

from conversations.models import Message, RawEvent
from tests.audit.test_security_production import run
from tests.support.email import (  # noqa: F401 (email_settings: an autouse fixture)
    BASIC,
    SIGNING_KEY,
    basic_auth,
    email_settings,
    mail,
    mailgun,
    postmark,
    sendgrid,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

POSTMARK_SECRET = "anymail:postmark-only-0a1b2c3d4e5f"
SENDGRID_SECRET = "anymail:sendgrid-only-9z8y7x6w5v4u"
MAILGUN_SECRET = "anymail:mailgun-only-1q2w3e4r5t6y"


def raw(n: int) -> str:
    return mail(msg_id=f"<esp-{n}@customer.test>", subject=f"Question {n}", text="Hello?\n")


@pytest.fixture
def per_esp(settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EMAIL_WEBHOOK_SECRETS": {
        "postmark": [POSTMARK_SECRET], "SendGrid": SENDGRID_SECRET,
        "mailgun": [MAILGUN_SECRET]}}


def test_one_esps_secret_is_refused_on_another_esps_route(client, settings, per_esp):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}  # no shared secret
    for response in (postmark(client, raw(1), credentials=SENDGRID_SECRET),
                     postmark(client, raw(2), credentials=MAILGUN_SECRET),
                     sendgrid(client, raw(3), credentials=POSTMARK_SECRET),
                     mailgun(client, raw(4), credentials=SENDGRID_SECRET)):
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "forbidden"
    # The tracking routes too: Postmark's delivery reports with SendGrid's secret.
    tracking = client.post("/hooks/email/postmark/tracking/",
                           json.dumps({"RecordType": "Delivery", "MessageID": "x"}),
                           content_type="application/json", headers=basic_auth(SENDGRID_SECRET))
    assert tracking.status_code == 403
    assert RawEvent.objects.count() == 0 and Message.objects.count() == 0

    assert postmark(client, raw(5), credentials=POSTMARK_SECRET).status_code == 200
    assert sendgrid(client, raw(6), credentials=SENDGRID_SECRET).status_code == 200
    assert mailgun(client, raw(7), credentials=MAILGUN_SECRET).status_code == 200
    assert sorted(RawEvent.objects.values_list("headers__esp", flat=True)) == [
        "Mailgun", "Postmark", "SendGrid"]


def test_the_shared_secret_opens_only_esps_without_their_own(client, settings):
    # Backward compatible: ANYMAIL["WEBHOOK_SECRET"] (BASIC, set by email_settings) keeps
    # working where no own secret is set, and stops working where one is.
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "EMAIL_WEBHOOK_SECRETS": {"postmark": POSTMARK_SECRET}}
    assert postmark(client, raw(1), credentials=BASIC).status_code == 403
    assert RawEvent.objects.count() == 0
    assert sendgrid(client, raw(2), credentials=BASIC).status_code == 200
    assert postmark(client, raw(3), credentials=POSTMARK_SECRET).status_code == 200
    assert sendgrid(client, raw(4), credentials=POSTMARK_SECRET).status_code == 403
    assert RawEvent.objects.count() == 2


def test_an_esp_with_no_secret_at_all_is_refused_as_not_configured(client, settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "EMAIL_WEBHOOK_SECRETS": {"postmark": POSTMARK_SECRET}}
    refused = sendgrid(client, raw(1), credentials=POSTMARK_SECRET)
    assert refused.status_code == 403 and refused.json()["error"] == "not_configured"
    assert "sendgrid" in refused.json()["detail"]
    assert RawEvent.objects.count() == 0


def test_rotation_two_secrets_for_one_esp(client, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EMAIL_WEBHOOK_SECRETS": {
        "postmark": f"{POSTMARK_SECRET}, anymail:postmark-next-secret"}}
    assert postmark(client, raw(1), credentials=POSTMARK_SECRET).status_code == 200
    assert postmark(client, raw(2), credentials="anymail:postmark-next-secret").status_code == 200


def test_each_esps_secret_comes_from_its_own_environment_variable(tmp_path):
    probe = ("import json, django; django.setup(); "
             "from conversations.conf import auditor_settings as s; "
             "print(json.dumps(s.EMAIL_WEBHOOK_SECRETS))")
    out = run(["-c", probe], HANDOFF_AUDITOR_DATA_DIR=str(tmp_path), DJANGO_DEBUG="1",
              ANYMAIL_WEBHOOK_SECRET_POSTMARK=f"{POSTMARK_SECRET},anymail:next",
              ANYMAIL_WEBHOOK_SECRET_SENDGRID=SENDGRID_SECRET)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "postmark": [POSTMARK_SECRET, "anymail:next"], "sendgrid": [SENDGRID_SECRET]}, out.stderr


def test_check_deploy_warns_of_a_shared_secret_and_not_of_per_esp_ones(settings, per_esp):
    from channels.checks import plugin_settings_check

    ids = [w.id for w in plugin_settings_check()]  # email_settings set the shared BASIC
    assert "handoff_auditor.W006" in ids
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    assert "handoff_auditor.W006" not in [w.id for w in plugin_settings_check()]
