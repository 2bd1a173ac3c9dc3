"""E-mail through django-anymail's inbound webhooks, mounted under /hooks/email/.

Messages are built with Python's email package and posted the way each ESP posts them:
Mailgun (multipart form with body-mime, HMAC-SHA256 signature over timestamp + token),
Postmark (JSON with RawEmail, basic auth), SendGrid Inbound Parse ("Send Raw": multipart
form with the MIME in `email`, basic auth).
"""

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta
from email.utils import format_datetime

import pytest
from django.core.management import call_command

from conversations.models import (
    AIStep,
    Conversation,
    ConversationKey,
    Message,
    MessageStatusEvent,
    RawEvent,
)
from tests.support.dbtrouble import raw_events_locked
from tests.support.email import (  # noqa: F401 (email_settings: an autouse fixture)
    BASIC,
    CUSTOMER,
    SIGNING_KEY,
    SUPPORT,
    T0,
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

FIRST = mail(
    msg_id="<m1@customer.test>", subject="Order 1042 never arrived",
    text="Hi, my order 1042 never arrived.\nCan a person look into it?\n",
    html="<p>Hi, my order 1042 never arrived.</p><p>Can a person look into it?</p>",
)
SECOND = mail(
    msg_id="<r1@acme.test>", subject="Re: Order 1042 never arrived",
    sender=f"Lucía at Acme <{SUPPORT}>", to=CUSTOMER, at=T0 + timedelta(hours=1),
    in_reply_to="<m1@customer.test>", references="<m1@customer.test>",
    text="Hello María José, I am on it and will update you today.\n\n"
         "On Fri, 20 Nov 2026 at 09:00, María José <maria.jose@customer.test> wrote:\n"
         "> Hi, my order 1042 never arrived.\n> Can a person look into it?\n",
)
THIRD = mail(
    msg_id="<m2@customer.test>", subject="RE: Re: Order 1042 never arrived",
    at=T0 + timedelta(hours=2), in_reply_to="<r1@acme.test>",
    references="<m1@customer.test> <r1@acme.test>",
    text="Thank you, Lucía!\n\n"
         "On Fri, 20 Nov 2026 at 10:00, Lucía at Acme <support@acme.test> wrote:\n"
         "> Hello María José, I am on it and will update you today.\n>\n"
         "> On Fri, 20 Nov 2026 at 09:00, María José wrote:\n> > Hi, my order 1042\n",
)


# --- the three ESPs ---------------------------------------------------------------------


@pytest.mark.parametrize("post", [mailgun, postmark, sendgrid])
def test_each_esp_stores_raw_mime_and_records_the_message(client, post):
    response = post(client, FIRST)
    assert response.status_code == 200, response.content
    raw = RawEvent.objects.get()
    assert (raw.provider, raw.kind, raw.status) == ("email", "inbound", "processed")
    assert raw.dedupe_key == "message-id:<m1@customer.test>"
    assert raw.content_type == "message/rfc822" and "Order 1042" in raw.body
    assert raw.headers["esp"] in {"Mailgun", "Postmark", "SendGrid"}
    message = Message.objects.get()
    assert (message.direction, message.author_kind) == ("inbound", "customer")
    assert message.provider == "email" and message.provider_message_id == "<m1@customer.test>"
    assert message.body == "Hi, my order 1042 never arrived.\nCan a person look into it?"
    assert message.body_new == "" and message.subject == "Order 1042 never arrived"
    assert message.sent_at == T0 and message.participant.display_name == "María José"
    conversation = message.conversation
    assert (conversation.channel, conversation.business_address,
            conversation.customer_address) == ("email", SUPPORT, CUSTOMER)
    assert conversation.subject == "Order 1042 never arrived"


def test_three_message_thread_joins_by_headers_and_strips_quotes(client):
    for raw, post in ((FIRST, mailgun), (SECOND, postmark), (THIRD, sendgrid)):
        assert post(client, raw).status_code == 200
    conversation = Conversation.objects.get()
    assert conversation.message_count == 3
    first, second, third = conversation.messages.order_by("sent_at")
    assert (second.direction, second.author_kind) == ("outbound", "human")
    assert second.participant.external_id == SUPPORT
    assert second.body_new == "Hello María José, I am on it and will update you today."
    assert "wrote:" in second.body
    assert third.body_new == "Thank you, Lucía!"
    assert third.body.startswith("Thank you, Lucía!") and "> Hello" in third.body
    assert conversation.last_customer_message_at == T0 + timedelta(hours=2)
    assert set(ConversationKey.objects.values_list("key", flat=True)) == {
        "email:<m1@customer.test>", "email:<r1@acme.test>", "email:<m2@customer.test>"}


def test_a_reply_arriving_before_its_original_still_joins_one_thread(client):
    assert mailgun(client, SECOND).status_code == 200
    assert mailgun(client, FIRST).status_code == 200
    assert Conversation.objects.get().message_count == 2


def test_without_reply_headers_the_subject_threads_within_the_window(client):
    mailgun(client, FIRST)
    later = mail(msg_id="<m9@customer.test>", subject="Re:  order 1042 NEVER arrived",
                 text="Any news?", at=T0 + timedelta(hours=30))
    other = mail(msg_id="<m10@customer.test>", subject="Invoice copy", text="Please send it",
                 at=T0 + timedelta(hours=31))
    mailgun(client, later)
    mailgun(client, other)
    assert sorted(Conversation.objects.values_list("subject", "message_count")) == [
        ("Invoice copy", 1), ("Order 1042 never arrived", 2)]


def test_subject_fallback_ends_with_the_window(client):
    mailgun(client, FIRST)
    late = mail(msg_id="<m11@customer.test>", subject="Re: Order 1042 never arrived",
                text="Hello again", at=T0 + timedelta(hours=73))
    mailgun(client, late)
    assert Conversation.objects.count() == 2


# --- bodies -----------------------------------------------------------------------------


def test_html_only_mail_becomes_readable_text(client):
    raw = mail(msg_id="<h1@customer.test>", subject="Photo",
               html="<html><body><h1>Broken</h1><p>The lid is <b>cracked</b>.<br>"
                    "See&nbsp;below &amp; reply.</p><script>x()</script></body></html>")
    assert postmark(client, raw).status_code == 200
    message = Message.objects.get()
    assert "<" not in message.body and "cracked" in message.body
    assert "See below & reply." in message.body and "x()" not in message.body
    assert message.metadata["html_only"] is True


def test_iso_8859_1_body_and_encoded_subject_decode(client):
    raw = mail(msg_id="<l1@customer.test>", subject="Größe falsch – café", charset="iso-8859-1",
               text="Grüße aus Köln, die Jacke ist zu groß. Merci, café crème.\n")
    assert "iso-8859-1" in raw.lower()
    assert sendgrid(client, raw).status_code == 200
    message = Message.objects.get()
    assert message.body == "Grüße aus Köln, die Jacke ist zu groß. Merci, café crème."
    assert message.subject == "Größe falsch – café"


def test_attachments_keep_metadata_only(client):
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 4
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    raw = mail(msg_id="<a1@customer.test>", subject="Receipt", text="Receipt attached.",
               attachments=(("receipt.pdf", "application/pdf", pdf),
                            ("damage.png", "image/png", png)))
    assert mailgun(client, raw).status_code == 200
    message = Message.objects.get()
    assert message.media == [
        {"filename": "receipt.pdf", "content_type": "application/pdf", "size": len(pdf)},
        {"filename": "damage.png", "content_type": "image/png", "size": len(png)},
    ]
    assert message.body == "Receipt attached."


def test_business_address_is_ours_among_recipients_lower_cased(client):
    raw = mail(msg_id="<b1@customer.test>", subject="Refund", text="Refund please",
               to="Friend <friend@else.test>, Billing <BILLING@Acme.test>")
    mailgun(client, raw, recipient="billing@acme.test")
    assert Conversation.objects.get().business_address == "billing@acme.test"


# --- refusals, retries, reprocessing ----------------------------------------------------


def test_forged_or_unauthenticated_requests_are_refused_and_store_nothing(client, settings):
    assert mailgun(client, FIRST, key="key-someone-else").status_code == 403
    assert postmark(client, FIRST, credentials="anymail:wrong").status_code == 403
    assert postmark(client, FIRST, credentials=None).status_code == 403
    assert sendgrid(client, FIRST, credentials=None).status_code == 403
    response = client.post("/hooks/email/mailgun/inbound/", {"body-mime": FIRST},
                           headers=basic_auth(BASIC))
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    settings.ANYMAIL = {}
    refused = sendgrid(client, FIRST)
    assert refused.status_code == 403 and refused.json()["error"] == "not_configured"
    assert mailgun(client, FIRST).status_code == 403
    assert RawEvent.objects.count() == 0 and Message.objects.count() == 0


@pytest.mark.parametrize("body,content_type", [
    (b"not json", "application/json"),
    (b'{"RawEmail": 5}', "application/json"),
    (b"[]", "application/json"),
    (b"\xff\xfe", "application/json"),
])
def test_malformed_authenticated_bodies_get_a_json_4xx(client, body, content_type):
    response = client.post("/hooks/email/postmark/inbound/", body, content_type=content_type,
                           headers=basic_auth(BASIC))
    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"error", "detail"}
    assert Message.objects.count() == 0


