"""One customer across channels, through the real webhooks: SMS and WhatsApp from one
number, e-mail from one address, a web chat identified by the `customer.identified`
event; and `channel_switch_after_failure` when a customer comes back elsewhere after a
failed handoff."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from conversations.models import Conversation, Customer, CustomerIdentity, Flag
from tests.support import events as ev
from tests.support.email import CUSTOMER, email_settings, mail, mailgun  # noqa: F401
from tests.support.signing import twilio_fixture

pytestmark = pytest.mark.django_db

PHONE = "+12125550147"


@pytest.fixture(autouse=True)
def events_secret(settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [ev.SECRET]}


def _sms(twilio, sid: str, phone: str = PHONE):
    params = {**twilio_fixture("inbound_sms"), "From": phone}
    params.update(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    assert twilio.message(params).status_code == 200


def _whatsapp(twilio, sid: str, phone: str = PHONE):
    params = {**twilio_fixture("inbound_whatsapp_media"), "From": f"whatsapp:{phone}"}
    params.update(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    assert twilio.message(params).status_code == 200


def _events(client, events, msg_id):
    response = ev.post(client, json.dumps(events).encode(), msg_id=msg_id)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "processed", response.content


def _identify(external_id, **customer):
    return {"type": "customer.identified", "id": f"id-{external_id}",
            "data": {"conversation": {"channel": "web", "external_id": external_id},
                     "customer": customer}}


def test_sms_and_whatsapp_from_one_number_are_one_customer(twilio):
    _sms(twilio, "SMa1")
    _whatsapp(twilio, "SMa2")
    _sms(twilio, "SMb1", phone="+12125550999")
    sms, whatsapp = (Conversation.objects.get(channel=c, customer_address=PHONE)
                     for c in ("sms", "whatsapp"))
    assert sms.customer_id is not None and sms.customer_id == whatsapp.customer_id
    other = Conversation.objects.get(customer_address="+12125550999")
    assert other.customer_id not in (None, sms.customer_id)
    assert CustomerIdentity.objects.get(kind="phone", value=PHONE).customer_id == sms.customer_id


def test_an_identify_event_joins_web_chat_email_and_phone_and_merges(client, twilio):
    _sms(twilio, "SMc1")
    assert mailgun(client, mail(msg_id="<m1@customer.test>", subject="Refund",
                                text="Where is my refund?")).status_code == 200
    phone_customer = Conversation.objects.get(channel="sms").customer_id
    mail_customer = Conversation.objects.get(channel="email").customer_id
    assert phone_customer != mail_customer and mail_customer is not None
    # A web chat visitor is nobody until identified.
    _events(client, [ev.message("w-1", "visitor-4", at="2026-12-05T10:00:00Z",
                                external_id="chat-4")], "msg_c1")
    web = Conversation.objects.get(channel="web")
    assert web.customer_id is None

    _events(client, [_identify("chat-4", phone=PHONE, email=CUSTOMER.upper(), id="crm-77",
                               name="María José")], "msg_c2")

    customers = set(Conversation.objects.values_list("customer_id", flat=True))
    assert customers == {min(phone_customer, mail_customer)}  # merged into the oldest
    assert Customer.objects.count() == 1
    assert set(CustomerIdentity.objects.values_list("kind", "value")) == {
        ("phone", PHONE), ("email", CUSTOMER), ("external", "crm-77")}
    # Re-sent, nothing changes.
    _events(client, [_identify("chat-4", phone=PHONE)], "msg_c3")
    assert Customer.objects.count() == 1


def test_an_identify_event_rejects_a_customer_with_no_identity(client):
    body = json.dumps(_identify("chat-5", name="Nobody")).encode()
    response = ev.post(client, body, msg_id="msg_c5")
    assert response.status_code == 400
    assert response.json()["problems"][0]["path"] == "data.customer"


def _dropped_web_chat(client, external_id, at, phone=PHONE):
    """A web chat whose handoff was requested and closed with no human: dropped."""
    ref = {"channel": "web", "external_id": external_id}
    _events(client, [
        ev.message(f"{external_id}-m1", f"visitor-{external_id}", at=at.isoformat(),
                   external_id=external_id),
        _identify(external_id, phone=phone),
        {"type": "handoff.requested", "id": f"{external_id}-req", "timestamp": at.isoformat(),
         "data": {"conversation": ref, "requested_by": "customer"}},
        {"type": "conversation.closed", "id": f"{external_id}-close",
         "timestamp": (at + timedelta(minutes=10)).isoformat(), "data": {"conversation": ref}},
    ], f"msg_{external_id}")
    return Conversation.objects.get(keys__key=f"events:{external_id}")


def test_back_on_another_channel_within_24h_of_a_dropped_handoff_is_flagged(client, twilio):
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        web = _dropped_web_chat(client, "chat-6", start)
        assert Flag.objects.filter(conversation=web, kind="handoff_dropped").exists()
        clock.move_to(start + timedelta(hours=3))
        _whatsapp(twilio, "SMd1")
    whatsapp = Conversation.objects.get(channel="whatsapp")
    flag = Flag.objects.get(kind="channel_switch_after_failure")
    assert flag.conversation_id == whatsapp.pk
    assert flag.evidence["failed_conversation"] == web.pk
    # The wait stalled (SLA 60 s) and the handoff was dropped: the first failure explains it.
    failure = Flag.objects.get(pk=flag.evidence["failure_flag"])
    assert failure.conversation_id == web.pk and failure.kind == flag.evidence["failure"]
    assert failure.kind in ("handoff_stalled", "handoff_dropped")
    assert flag.evidence["came_back_channel"] == "whatsapp"
    assert 2.8 <= flag.evidence["hours_after_failure"] <= 3
    # The customer writes again there: still one finding.
    _whatsapp(twilio, "SMd2")
    assert Flag.objects.filter(kind="channel_switch_after_failure").count() == 1


def test_back_after_the_window_or_on_the_same_channel_is_not_flagged(client, twilio):
    start = timezone.now().replace(microsecond=0) - timedelta(days=3)
    with time_machine.travel(start, tick=False) as clock:
        _dropped_web_chat(client, "chat-7", start)
        clock.move_to(start + timedelta(hours=30))
        _sms(twilio, "SMe1")
        _dropped_web_chat(client, "chat-8", start + timedelta(hours=31), phone="+12125550888")
        clock.move_to(start + timedelta(hours=32))
        _events(client, [ev.message("w-9", "visitor-9b", at=(start + timedelta(
            hours=32)).isoformat(), external_id="chat-9"),
            _identify("chat-9", phone="+12125550888")], "msg_c9")
    assert Conversation.objects.get(keys__key="events:chat-9").customer_id == \
        Conversation.objects.get(keys__key="events:chat-8").customer_id
    assert not Flag.objects.filter(kind="channel_switch_after_failure").exists()
