"""The triage trail of flags: owner, due date, ticket, every status change and note kept
(never overwritten), the "assigned to me" filters, who may triage; and the replay showing
an answer-quality flag's evidence highlighted."""

import json
from datetime import UTC, date, datetime

import pytest
from django.test import Client

from conversations.flags import flag_update
from conversations.models import Conversation, Flag, FlagEvent, Message
from tests.support.events import SECRET, WIDGET, post

pytestmark = pytest.mark.django_db
API = "/api"


@pytest.fixture
def flag():
    at = datetime(2026, 11, 22, 10, tzinfo=UTC)
    c = Conversation.objects.create(channel="web", business_address="w", customer_address="v",
                                    started_at=at, last_activity_at=at)
    return Flag.objects.create(conversation=c, kind="ai_loop", severity="medium",
                               subject_type="conversation", subject_id=c.pk, raised_at=at)


def test_every_change_and_note_is_kept_in_order(flag, django_user_model):
    lucia = django_user_model.objects.create_user("lucia")
    flag_update(flag=flag, by="ana", status="acknowledged", note="looking")
    flag_update(flag=flag, by="ana", note="asked the KB team")
    flag_update(flag=flag, by="ana", owner=lucia, due_on=date(2026, 12, 1),
                ticket_url="https://tickets.example/T-9")
    flag_update(flag=flag, by="lucia", status="resolved", note="KB fixed")
    trail = [(e.by, e.action, e.from_value, e.to_value, e.note)
             for e in FlagEvent.objects.filter(flag=flag).order_by("at", "id")]
    assert trail == [
        ("ana", "status", "open", "acknowledged", "looking"),
        ("ana", "note", "", "", "asked the KB team"),
        ("ana", "assign", "", "lucia", ""),
        ("ana", "due", "", "2026-12-01", ""),
        ("ana", "ticket", "", "https://tickets.example/T-9", ""),
        ("lucia", "status", "acknowledged", "resolved", "KB fixed"),
    ]
    flag.refresh_from_db()
    assert (flag.status, flag.note, flag.owner.username) == ("resolved", "KB fixed", "lucia")
    flag_update(flag=flag, by="lucia", status="resolved")  # no change: nothing recorded
    assert FlagEvent.objects.filter(flag=flag).count() == 6


def test_api_triage_owner_filter_and_permissions(flag, as_role):
    manager, viewer = as_role("manager"), as_role("viewer")
    url = f"{API}/flags/{flag.pk}/triage/"
    me = manager.get(f"{API}/flags/?owner=me").json()
    assert me["results"] == []
    assert viewer.post(url, {"note": "x"}, content_type="application/json").status_code == 403
    refused = manager.post(url, {"owner": "nobody-here"}, content_type="application/json")
    assert refused.status_code == 400 and "owner" in refused.json()
    assert manager.post(url, {"due_on": "someday"},
                        content_type="application/json").status_code == 400
    username = "user-manager"
    done = manager.post(url, {"owner": username, "status": "acknowledged", "note": "mine",
                              "ticket_url": "https://tickets.example/T-1"},
                        content_type="application/json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert body["owner"] == username and body["ticket_url"] == "https://tickets.example/T-1"
    assert [e["action"] for e in body["trail"]] == ["status", "assign", "ticket"]
    assert body["trail"][0]["note"] == "mine" and body["trail"][0]["by"] == username
    assert [f["id"] for f in manager.get(f"{API}/flags/?owner=me").json()["results"]] == [
        flag.pk]
    mine = manager.get(f"{API}/conversations/?assigned=me").json()["results"]
    assert [c["conversation"]["id"] for c in mine] == [flag.conversation_id]
    assert viewer.get(f"{API}/conversations/?assigned=me").json()["results"] == []
    # The old status endpoint writes the same trail.
    manager.post(f"{API}/flags/{flag.pk}/status/", {"status": "resolved", "note": "done"},
                 content_type="application/json")
    assert manager.get(f"{API}/flags/{flag.pk}/").json()["trail"][-1]["to_value"] == "resolved"


def test_page_triage_and_assigned_to_me_inbox(flag, as_role):
    manager = as_role("manager")
    username = "user-manager"
    response = manager.post(f"/flags/{flag.pk}/status/", {
        "status": "", "owner": username, "due_on": "2026-12-02", "ticket_url": "",
        "note": "on it"})
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.status == "open" and flag.owner.username == username
    page = manager.get(f"/conversations/{flag.conversation_id}/").content.decode()
    assert "history (3)" in page and "on it" in page
    inbox = manager.get("/inbox/?assigned=me").content.decode()
    assert f"/conversations/{flag.conversation_id}/" in inbox
    bad = manager.post(f"/flags/{flag.pk}/status/", {"owner": "ghost"})
    assert bad.status_code == 400


def test_replay_highlights_the_evidence_of_an_answer_quality_flag(client, settings, as_role):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}
    conv = {"channel": "web", "external_id": "t-1", "business_address": WIDGET,
            "customer_address": "v-t1"}
    reply = "Returns are free within 30 days. We also add a $25 gift card for the trouble."
    events = [
        {"type": "ai.step", "id": "t-r", "timestamp": "2026-11-22T10:00:01Z",
         "data": {"conversation": conv, "operation": "retrieval", "retrieved_documents": [
             {"id": "kb-returns", "score": 0.8,
              "text": "Returns are free within 30 days of delivery."}]}},
        {"type": "message.created", "data": {
            "channel": "web", "direction": "outbound", "author": {"kind": "ai", "id": "ava"},
            "conversation": conv, "body": reply, "sent_at": "2026-11-22T10:00:02Z",
            "provider_message_id": "t-a1"}},
    ]
    assert post(Client(), json.dumps(events).encode(), msg_id="t1").status_code == 200
    message = Message.objects.get(provider_message_id="t-a1")
    page = as_role("viewer").get(f"/conversations/{message.conversation_id}/")
    html = page.content.decode()
    assert "<mark" in html and ">$25</mark>" in html
    assert "found in no source" in html  # the sentence, not JSON