def test_sendgrid_without_email_fields_is_a_4xx(client):
    response = client.post("/hooks/email/sendgrid/inbound/", {"to": SUPPORT},
                           headers=basic_auth(BASIC))
    assert response.status_code == 400 and response.json()["error"] == "bad_request"


def test_a_retry_with_the_same_message_id_stores_nothing_new(client):
    assert mailgun(client, FIRST).status_code == 200
    assert mailgun(client, FIRST).status_code == 200
    assert postmark(client, FIRST).status_code == 200  # the same mail through another ESP
    assert RawEvent.objects.count() == 1 and Message.objects.count() == 1
    assert Conversation.objects.get().message_count == 1


def test_a_message_without_message_id_dedupes_on_its_content(client):
    raw = mail(msg_id=None, subject="No id", text="Hello")
    mailgun(client, raw)
    mailgun(client, raw)
    raw_event = RawEvent.objects.get()
    assert raw_event.dedupe_key.startswith("mime-sha256:")
    assert Message.objects.get().provider_message_id is None


def test_verified_mail_that_cannot_be_normalized_is_kept_failed(client):
    raw = "Subject: no sender\nMessage-ID: <x1@nowhere.test>\n\nbody\n"
    assert mailgun(client, raw).status_code == 200
    raw_event = RawEvent.objects.get()
    assert raw_event.status == "failed" and "From" in raw_event.error


