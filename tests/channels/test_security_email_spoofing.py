"""Issue 13, item 7: mail From the support address is our reply only on the ESP's word.
A failing SPF/DKIM verdict, or none at all, makes it suspect: kept (a `system` message,
never a human reply: it engages no handoff and opens none), and flagged `spoofed_sender`
with the verdicts as evidence. A forged verdict header inside the message does not count
(only the ESP's, prepended or in its own fields), and a setting trusts a relay that sends
no verdicts."""

from datetime import timedelta

import pytest

from conversations.models import Flag, Message
from handoffs.models import Handoff
from tests.support.email import (  # noqa: F401 (email_settings: an autouse fixture)
    CUSTOMER,
    SUPPORT,
    T0,
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

ASK = mail(msg_id="<ask@customer.test>", subject="Refund", text="Can a person refund me?")


def reply(*, headers=()) -> str:
    return mail(msg_id="<reply@acme.test>", subject="Re: Refund", sender=f"Lucía <{SUPPORT}>",
                to=CUSTOMER, at=T0 + timedelta(minutes=5), in_reply_to="<ask@customer.test>",
                references="<ask@customer.test>", text="Refund done, Lucía", headers=headers)


SPOOFS = {
    "mailgun fail": lambda c: mailgun(c, reply(), verdicts=(
        ("X-Mailgun-Spf", "Fail"), ("X-Mailgun-Dkim-Check-Result", "Fail"))),
    "mailgun none": lambda c: mailgun(c, reply(), verdicts=()),
    # The sender wrote passing verdicts into the message; Mailgun's own come first.
    "mailgun forged header": lambda c: mailgun(
        c, reply(headers=(("X-Mailgun-Spf", "Pass"), ("X-Mailgun-Dkim-Check-Result", "Pass"))),
        verdicts=(("X-Mailgun-Spf", "SoftFail"), ("X-Mailgun-Dkim-Check-Result", "Fail"))),
    "sendgrid fail": lambda c: sendgrid(c, reply(), fields={
        "SPF": "fail", "dkim": "{@acme.test : fail}"}),
    "sendgrid spf pass dkim fail": lambda c: sendgrid(c, reply(), fields={
        "SPF": "pass", "dkim": "{@acme.test : fail}"}),
    "sendgrid none, forged in message": lambda c: sendgrid(c, reply(headers=(
        ("Authentication-Results", "mx.acme.test; spf=pass; dkim=pass"),)), fields={}),
    "postmark fail": lambda c: postmark(c, reply(), esp_headers=(
        ("Received-SPF", "Fail (sender not authorized)"),
        ("Authentication-Results", "inbound.postmarkapp.com; dkim=fail"))),
    "postmark none": lambda c: postmark(c, reply(), esp_headers=()),
    "postmark none, forged in message": lambda c: postmark(c, reply(headers=(
        ("Received-SPF", "Pass"), ("Authentication-Results", "x; spf=pass; dkim=pass"))),
        esp_headers=()),
}


@pytest.mark.parametrize("post", SPOOFS.values(), ids=SPOOFS.keys())
def test_unauthenticated_mail_from_the_support_address_is_kept_flagged_not_a_reply(
        client, post):
    assert mailgun(client, ASK).status_code == 200
    assert post(client).status_code == 200
    spoof = Message.objects.get(provider_message_id="<reply@acme.test>")
    assert spoof.author_kind == "system"
    assert not Message.objects.filter(author_kind="human").exists()
    assert not Handoff.objects.exists()
    flag = Flag.objects.get(kind="spoofed_sender")
    assert (flag.subject_type, flag.subject_id, flag.status) == ("message", spoof.pk, "open")
    assert flag.evidence["from"] == SUPPORT
    assert Flag.Kind(flag.kind).label == "Sender not authenticated"


PASSES = {
    "mailgun": lambda c: mailgun(c, reply()),
    "sendgrid": lambda c: sendgrid(c, reply()),
    "postmark": lambda c: postmark(c, reply()),
}


@pytest.mark.parametrize("post", PASSES.values(), ids=PASSES.keys())
def test_authenticated_mail_from_the_support_address_is_a_human_reply(client, post):
    mailgun(client, ASK)
    post(client)
    assert Message.objects.get(provider_message_id="<reply@acme.test>").author_kind == "human"
    assert not Flag.objects.filter(kind="spoofed_sender").exists()


def test_a_trusted_relay_without_verdicts_is_believed_but_a_failure_is_not(client, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "EMAIL_TRUST_RELAY_WITHOUT_VERDICTS": True}
    mailgun(client, ASK)
    mailgun(client, reply(), verdicts=())
    assert Message.objects.get(provider_message_id="<reply@acme.test>").author_kind == "human"
    other = reply().replace("<reply@acme.test>", "<reply2@acme.test>")
    mailgun(client, other, verdicts=(("X-Mailgun-Spf", "Fail"),))
    assert Message.objects.get(provider_message_id="<reply2@acme.test>").author_kind == "system"
    assert Flag.objects.filter(kind="spoofed_sender").count() == 1
