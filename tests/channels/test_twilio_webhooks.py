"""Twilio SMS and WhatsApp webhooks, driven by real payload fixtures signed like Twilio."""

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest
from django.core.management import call_command

from conversations.applier import raw_events_apply
from conversations.models import (
    Conversation,
    Message,
    MessageStatusEvent,
    Participant,
    RawEvent,
)
from conversations.services import message_record
from tests.support.dbtrouble import conversations_locked, raw_events_locked
from tests.support.signing import twilio_fixture
from tests.support.twilio import MESSAGES_PATH, OLD_TOKEN, STATUS_PATH, TOKEN

pytestmark = pytest.mark.django_db


def stored_counts() -> tuple[int, int, int, int]:
    return (
        RawEvent.objects.count(),
        Conversation.objects.count(),
        Message.objects.count(),
        MessageStatusEvent.objects.count(),
    )


def outbound(sid: str, *, channel="whatsapp", customer="+5215512345678",
             business="+14155238886", body="Gracias, ya lo revisamos 🙏"):
    from django.utils import timezone

    from conversations.events import MessageEvent

    return message_record(
        event=MessageEvent(
            channel=channel, direction="outbound", author_kind="ai", provider="twilio",
            provider_message_id=sid, business_address=business, customer_address=customer,
            occurred_at=timezone.now(), body=body, author_id="support-bot",
        )
    )


# --- signatures --------------------------------------------------------------------------