def test_reprocess_events_rebuilds_email_rows_identically(client):
    for raw in (FIRST, SECOND, THIRD):
        mailgun(client, raw)
    attachment = mail(msg_id="<a2@customer.test>", subject="Invoice copy", text="See file",
                      at=T0 + timedelta(hours=3),
                      attachments=(("a.pdf", "application/pdf", b"%PDF-1"),))
    postmark(client, attachment)

    def snapshot():
        return (
            sorted(Message.objects.values_list(
                "provider_message_id", "direction", "author_kind", "body", "body_new",
                "subject", "media", "sent_at", "conversation__subject")),
            sorted(Conversation.objects.values_list(
                "channel", "business_address", "customer_address", "subject",
                "message_count", "started_at", "last_activity_at")),
            sorted(ConversationKey.objects.values_list("key", flat=True)),
        )

    before = snapshot()
    call_command("reprocess_events", "--all", "--no-progress")
    assert snapshot() == before
    Conversation.objects.all().delete()
    call_command("reprocess_events", "--all", "--no-progress")
    assert snapshot() == before
    assert set(RawEvent.objects.values_list("status", flat=True)) == {"processed"}


# --- the ESPs' parsed formats (no raw MIME posted): anymail rebuilds the message -------


def test_postmark_parsed_json_without_raw_email(client):
    payload = {
        "FromFull": {"Email": CUSTOMER, "Name": "María José"},
        "ToFull": [{"Email": SUPPORT, "Name": "Acme Support"}],
        "CcFull": [], "BccFull": [],
        "Subject": "Re: Order 1042 never arrived",
        "Date": format_datetime(T0 + timedelta(hours=2)),
        "MessageID": "0f2ba2a6-postmark-uuid",
        "OriginalRecipient": SUPPORT,
        "TextBody": "Thank you!\n\nOn Fri, 20 Nov 2026 at 10:00, Acme wrote:\n> On it.\n",
        "HtmlBody": "<p>Thank you!</p>",
        "Headers": [
            {"Name": "Return-Path", "Value": f"<{CUSTOMER}>"},
            {"Name": "Message-ID", "Value": "<m2@customer.test>"},
            {"Name": "In-Reply-To", "Value": "<r1@acme.test>"},
            {"Name": "References", "Value": "<m1@customer.test> <r1@acme.test>"},
        ],
        "Attachments": [{"Name": "scan.pdf", "ContentType": "application/pdf",
                         "Content": base64.b64encode(b"%PDF-1.4 scan").decode(),
                         "ContentLength": 13}],
    }
    assert mailgun(client, SECOND).status_code == 200
    response = client.post("/hooks/email/postmark/inbound/", json.dumps(payload),
                           content_type="application/json", headers=basic_auth(BASIC))
    assert response.status_code == 200, response.content
    message = Message.objects.get(provider_message_id="<m2@customer.test>")
    assert message.body_new == "Thank you!" and message.sent_at == T0 + timedelta(hours=2)
    assert message.media == [
        {"filename": "scan.pdf", "content_type": "application/pdf", "size": 13}]
    assert Conversation.objects.get().message_count == 2
    call_command("reprocess_events", "--all", "--no-progress")
    assert set(RawEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_sendgrid_default_parsed_fields(client):
    headers = (f"From: María José <{CUSTOMER}>\nTo: {SUPPORT}\n"
               "Subject: Where is my parcel?\nMessage-ID: <sg1@customer.test>\n"
               f"Date: {format_datetime(T0)}\n")
    response = client.post("/hooks/email/sendgrid/inbound/", {
        "headers": headers, "from": f"María José <{CUSTOMER}>", "to": SUPPORT,
        "subject": "Where is my parcel?", "text": "Tracking says delivered, it is not.",
        "envelope": json.dumps({"to": [SUPPORT], "from": CUSTOMER}),
        "charsets": json.dumps({"headers": "UTF-8", "text": "UTF-8", "subject": "UTF-8"}),
    }, headers=basic_auth(BASIC))
    assert response.status_code == 200, response.content
    message = Message.objects.get()
    assert message.body == "Tracking says delivered, it is not."
    assert message.provider_message_id == "<sg1@customer.test>"


@pytest.mark.django_db(transaction=True)
def test_concurrent_mail_of_a_new_thread_opens_one_conversation(monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, transaction

    from conversations import ingest
    from conversations.events import MessageEvent

    decide = ingest.decide

    def slow_decide(*args, **kwargs):  # widen the window between "no thread yet" and its INSERT
        plan = decide(*args, **kwargs)
        time.sleep(0.05)
        return plan

    monkeypatch.setattr(ingest, "decide", slow_decide)
    barrier = threading.Barrier(8)

    def send(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            with transaction.atomic():
                ingest.message_record(event=MessageEvent(
                    channel="email", direction="inbound", author_kind="customer",
                    provider="email", provider_message_id=f"<c{n}@customer.test>",
                    business_address=SUPPORT, customer_address=CUSTOMER,
                    occurred_at=T0 + timedelta(minutes=n), body=f"message {n}",
                    subject="Re: Parcel", thread_subject="Parcel",
                ))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(8)))
    conversation = Conversation.objects.get()
    assert conversation.message_count == 8 and Message.objects.count() == 8


# --- delivery tracking (anymail's tracking webhooks) ------------------------------------

POSTMARK_ID = "883953f4-6105-42a2-a16a-77a8eac79483"


def mailgun_signature(key: str = SIGNING_KEY, *, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(at if at is not None else time.time()))
    token = hashlib.sha256(f"{timestamp}{time.perf_counter_ns()}".encode()).hexdigest()[:50]
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()}


