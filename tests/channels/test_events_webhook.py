"""POST /hooks/events/: Standard-Webhooks-signed JSON from web chat, the AI platform and the
helpdesk (message.created and message.status so far)."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from conversations.models import Conversation, Message, MessageStatusEvent, RawEvent
from tests.support.events import PATH, SECRET, post
from tests.support.signing import events_fixture, events_headers, twilio_fixture

pytestmark = pytest.mark.django_db

OLD_SECRET = "whsec_" + base64.b64encode(b"handoff-auditor-old-secret-00001").decode()


@pytest.fixture(autouse=True)
def events_secret(settings, twilio_tokens):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}


def test_batch_records_ai_and_human_replies_with_bodies(client):
    response = post(client, events_fixture("ai_reply_then_status_batch"))
    assert response.status_code == 200
    assert response.json()["status"] == "processed"
    ai, human = Message.objects.order_by("sent_at")
    assert ai.author_kind == "ai" and ai.participant.display_name == "Ava (AI)"
    assert ai.body.startswith("¡Hola María José!")
    assert ai.sent_at == datetime(2026, 11, 22, 10, 15, 1, 250000, tzinfo=UTC)
    assert ai.metadata == {"model": "gpt-4.1-mini", "prompt_version": "returns-v7"}
    assert human.author_kind == "human" and human.participant.external_id == "lucia.fernandez"
    conversation = Conversation.objects.get()
    assert conversation.channel == "whatsapp" and conversation.message_count == 2


def test_twilio_status_callbacks_join_messages_the_platform_reports(client, twilio,
                                                                    django_capture_on_commit_callbacks):
    # The read receipt arrives first, from Twilio; the body comes later, from the platform.
    with django_capture_on_commit_callbacks(execute=True):
        assert twilio.status(twilio_fixture("status_whatsapp_read")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        post(client, events_fixture("ai_reply_then_status_batch"))
    message = Message.objects.get(provider_message_id="SM9e8d7c6b5a4f43e2d1c0b9a8f7e6d5c4")
    assert message.status == "read"
    assert MessageStatusEvent.objects.get().message_id == message.pk


def test_web_chat_message_and_status(client):
    post(client, events_fixture("web_chat_customer"), msg_id="msg_a")
    message = Message.objects.get()
    assert message.conversation.channel == "web"
    assert message.provider == "events"
    assert message.sent_at == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # event timestamp
    post(client, events_fixture("web_chat_status_read"), msg_id="msg_b")
    assert MessageStatusEvent.objects.get().status == "read"


def test_hand_computed_signature_per_the_spec_is_accepted(client):
    body = events_fixture("web_chat_customer")
    ts = str(int(datetime.now(tz=UTC).timestamp()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b"msg_hand." + ts.encode() + b"." + body, hashlib.sha256).digest()
    headers = {"webhook-id": "msg_hand", "webhook-timestamp": ts,
               "webhook-signature": "v1,bm90LWl0 v1," + base64.b64encode(mac).decode()}
    assert post(client, body, headers=headers).status_code == 200


def test_retry_with_the_same_webhook_id_stores_nothing_new(client):
    body = events_fixture("ai_reply_then_status_batch")
    first = post(client, body, msg_id="msg_same")
    second = post(client, body, msg_id="msg_same")
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["raw_events"] == first.json()["raw_events"]
    # One raw event per event of the batch, each stored once.
    assert (RawEvent.objects.count(), Message.objects.count()) == (len(json.loads(body)), 2)


@pytest.mark.parametrize("case", ["wrong_secret", "tampered", "too_old", "too_new", "missing",
                                  "garbage_signature"])
def test_forged_or_replayed_requests_get_403_and_store_nothing(client, case):
    body = events_fixture("web_chat_customer")
    kwargs = {}
    if case == "wrong_secret":
        kwargs["secret"] = OLD_SECRET
    elif case == "too_old":
        kwargs["timestamp"] = datetime.now(tz=UTC) - timedelta(minutes=6)
    elif case == "too_new":
        kwargs["timestamp"] = datetime.now(tz=UTC) + timedelta(minutes=6)
    elif case == "missing":
        kwargs["headers"] = {"webhook-id": "x"}
    elif case == "garbage_signature":
        kwargs["headers"] = {"webhook-id": "x", "webhook-timestamp": "1",
                             "webhook-signature": "nonsense"}
    if case == "tampered":
        headers = events_headers(body, SECRET, msg_id="msg_t")
        response = post(client, body.replace(b"Menschen", b"Roboter"), headers=headers)
    else:
        response = post(client, body, **kwargs)
    assert response.status_code == 403
    assert response.json()["error"] in {"invalid_signature", "missing_signature"}
    assert RawEvent.objects.count() == 0


def test_secret_rotation(client, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "EVENTS_SECRETS": f"{SECRET},{OLD_SECRET}"}
    assert post(client, events_fixture("web_chat_customer"), secret=OLD_SECRET).status_code == 200


@pytest.mark.parametrize("body, content_type, code", [
    (b"{not json", "application/json", 400),
    (b"[]", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'{"type": "message.created"}', "text/plain", 415),
])
def test_malformed_bodies_are_4xx_json_and_store_nothing(client, body, content_type, code):
    response = post(client, body, content_type=content_type)
    assert response.status_code == code
    assert response.json()["detail"]
    assert RawEvent.objects.count() == 0


def test_batch_over_the_limit_is_refused(client, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_MAX_BATCH": 3}
    event = json.loads(events_fixture("web_chat_status_read"))
    response = post(client, json.dumps([event] * 4).encode())
    assert response.status_code == 400
    assert response.json()["error"] == "batch_too_large"
    assert RawEvent.objects.count() == 0


def test_schema_violations_are_400_with_each_json_path_and_store_nothing(client):
    good = json.loads(events_fixture("web_chat_customer"))
    bad = {"type": "message.created", "data": {"channel": "fax", "direction": "inbound",
                                               "author": {"kind": "robot"},
                                               "conversation": {"business_address": "a"}}}
    response = post(client, json.dumps([good, bad]).encode())
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_events"
    found = {(p["event"], p["path"]) for p in body["problems"]}
    assert {(1, "data.channel"), (1, "data.author.kind"), (1, "data.conversation")} <= found
    assert all(p["event"] == 1 for p in body["problems"])  # the good event has none
    assert RawEvent.objects.count() == 0 and Message.objects.count() == 0


def test_unsupported_event_type_and_naive_time_are_400(client):
    step = {"type": "agent.dreamt", "data": {"operation": "chat"}}
    naive = json.loads(events_fixture("web_chat_customer"))
    naive["data"]["sent_at"] = "2026-11-22T09:00:00"
    response = post(client, json.dumps([step, naive]).encode())
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert problems[0]["event"] == 0 and problems[0]["path"] == "type"
    assert "'agent.dreamt' is not a supported event type" in problems[0]["message"]
    assert problems[1] == {"event": 1, "path": "data.sent_at",
                           "message": "'2026-11-22T09:00:00' is not an RFC 3339 time with an "
                                      "offset"}
    assert RawEvent.objects.count() == 0


def test_a_500_event_batch_is_one_transaction(client):
    template = json.loads(events_fixture("web_chat_customer"))
    batch = []
    for i in range(500):
        event = json.loads(json.dumps(template))
        event["data"]["provider_message_id"] = f"wc_{i:04d}"
        event["data"]["conversation"]["customer_address"] = f"visitor-{i % 50}"
        batch.append(event)
    response = post(client, json.dumps(batch).encode())
    assert response.status_code == 200 and response.json()["status"] == "processed"
    assert Message.objects.count() == 500
    assert Conversation.objects.count() == 50
    assert sorted(set(Conversation.objects.values_list("message_count", flat=True))) == [10]


def test_reprocessing_events_gives_the_same_rows_twice(client):
    post(client, events_fixture("ai_reply_then_status_batch"), msg_id="m1")
    post(client, events_fixture("web_chat_customer"), msg_id="m2")
    post(client, events_fixture("web_chat_status_read"), msg_id="m3")

    def snapshot():
        return (
            sorted(Message.objects.values_list("provider_message_id", "body", "status")),
            sorted(Conversation.objects.values_list("channel", "message_count")),
            MessageStatusEvent.objects.count(),
        )

    before = snapshot()
    call_command("reprocess_events", "--all", "--no-progress")
    once = snapshot()
    call_command("reprocess_events", "--all", "--no-progress")
    assert before == once == snapshot()
    assert set(RawEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_unsigned_form_post_is_refused(client):
    response = client.post(PATH, "MessageSid=SM1",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403
    assert RawEvent.objects.count() == 0
