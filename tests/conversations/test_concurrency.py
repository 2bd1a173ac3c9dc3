"""Real parallel webhooks against PostgreSQL, through a threaded live server.

Each request is its own thread and database connection on the server side, so the races
the ingest path guards against (first messages of a new customer, Twilio retrying while the
first delivery is still in flight, status callbacks overtaking each other or the message
they are about) really happen here. A barrier releases all senders at once, and each test
checks that the requests were in flight together.
"""

import random
import time
import uuid
from collections.abc import Callable

import pytest
import requests
from django.db import connection, transaction
from django.utils import timezone

from conversations.events import MessageEvent
from conversations.models import (
    Conversation,
    Message,
    MessageStatusEvent,
    Participant,
    RawEvent,
)
from conversations.services import message_record
from tests.support.concurrency import all_at_once, overlapping
from tests.support.signing import twilio_fixture, twilio_request
from tests.support.twilio import MESSAGES_PATH, STATUS_PATH, TOKEN

pytestmark = pytest.mark.django_db(transaction=True)


class Twilio:
    """Posts signed webhooks over real HTTP to the live server, as Twilio would."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def post(self, path: str, params: dict[str, str]) -> requests.Response:
        url = self.base_url + path
        body, headers = twilio_request(url, params, TOKEN)
        return requests.post(url, data=body, headers=headers, timeout=60)

    def message(self, params: dict[str, str]) -> Callable[[], requests.Response]:
        return lambda: self.post(MESSAGES_PATH, params)

    def status(self, params: dict[str, str]) -> Callable[[], requests.Response]:
        return lambda: self.post(STATUS_PATH, params)


@pytest.fixture
def twilio_http(live_server) -> Twilio:
    return Twilio(live_server.url)


def sid() -> str:
    return "SM" + uuid.uuid4().hex


def outbound_event(provider_message_id: str, customer: str) -> MessageEvent:
    return MessageEvent(
        channel="whatsapp", direction="outbound", author_kind="ai", provider="twilio",
        provider_message_id=provider_message_id, business_address="+14155238886",
        customer_address=customer, occurred_at=timezone.now(),
        body="Gracias, ya lo revisamos 🙏", author_id="support-bot",
    )


def test_the_live_server_checks_signatures_with_the_test_token(live_server, twilio_http):
    """The autouse token fixture reaches the server thread (same process, same settings)."""
    params = {**twilio_fixture("inbound_sms"), "MessageSid": sid()}
    unsigned = requests.post(live_server.url + MESSAGES_PATH, data=params, timeout=30)
    assert unsigned.status_code == 403
    assert unsigned.json()["error"] == "missing_signature"
    assert twilio_http.post(MESSAGES_PATH, params).status_code == 200
    assert Message.objects.get().provider_message_id == params["MessageSid"]


def test_twenty_first_messages_from_a_new_customer_make_one_conversation(twilio_http):
    base = twilio_fixture("inbound_whatsapp_media")
    overlaps = []
    for round_ in range(3):
        customer = f"+52155{round_:02d}{random.randrange(10**6):06d}"
        batch = [
            {**base, "MessageSid": (s := sid()), "SmsMessageSid": s, "SmsSid": s,
             "From": f"whatsapp:{customer}", "WaId": customer[1:], "Body": f"mensaje {i} 🙏"}
            for i in range(20)
        ]
        timings = all_at_once([twilio_http.message(params) for params in batch])
        overlaps.append(overlapping(timings))

        assert [t.result.status_code for t in timings] == [200] * 20
        conversation = Conversation.objects.get(customer_address=customer)
        assert conversation.status == "open"
        assert conversation.message_count == 20
        assert conversation.messages.count() == 20
        assert sorted(conversation.messages.values_list("body", flat=True)) == sorted(
            p["Body"] for p in batch
        )
        assert Participant.objects.filter(conversation=conversation, kind="customer").count() == 1
        assert conversation.last_customer_message_at is not None
        assert conversation.started_at <= conversation.last_activity_at
    assert Conversation.objects.count() == 3
    assert RawEvent.objects.filter(status="processed").count() == 60
    # The requests really raced: most were in flight together in every round.
    assert min(overlaps) >= 10, overlaps


def test_one_webhook_delivered_ten_times_at_once_is_stored_once(twilio_http):
    overlaps = []
    for _ in range(4):
        params = {**twilio_fixture("inbound_sms"), "MessageSid": sid(),
                  "From": f"+1212555{random.randrange(10**4):04d}"}
        timings = all_at_once([twilio_http.message(params)] * 10)
        overlaps.append(overlapping(timings))

        responses = [t.result for t in timings]
        assert [r.status_code for r in responses] == [200] * 10
        assert len({r.content for r in responses}) == 1
        assert responses[0].content.decode().endswith("<Response/>")
        assert RawEvent.objects.filter(dedupe_key=f"message:{params['MessageSid']}").count() == 1
        message = Message.objects.get(provider_message_id=params["MessageSid"])
        assert message.conversation.message_count == 1
    assert RawEvent.objects.count() == Message.objects.count() == 4
    assert min(overlaps) >= 5, overlaps


def test_status_callbacks_racing_each_other_end_on_the_furthest(twilio_http):
    base = twilio_fixture("status_whatsapp_read")
    overlaps = []
    for round_ in range(6):
        message = message_record(event=outbound_event(sid(), f"+52155123{round_:05d}"))
        statuses = ["queued", "sent", "delivered", "read"]
        random.shuffle(statuses)
        timings = all_at_once([
            twilio_http.status({**base, "MessageSid": message.provider_message_id,
                                "SmsSid": message.provider_message_id,
                                "MessageStatus": status, "SmsStatus": status})
            for status in statuses
        ])
        overlaps.append(overlapping(timings))

        assert [t.result.status_code for t in timings] == [200] * 4
        message.refresh_from_db()
        assert message.status == "read", (round_, statuses)
        history = message.status_events.all()
        assert sorted(e.status for e in history) == ["delivered", "queued", "read", "sent"]
        assert {e.conversation_id for e in history} == {message.conversation_id}
    assert MessageStatusEvent.objects.filter(message__isnull=True).count() == 0
    assert max(overlaps) >= 2, overlaps


def test_status_callback_racing_the_recording_of_its_message_is_joined(twilio_http):
    """The report may commit before, after or together with its message: it ends joined."""
    base = twilio_fixture("status_whatsapp_read")
    # (message delay, report delay): released together, or one clearly ahead of the other.
    delays = [(0, 0), (0, 0.005), (0.005, 0), (0.05, 0), (0, 0.05)] * 4
    orders = []
    for round_, (message_delay, report_delay) in enumerate(delays):
        provider_message_id = sid()
        event = outbound_event(provider_message_id, f"+52155987{round_:05d}")
        params = {**base, "MessageSid": provider_message_id, "SmsSid": provider_message_id,
                  "MessageStatus": "delivered", "SmsStatus": "delivered"}

        def record(event=event, delay=message_delay) -> Message:
            try:
                time.sleep(delay)
                with transaction.atomic():  # as on the ingest path: joins after commit
                    return message_record(event=event)
            finally:
                connection.close()  # this thread's own connection

        def report(params=params, delay=report_delay) -> requests.Response:
            time.sleep(delay)
            return twilio_http.post(STATUS_PATH, params)

        recorded, answered = all_at_once([record, report])
        assert answered.result.status_code == 200
        message = Message.objects.get(pk=recorded.result.pk)
        report_row = MessageStatusEvent.objects.get(provider_message_id=provider_message_id)
        assert report_row.message_id == message.pk, (round_, message_delay, report_delay)
        assert report_row.conversation_id == message.conversation_id
        assert message.status == "delivered"
        raw = RawEvent.objects.get(dedupe_key=f"status:{provider_message_id}:delivered")
        orders.append("report first" if raw.received_at < message.created_at else "message first")
    assert MessageStatusEvent.objects.filter(message__isnull=True).count() == 0
    # Both interleavings happened (a report that had to wait, and one that found its message).
    assert set(orders) == {"report first", "message first"}, orders