def mailgun_tracking(client, event: str, message_id: str, *, at: datetime, key=SIGNING_KEY,
                     signed_at: float | None = None, signature=None, **event_data):
    """Mailgun's current webhook format: JSON with a signature block (HMAC-SHA256 of
    timestamp + token) and event-data; the Message-ID header without brackets."""
    payload = {
        "signature": signature or mailgun_signature(key, at=signed_at),
        "event-data": {
            "event": event, "id": f"evt-{time.perf_counter_ns()}", "timestamp": at.timestamp(),
            "recipient": CUSTOMER,
            "message": {"headers": {"message-id": message_id.strip("<>"), "to": CUSTOMER,
                                    "from": SUPPORT, "subject": "Re: Order 1042"}},
            **event_data,
        },
    }
    return client.post("/hooks/email/mailgun/tracking/", json.dumps(payload),
                       content_type="application/json", headers=basic_auth(BASIC)), payload


def sendgrid_tracking(client, events: list[dict]):
    return client.post("/hooks/email/sendgrid/tracking/", json.dumps(events),
                       content_type="application/json", headers=basic_auth(BASIC))


def postmark_tracking(client, event: dict, *, credentials=BASIC):
    return client.post("/hooks/email/postmark/tracking/", json.dumps(event),
                       content_type="application/json",
                       headers=basic_auth(credentials) if credentials else {})