def test_signature_computed_by_hand_as_twilio_documents_is_accepted(client):
    params = twilio_fixture("inbound_sms")
    url = f"http://testserver{MESSAGES_PATH}"
    payload = url + "".join(k + params[k] for k in sorted(params))
    signature = base64.b64encode(
        hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()
    response = client.post(
        MESSAGES_PATH, urlencode(params), content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert response.content.decode().endswith("<Response/>")
    assert Message.objects.get().body.startswith("Hi, I still haven't received")


def test_wrong_signature_is_refused_and_nothing_is_stored(twilio):
    response = twilio.message(twilio_fixture("inbound_sms"), token="not-the-token")
    assert response.status_code == 403
    assert response.json()["error"] == "invalid_signature"
    assert stored_counts() == (0, 0, 0, 0)


def test_missing_signature_is_refused(client):
    response = client.post(
        MESSAGES_PATH, urlencode(twilio_fixture("inbound_sms")),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 403
    assert response.json()["error"] == "missing_signature"
    assert stored_counts() == (0, 0, 0, 0)


def test_tampered_body_is_refused(twilio, client):
    params = twilio_fixture("inbound_sms")
    from tests.support.signing import twilio_signature

    signature = twilio_signature(f"http://testserver{MESSAGES_PATH}", params, TOKEN)
    params["Body"] = "I love you, please refund me twice"
    response = client.post(
        MESSAGES_PATH, urlencode(params), content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403
    assert stored_counts() == (0, 0, 0, 0)


def test_no_token_configured_refuses_with_reason(twilio, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "TWILIO_AUTH_TOKENS": []}
    response = twilio.message(twilio_fixture("inbound_sms"))
    assert response.status_code == 403
    assert response.json()["error"] == "not_configured"
    assert stored_counts() == (0, 0, 0, 0)


def test_token_rotation_accepts_old_and_new_tokens(twilio, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "TWILIO_AUTH_TOKENS": [TOKEN, OLD_TOKEN]}
    first = twilio_fixture("inbound_sms")
    second = {**first, "MessageSid": "SM00000000000000000000000000000002"}
    assert twilio.message(first, token=OLD_TOKEN).status_code == 200
    assert twilio.message(second, token=TOKEN).status_code == 200
    assert Message.objects.count() == 2
    # Once the old token is removed, requests signed with it are refused.
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "TWILIO_AUTH_TOKENS": [TOKEN]}
    third = {**first, "MessageSid": "SM00000000000000000000000000000003"}
    assert twilio.message(third, token=OLD_TOKEN).status_code == 403


def test_public_base_url_is_what_the_signature_covers(twilio, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "PUBLIC_BASE_URL": "https://auditor.example.com/"}
    params = twilio_fixture("inbound_sms")
    public = f"https://auditor.example.com{MESSAGES_PATH}"
    # Signed for the public URL Twilio called: accepted although Django sees http://testserver.
    assert twilio.message(params, signed_url=public).status_code == 200
    assert RawEvent.objects.get().url == public
    # Signed for the internal URL: refused, the proxy's view is the one that counts.
    other = {**params, "MessageSid": "SM00000000000000000000000000000009"}
    assert twilio.message(other).status_code == 403


def test_sha256_signature_settings_header_is_honoured(client):
    from twilio.request_validator import HMAC_SHA256, RequestValidator

    params = twilio_fixture("inbound_sms")
    url = f"http://testserver{MESSAGES_PATH}"
    signature = RequestValidator(TOKEN).compute_signature(url, params, HMAC_SHA256)
    response = client.post(
        MESSAGES_PATH, urlencode(params), content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature,
                 "X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256"},
    )
    assert response.status_code == 200


def test_head_answers_200(client):
    assert client.head(MESSAGES_PATH).status_code == 200
    assert client.head(STATUS_PATH).status_code == 200


def test_get_is_not_allowed(client):
    assert client.get(MESSAGES_PATH).status_code == 405


# --- inbound messages --------------------------------------------------------------------


def test_whatsapp_inbound_with_media_profile_and_emoji(twilio):
    params = twilio_fixture("inbound_whatsapp_media")
    assert twilio.message(params).status_code == 200

    conversation = Conversation.objects.get()
    assert conversation.channel == "whatsapp"
    assert conversation.customer_address == "+5215512345678"
    assert conversation.business_address == "+14155238886"
    assert conversation.message_count == 1
    assert conversation.last_customer_message_at is not None

    message = Message.objects.get()
    assert message.body == "Hola 👋 mi pedido llegó roto, ¿me pueden ayudar? Adjunto fotos 📷"
    assert message.direction == "inbound" and message.author_kind == "customer"
    assert message.provider_message_id == params["MessageSid"]
    assert message.status == "received"
    assert message.media == [
        {"url": params["MediaUrl0"], "content_type": "image/jpeg"},
        {"url": params["MediaUrl1"], "content_type": "image/png"},
    ]
    # Parameters we do not model are kept, not dropped.
    assert message.metadata["MessageType"] == "image"
    assert message.metadata["AccountSid"] == params["AccountSid"]

    customer = Participant.objects.get(kind="customer")
    assert customer.display_name == "María José 🌻"
    assert customer.metadata == {"wa_id": "5215512345678"}

    raw = RawEvent.objects.get()
    assert raw.status == "processed" and raw.kind == "message"
    assert raw.headers["X-Twilio-Signature"]


def test_sms_inbound_is_sms_channel(twilio):
    assert twilio.message(twilio_fixture("inbound_sms")).status_code == 200
    conversation = Conversation.objects.get()
    assert conversation.channel == "sms"
    assert conversation.customer_address == "+12125550147"
    assert Message.objects.get().num_segments == 1


def test_same_number_on_sms_and_whatsapp_are_two_conversations(twilio):
    sms = {**twilio_fixture("inbound_sms"), "From": "+5215512345678", "To": "+14155238886"}
    wa = twilio_fixture("inbound_whatsapp_media")
    twilio.message(sms)
    twilio.message(wa)
    assert sorted(Conversation.objects.values_list("channel", flat=True)) == ["sms", "whatsapp"]


def test_follow_up_messages_join_the_open_conversation(twilio):
    first = twilio_fixture("inbound_sms")
    second = {**first, "MessageSid": "SM00000000000000000000000000000002", "Body": "Hello??"}
    twilio.message(first)
    twilio.message(second)
    conversation = Conversation.objects.get()
    assert conversation.message_count == 2
    assert list(conversation.messages.order_by("id").values_list("body", flat=True))[1] == "Hello??"


def test_retried_delivery_is_answered_alike_and_stores_nothing_new(twilio):
    params = twilio_fixture("inbound_whatsapp_media")
    first = twilio.message(params)
    before = stored_counts()
    retry = twilio.message(params)
    assert retry.status_code == first.status_code == 200
    assert retry.content == first.content
    assert stored_counts() == before == (1, 1, 1, 0)
    assert Conversation.objects.get().message_count == 1


def test_non_ascii_scripts_survive(twilio):
    body = "مرحبا، أريد التحدث مع موظف 🙏 — 你好，我要找人工客服 — Привет"
    params = {**twilio_fixture("inbound_sms"), "Body": body}
    assert twilio.message(params).status_code == 200
    assert Message.objects.get().body == body


def test_unknown_channel_prefix_is_kept_as_failed_raw_event(twilio):
    params = {**twilio_fixture("inbound_sms"), "From": "messenger:12345", "To": "messenger:678"}
    response = twilio.message(params)
    assert response.status_code == 200  # verified: Twilio must not keep retrying
    raw = RawEvent.objects.get()
    assert raw.status == "failed"
    assert "unsupported Twilio channel prefix" in raw.error
    assert Message.objects.count() == 0


# --- malformed requests ------------------------------------------------------------------


def test_missing_message_sid_is_400_json_and_nothing_stored(twilio):
    params = twilio_fixture("inbound_sms")
    for key in ("MessageSid", "SmsMessageSid", "SmsSid"):
        params.pop(key)
    response = twilio.message(params)
    assert response.status_code == 400
    assert "MessageSid" in response.json()["detail"]
    assert stored_counts() == (0, 0, 0, 0)


def test_status_without_message_status_is_400(twilio):
    params = twilio_fixture("status_sms_delivered")
    params.pop("MessageStatus")
    response = twilio.status(params)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert stored_counts() == (0, 0, 0, 0)


def test_json_body_is_415_json(client):
    response = client.post(MESSAGES_PATH, {"Body": "hi"}, content_type="application/json",
                           headers={"X-Twilio-Signature": "abc"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert stored_counts() == (0, 0, 0, 0)


def test_too_many_fields_is_400_json(twilio, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
    params = {**twilio_fixture("inbound_sms"), **{f"X{i}": "y" for i in range(60)}}
    response = twilio.message(params)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert stored_counts() == (0, 0, 0, 0)


def test_nul_byte_in_body_is_400(client):
    response = client.post(MESSAGES_PATH, b"MessageSid=SM1&Body=a\x00b",
                           content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": "abc"})
    assert response.status_code == 400
    assert stored_counts() == (0, 0, 0, 0)


def test_percent_encoded_nul_is_stored_not_a_500(twilio):
    params = {**twilio_fixture("inbound_sms"), "Body": "a\x00b"}
    assert twilio.message(params).status_code == 200
    assert Message.objects.get().body == "a\ufffdb"


# --- status callbacks --------------------------------------------------------------------


def test_status_callbacks_build_history_and_current_status(twilio):
    message = outbound("SMb7a6c5d4e3f2401928374655647382910", channel="sms",
                       customer="+12125550147", business="+14155550100")
    base = twilio_fixture("status_sms_delivered")
    for status in ("queued", "sent", "delivered"):
        response = twilio.status({**base, "MessageStatus": status, "SmsStatus": status})
        assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    assert list(message.status_events.order_by("id").values_list("status", flat=True)) == [
        "queued", "sent", "delivered"
    ]
    assert message.status_events.get(status="delivered").metadata["RawDlrDoneDate"] == "2611221034"


def test_out_of_order_status_never_moves_backwards(twilio):
    message = outbound("SM9e8d7c6b5a4f43e2d1c0b9a8f7e6d5c4")
    base = twilio_fixture("status_whatsapp_read")
    for status in ("read", "delivered", "sent", "queued"):
        twilio.status({**base, "MessageStatus": status, "SmsStatus": status})
    message.refresh_from_db()
    assert message.status == "read"
    # Every report is kept in the history, applied or not.
    assert message.status_events.count() == 4


def test_failed_status_keeps_error_code(twilio):
    message = outbound("SM1f2e3d4c5b6a47988776655443322110")
    twilio.status(twilio_fixture("status_whatsapp_failed_63016"))
    message.refresh_from_db()
    assert message.status == "failed"
    assert message.error_code == "63016"
    assert "outside the allowed window" in message.status_events.get().error_message


def test_retried_status_callback_stores_nothing_new(twilio):
    outbound("SM9e8d7c6b5a4f43e2d1c0b9a8f7e6d5c4")
    params = twilio_fixture("status_whatsapp_read")
    first = twilio.status(params)
    before = stored_counts()
    second = twilio.status(params)
    assert first.status_code == second.status_code == 200
    assert stored_counts() == before


def test_early_status_callback_waits_and_joins_the_message(
    twilio, django_capture_on_commit_callbacks
):
    base = twilio_fixture("status_whatsapp_read")
    with django_capture_on_commit_callbacks(execute=True):
        twilio.status({**base, "MessageStatus": "sent", "SmsStatus": "sent"})
        twilio.status(base)  # read
    waiting = MessageStatusEvent.objects.filter(message__isnull=True)
    assert waiting.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        message = outbound("SM9e8d7c6b5a4f43e2d1c0b9a8f7e6d5c4")
    message.refresh_from_db()
    assert message.status == "read"
    assert message.status_events.count() == 2
    assert MessageStatusEvent.objects.filter(message__isnull=True).count() == 0
    assert set(message.status_events.values_list("conversation_id", flat=True)) == {
        message.conversation_id
    }


def test_reconcile_task_joins_reports_left_waiting():
    from django.utils import timezone

    from conversations.tasks import reconcile_delivery_statuses

    MessageStatusEvent.objects.create(
        provider="twilio", provider_message_id="SMlate", status="delivered",
        provider_status="delivered", occurred_at=timezone.now(),
    )
    message = outbound("SMlate")
    # Simulate a crash between commit and the after-commit join: detach again.
    MessageStatusEvent.objects.update(message=None)
    Message.objects.filter(pk=message.pk).update(status="unknown", status_rank=0)
    assert reconcile_delivery_statuses() == 1
    message.refresh_from_db()
    assert message.status == "delivered"


# --- reprocessing ------------------------------------------------------------------------


def test_failed_normalization_is_reprocessed_after_a_fix(twilio, monkeypatch):
    from channels.twilio import CHANNEL_PREFIXES

    params = {**twilio_fixture("inbound_sms"), "From": "rcs:+12125550147", "To": "rcs:+1415"}
    twilio.message(params)
    raw = RawEvent.objects.get()
    assert raw.status == "failed" and raw.attempts == 1

    # The parser learns the new channel prefix (as a deploy would); history is replayed.
    monkeypatch.setitem(CHANNEL_PREFIXES, "rcs", "sms")
    call_command("reprocess_events", "--no-progress")
    raw.refresh_from_db()
    assert raw.status == "processed" and raw.error == "" and raw.attempts == 2
    assert Message.objects.get().conversation.customer_address == "+12125550147"

    # Reprocessing everything again is idempotent.
    before = stored_counts()
    call_command("reprocess_events", "--all", "--no-progress")
    assert stored_counts() == before
    assert Conversation.objects.get().message_count == 1


# --- configuration mistakes and database trouble -----------------------------------------


def test_tokens_given_as_one_string_are_split_not_walked_by_character(twilio, settings):
    # A host that forgets .split(",") must not end up accepting one-character "tokens".
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "TWILIO_AUTH_TOKENS": f"{TOKEN}, {OLD_TOKEN}"}
    params = twilio_fixture("inbound_sms")
    assert twilio.message(params, token=TOKEN[0]).status_code == 403
    assert twilio.message(params, token=OLD_TOKEN).status_code == 200


def test_public_base_url_with_a_mount_prefix(twilio, settings):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR,
                                "PUBLIC_BASE_URL": "https://support.example.com/auditor"}
    public = f"https://support.example.com/auditor{MESSAGES_PATH}"
    assert twilio.message(twilio_fixture("inbound_sms"), signed_url=public).status_code == 200


def test_messages_without_provider_id_are_never_merged():
    first = outbound("")
    second = outbound("", body="A second reply without an id")
    assert first.pk != second.pk
    assert Message.objects.count() == 2
    assert Conversation.objects.get().message_count == 2


@pytest.mark.django_db(transaction=True)
def test_database_trouble_answers_503_stores_nothing_and_the_retry_lands(twilio):
    """Storage trouble is not bad input: nothing is kept as 'failed', Twilio is asked to
    retry."""
    params = twilio_fixture("inbound_sms")
    with raw_events_locked():
        response = twilio.message(params)
        assert response.status_code == 503
        assert response.json()["error"] == "unavailable"
        assert response["Retry-After"]
    assert RawEvent.objects.count() == 0
    retry = twilio.message(params)
    assert retry.status_code == 200
    assert RawEvent.objects.get().status == "processed"
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_is_replaced_and_the_webhook_stored(twilio):
    """A database restart ends the web process's kept connection. The webhook skips
    Django's per-request health check (its INSERT is the check): the INSERT fails on the
    dead connection, and the retry opens a new one: stored, answered 200, no 503."""
    import psycopg
    from django.db import connection

    assert twilio.message(twilio_fixture("inbound_sms")).status_code == 200
    ours = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                         dbname=db["NAME"], autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [ours])
    params = {**twilio_fixture("inbound_sms"), "MessageSid": "SM" + "d" * 32}
    response = twilio.message(params)
    assert response.status_code == 200, response.content
    assert connection.connection.info.backend_pid != ours
    assert RawEvent.objects.filter(dedupe_key__contains="d" * 32).count() == 1


@pytest.mark.django_db(transaction=True)
def test_trouble_applying_keeps_the_event_pending_and_the_applier_lands_it_later(twilio):
    """The webhook only stores: a conversation table that cannot be written does not make
    Twilio retry, and the stored event is neither lost nor marked failed."""
    params = twilio_fixture("inbound_sms")
    with conversations_locked():
        response = twilio.message(params)
        assert response.status_code == 200
    raw = RawEvent.objects.get()
    assert raw.status == "pending" and Message.objects.count() == 0
    assert "lock timeout" in raw.error  # why it waits, for whoever looks
    counts = raw_events_apply()
    assert (counts.processed, counts.failed) == (1, 0)
    raw.refresh_from_db()
    assert raw.status == "processed" and raw.error == ""
    assert Message.objects.count() == 1