def outbound_reply(client, msg_id: str = "<r1@acme.test>"):
    """Our reply (from the support address), as its copy reaches the inbound route."""
    assert mailgun(client, FIRST).status_code == 200
    reply = SECOND.replace("<r1@acme.test>", msg_id) if msg_id != "<r1@acme.test>" else SECOND
    assert mailgun(client, reply).status_code == 200
    message = Message.objects.get(provider_message_id=msg_id)
    assert message.direction == "outbound"
    return message


def test_mailgun_delivery_reports_join_our_reply_by_message_id(client):
    reply = outbound_reply(client)
    delivered, _ = mailgun_tracking(client, "delivered", "<r1@acme.test>",
                                    at=T0 + timedelta(hours=1, minutes=1),
                                    **{"delivery-status": {"code": 250, "message": "OK"}})
    assert delivered.status_code == 200, delivered.content
    opened, _ = mailgun_tracking(client, "opened", "<r1@acme.test>",
                                 at=T0 + timedelta(hours=1, minutes=9))
    assert opened.status_code == 200
    reply.refresh_from_db()
    assert (reply.status, reply.status_at) == ("read", T0 + timedelta(hours=1, minutes=9))
    history = list(MessageStatusEvent.objects.order_by("occurred_at").values_list(
        "status", "provider_status", "message_id"))
    assert history == [("delivered", "mailgun:delivered", reply.pk),
                       ("read", "mailgun:opened", reply.pk)]
    raw = RawEvent.objects.filter(kind="tracking").order_by("pk").first()
    assert raw.provider == "email" and raw.headers == {"esp": "Mailgun"}
    assert raw.dedupe_key.startswith("mailgun:evt-")  # the event's id and time


def test_a_retried_tracking_event_stores_nothing_new(client):
    """Mailgun signs each attempt afresh (new token, new timestamp): the retry is known by
    the event's own id and time."""
    outbound_reply(client)
    first, payload = mailgun_tracking(client, "delivered", "<r1@acme.test>",
                                      at=T0 + timedelta(hours=1), id="evt-retried-1")
    again, payload_again = mailgun_tracking(client, "delivered", "<r1@acme.test>",
                                            at=T0 + timedelta(hours=1), id="evt-retried-1")
    assert payload_again["signature"]["token"] != payload["signature"]["token"]
    assert (first.status_code, again.status_code) == (200, 200)
    assert RawEvent.objects.filter(kind="tracking").count() == 1
    assert MessageStatusEvent.objects.count() == 1
    raw = RawEvent.objects.get(kind="tracking")
    assert raw.dedupe_key == f"mailgun:evt-retried-1@{(T0 + timedelta(hours=1)).timestamp()}"
    # Another event about the same message is not a retry.
    opened, _ = mailgun_tracking(client, "opened", "<r1@acme.test>",
                                 at=T0 + timedelta(hours=2), id="evt-retried-2")
    assert opened.status_code == 200
    assert RawEvent.objects.filter(kind="tracking").count() == 2


def test_sendgrid_reports_join_by_smtp_id_and_a_bounce_is_undelivered(client):
    reply = outbound_reply(client)
    response = sendgrid_tracking(client, [
        {"email": CUSTOMER, "timestamp": int((T0 + timedelta(hours=1)).timestamp()),
         "smtp-id": "<r1@acme.test>", "event": "processed", "sg_event_id": "sg-ev-1",
         "sg_message_id": "sg-msg-1.filter0001"},
        {"email": CUSTOMER, "timestamp": int((T0 + timedelta(hours=1, minutes=1)).timestamp()),
         "smtp-id": "<r1@acme.test>", "event": "bounce", "sg_event_id": "sg-ev-2",
         "sg_message_id": "sg-msg-1.filter0001", "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 The email account that you tried to reach does not exist"},
    ])
    assert response.status_code == 200, response.content
    reply.refresh_from_db()
    assert reply.status == "undelivered"
    bounce = MessageStatusEvent.objects.get(status="undelivered")
    assert bounce.message_id == reply.pk and "does not exist" in bounce.error_message
    assert sorted(RawEvent.objects.filter(kind="tracking").values_list(
        "dedupe_key", flat=True)) == ["sendgrid:sg-ev-1", "sendgrid:sg-ev-2"]


def test_postmark_reports_join_the_message_id_postmark_gave_our_reply(client):
    reply = outbound_reply(client, msg_id=f"<{POSTMARK_ID}@mtasv.net>")
    delivery = {"RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
                "MessageID": POSTMARK_ID, "Recipient": CUSTOMER, "Tag": "",
                "DeliveredAt": "2026-11-20T10:00:05Z", "Details": "smtp;250 2.0.0 OK",
                "Metadata": {}}
    assert postmark_tracking(client, delivery, credentials=None).status_code == 403
    assert postmark_tracking(client, delivery).status_code == 200
    reply.refresh_from_db()
    assert reply.status == "delivered"
    assert MessageStatusEvent.objects.get().message_id == reply.pk


def test_reports_that_come_before_the_reply_wait_and_join_it(client,
                                                             django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response, _ = mailgun_tracking(client, "delivered", "<r1@acme.test>",
                                       at=T0 + timedelta(hours=1, minutes=1))
    assert response.status_code == 200
    assert MessageStatusEvent.objects.get().message_id is None
    with django_capture_on_commit_callbacks(execute=True):
        reply = outbound_reply(client)
    reply.refresh_from_db()
    assert reply.status == "delivered"
    assert MessageStatusEvent.objects.get().message_id == reply.pk
    call_command("reprocess_events", "--all", "--no-progress")
    assert MessageStatusEvent.objects.count() == 1
    assert set(RawEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_forged_or_stale_mailgun_requests_are_refused_and_store_nothing(client):
    forged, _ = mailgun_tracking(client, "delivered", "<r1@acme.test>", at=T0,
                                 key="key-someone-else")
    stale, _ = mailgun_tracking(client, "delivered", "<r1@acme.test>", at=T0,
                                signed_at=time.time() - 301)
    future, _ = mailgun_tracking(client, "delivered", "<r1@acme.test>", at=T0,
                                 signed_at=time.time() + 400)
    assert (forged.status_code, stale.status_code, future.status_code) == (403, 403, 403)
    assert "replay" in stale.json()["detail"]
    # The inbound route too: a correctly signed but old request is a replay.
    timestamp = str(int(time.time()) - 600)
    token = "t" * 50
    signature = hmac.new(SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    replayed = client.post("/hooks/email/mailgun/inbound/", {
        "body-mime": FIRST, "recipient": SUPPORT, "sender": CUSTOMER, "timestamp": timestamp,
        "token": token, "signature": signature.hexdigest()}, headers=basic_auth(BASIC))
    assert replayed.status_code == 403 and replayed.json()["error"] == "forbidden"
    assert RawEvent.objects.count() == 0 and MessageStatusEvent.objects.count() == 0


def test_a_tracking_event_without_a_message_id_is_kept_failed(client):
    response = sendgrid_tracking(client, [
        {"email": CUSTOMER, "timestamp": int(T0.timestamp()), "event": "delivered",
         "sg_event_id": "sg-ev-9"}])
    assert response.status_code == 200
    raw = RawEvent.objects.get()
    assert raw.status == "failed" and "names no message" in raw.error


# --- AI steps that produced an e-mail reply ---------------------------------------------


def ai_step(client, step_id: str, message_id: str, msg_id: str):
    from tests.support.events import SECRET as EVENTS_SECRET
    from tests.support.events import post as events_post

    event = {"type": "ai.step", "id": step_id, "timestamp": "2026-11-20T09:59:00Z",
             "data": {"conversation": {"channel": "email", "business_address": SUPPORT,
                                       "customer_address": CUSTOMER},
                      "operation": "chat", "request_model": "gpt-4.1",
                      "message": {"provider": "email", "provider_message_id": message_id}}}
    return events_post(client, json.dumps(event).encode(), msg_id=msg_id,
                       secret=EVENTS_SECRET)


@pytest.fixture
def events_secret(settings):
    from tests.support.events import SECRET as EVENTS_SECRET

    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [EVENTS_SECRET]}


def test_an_ai_step_reported_before_its_email_reply_links_to_it(client, events_secret):
    assert mailgun(client, FIRST).status_code == 200
    # The platform names the reply by its Message-ID, here without the brackets.
    assert ai_step(client, "step-e1", "r1@acme.test", "w1").json()["status"] == "processed"
    assert mailgun(client, SECOND).status_code == 200
    step = AIStep.objects.get()
    reply = Message.objects.get(provider_message_id="<r1@acme.test>")
    assert step.message_id == reply.pk
    assert step.conversation_id == reply.conversation_id
    assert Conversation.objects.count() == 1


def test_an_ai_step_reported_after_its_email_reply_links_to_it(client, events_secret):
    mailgun(client, FIRST)
    mailgun(client, SECOND)
    assert ai_step(client, "step-e2", "<r1@acme.test>", "w2").status_code == 200
    step = AIStep.objects.get()
    assert step.message.provider_message_id == "<r1@acme.test>"
    assert step.conversation_id == step.message.conversation_id
    assert Conversation.objects.count() == 1


# --- database trouble -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_database_trouble_answers_503_stores_nothing_and_the_retry_lands(client):
    with raw_events_locked():
        for post in (mailgun, postmark, sendgrid):
            response = post(client, FIRST)
            assert response.status_code == 503, response.content
            assert response.json()["error"] == "unavailable" and response["Retry-After"]
    assert RawEvent.objects.count() == 0
    assert mailgun(client, FIRST).status_code == 200
    assert RawEvent.objects.get().status == "processed" and Message.objects.count() == 1
