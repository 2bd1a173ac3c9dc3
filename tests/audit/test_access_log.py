"""The access log (issue 16): every surface that shows raw events or unmasked personal data
writes an entry (who, when, what, from where); managers read it on /access-log/ and
through GET /api/access-log/; viewers and QA reviewers are refused; entries are never
changed or deleted."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.access_log import access_sentence
from audit.access_models import AccessEntry
from conversations.models import Conversation, Customer
from demo.scenarios import scenario_get
from tests.support.roles import token_for, user_in
from tests.support.scenarios import play

pytestmark = pytest.mark.django_db

Kind = AccessEntry.Kind


@pytest.fixture
def conversation(client, settings) -> Conversation:
    conversation, _ = play(client, settings, scenario_get("web-late-queue"))
    return conversation


def api(role: str) -> Client:
    return Client(headers={"Authorization": f"Token {token_for(role)}"})


def entries(**kw) -> list[AccessEntry]:
    return list(AccessEntry.objects.filter(**kw).order_by("id"))


def test_raw_events_page_writes_who_what_and_where(as_role, conversation):
    response = as_role("manager").get(f"/conversations/{conversation.pk}/raw/",
                                      REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200
    [entry] = entries(kind=Kind.RAW_EVENTS)
    assert entry.username == "user-manager" and entry.user.username == "user-manager"
    assert entry.conversation_id == conversation.pk and entry.ip == "203.0.113.7"
    assert entry.path == f"/conversations/{conversation.pk}/raw/"
    assert access_sentence(entry) == (
        f"user-manager opened the raw events of conversation #{conversation.pk}")


def test_refused_raw_events_write_nothing(as_role, conversation):
    for role in ("viewer", "qa_reviewer"):
        assert as_role(role).get(f"/conversations/{conversation.pk}/raw/").status_code == 403
    assert not AccessEntry.objects.exists()


def test_replay_unmasked_is_logged_masked_is_not(as_role, conversation):
    for role in ("manager", "qa_reviewer", "viewer"):
        assert as_role(role).get(f"/conversations/{conversation.pk}/").status_code == 200
    logged = entries(kind=Kind.PII, what="replay")
    assert [e.username for e in logged] == ["user-manager", "user-qa_reviewer"]
    assert {e.conversation_id for e in logged} == {conversation.pk}


def test_customer_page_unmasked_is_logged(as_role, conversation):
    person = Customer.objects.create(display_name="Zoe", created_at=timezone.now())
    Conversation.objects.filter(pk=conversation.pk).update(customer=person)
    assert as_role("viewer").get(f"/customers/{person.pk}/").status_code == 200
    assert not AccessEntry.objects.exists()
    assert as_role("manager").get(f"/customers/{person.pk}/").status_code == 200
    [entry] = entries(kind=Kind.PII)
    assert entry.objects_label == f"customer #{person.pk}" and entry.what == "customer page"


def test_api_conversation_and_messages_unmasked_are_logged(conversation):
    assert api("manager").get(f"/api/conversations/{conversation.pk}/").status_code == 200
    [detail] = entries(kind=Kind.PII, what="API conversation")
    assert detail.username == "api-manager" and detail.conversation_id == conversation.pk
    assert api("manager").get("/api/messages/?page_size=5").status_code == 200
    [listed] = entries(what="API messages")
    assert listed.conversation_id == conversation.pk
    assert api("viewer").get(f"/api/conversations/{conversation.pk}/").status_code == 200
    assert api("viewer").get("/api/messages/").status_code == 200
    assert not entries(username="api-viewer")


def test_csv_exports_with_pii_are_logged(as_role, conversation):
    response = as_role("manager").get("/export.csv?channel=web")
    assert response.status_code == 200
    b"".join(response.streaming_content)
    [entry] = entries(kind=Kind.EXPORT)
    assert entry.what == "the conversations CSV" and entry.objects_label == "filters: channel=web"
    assert access_sentence(entry) == (
        "user-manager exported the conversations CSV with personal data "
        "(filters: channel=web)")
    response = as_role("manager").get("/qa/reviews.csv?since=2026-01-01")
    assert response.status_code == 200
    assert entries(kind=Kind.EXPORT, what="the QA reviews CSV")[0].objects_label == (
        "from 2026-01-01")


def test_admin_record_views_are_logged(admin_client, conversation):
    assert admin_client.get(
        f"/admin/conversations/conversation/{conversation.pk}/change/").status_code == 200
    message = conversation.messages.first()
    assert admin_client.get(
        f"/admin/conversations/message/{message.pk}/change/").status_code == 200
    logged = entries(kind=Kind.ADMIN)
    assert [(e.objects_label, e.conversation_id) for e in logged] == [
        (f"conversations.conversation:{conversation.pk}", conversation.pk),
        (f"conversations.message:{message.pk}", conversation.pk)]
    assert access_sentence(logged[1]) == (
        f"admin opened the message record {message.pk} of conversation "
        f"#{conversation.pk} in the admin")


def test_client_ip_follows_the_trusted_proxy_setting(as_role, conversation, settings):
    url = f"/conversations/{conversation.pk}/raw/"
    forwarded = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 192.0.2.9"}
    settings.TRUSTED_PROXY_COUNT = 1
    as_role("manager").get(url, **forwarded)
    settings.TRUSTED_PROXY_COUNT = 0
    as_role("manager").get(url, **forwarded)
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "CLIENT_IP": ""}
    settings.TRUSTED_PROXY_COUNT = 1
    as_role("manager").get(url, **forwarded)  # no callable: the socket only
    assert [e.ip for e in entries(kind=Kind.RAW_EVENTS)] == [
        "192.0.2.9", "10.0.0.2", "10.0.0.2"]


def test_viewers_and_reviewers_cannot_read_the_log(as_role, conversation):
    as_role("manager").get(f"/conversations/{conversation.pk}/raw/")
    for role in ("viewer", "qa_reviewer"):
        page = as_role(role).get("/access-log/")
        assert page.status_code == 403 and b"user-manager" not in page.content
        response = api(role).get("/api/access-log/")
        assert response.status_code == 403
        assert "managers" in response.json()["detail"]
    assert Client().get("/api/access-log/").status_code == 401
    assert "Access log" not in as_role("viewer").get("/inbox/").content.decode()


def test_managers_read_the_log_filtered(as_role, conversation):
    manager, reviewer = as_role("manager"), as_role("qa_reviewer")
    manager.get(f"/conversations/{conversation.pk}/raw/")
    reviewer.get(f"/conversations/{conversation.pk}/")
    page = manager.get("/access-log/").content.decode()
    assert f"user-manager opened the raw events of conversation #{conversation.pk}" in page
    assert (f"user-qa_reviewer saw the personal data unmasked in conversation "
            f"#{conversation.pk} (replay)") in page
    only = manager.get("/access-log/?user=user-qa_reviewer").content.decode()
    assert "user-qa_reviewer saw" in only and "user-manager opened" not in only
    only = manager.get("/access-log/?kind=raw_events").content.decode()
    assert "user-manager opened" in only and "user-qa_reviewer saw" not in only
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    assert "Nobody opened" in manager.get(f"/access-log/?since={tomorrow}").content.decode()
    assert manager.get("/access-log/?kind=nope").status_code == 400
    bad = manager.get(f"/access-log/?since={tomorrow}&until=2020-01-01")
    assert bad.status_code == 400 and "Nobody opened" in bad.content.decode()

    token = api("manager")
    body = token.get("/api/access-log/?user=user-qa_reviewer").json()
    [row] = body["results"]
    assert row["kind"] == "pii" and row["conversation_id"] == conversation.pk
    assert row["sentence"].startswith("user-qa_reviewer saw the personal data unmasked")
    today = timezone.localdate().isoformat()
    assert len(token.get(f"/api/access-log/?since={today}&until={today}").json()[
        "results"]) >= 2
    assert token.get(f"/api/access-log/?since={tomorrow}").json()["results"] == []
    assert token.get("/api/access-log/?kind=raw_events").json()["results"][0]["user"] == (
        "user-manager")
    bad = token.get("/api/access-log/?kind=nope")
    assert bad.status_code == 400 and "kind" in bad.json()
    page1 = token.get("/api/access-log/?page_size=1").json()
    assert len(page1["results"]) == 1 and page1["next"]
    page2 = token.get(page1["next"]).json()
    assert page2["results"][0]["id"] < page1["results"][0]["id"]


def test_the_log_pages_older_entries(as_role, conversation):
    manager = as_role("manager")
    user = User.objects.get(username="user-manager")
    now = timezone.now()
    AccessEntry.objects.bulk_create(
        AccessEntry(at=now, user=user, username=user.username, kind=Kind.RAW_EVENTS,
                    what="raw events page", conversation_id=n + 1) for n in range(105))
    first = manager.get("/access-log/").content.decode()
    assert first.count("<li data-kind") == 100 and "conversation #105<" in first
    assert "conversation #5<" not in first and "Older entries" in first
    older = manager.get("/access-log/?before=" + str(
        AccessEntry.objects.order_by("id").values_list("id", flat=True)[5])).content.decode()
    assert older.count("<li data-kind") == 5
    assert "conversation #5<" in older and "conversation #6<" not in older


def test_entries_cannot_be_edited_or_removed(admin_client, as_role, conversation):
    as_role("manager").get(f"/conversations/{conversation.pk}/raw/")
    entry = AccessEntry.objects.get()
    change = f"/admin/audit/accessentry/{entry.pk}/change/"
    page = admin_client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert admin_client.post(change, {"username": "someone-else"}).status_code == 403
    assert admin_client.post(f"/admin/audit/accessentry/{entry.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/audit/accessentry/add/").status_code == 403
    entry.username = "someone-else"
    with pytest.raises(AccessEntry.ReadOnly):
        entry.save()
    with pytest.raises(AccessEntry.ReadOnly):
        entry.delete()
    assert AccessEntry.objects.get().username == "user-manager"
    # The API is read-only too.
    assert api("manager").delete("/api/access-log/").status_code == 405
    # A viewer with staff rights does not see it in the admin.
    viewer = user_in("viewer", "staff-viewer")
    viewer.is_staff = True
    viewer.save()
    staff = Client()
    staff.force_login(viewer)
    assert staff.get("/admin/audit/accessentry/").status_code == 403


def test_the_schema_documents_the_access_log(as_role):
    schema = as_role("manager").get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/access-log/"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"user", "kind", "since", "until", "conversation", "cursor", "page_size"} <= names
    assert "403" in operation["responses"]


def test_the_database_refuses_changes_but_lets_a_removed_user_go(as_role, conversation):
    from django.db import DatabaseError, connection, transaction

    as_role("manager").get(f"/conversations/{conversation.pk}/raw/")
    entry = AccessEntry.objects.get()
    for sql in ("UPDATE audit_accessentry SET username = 'x'",
                "UPDATE audit_accessentry SET conversation_id = NULL, user_id = NULL",
                "DELETE FROM audit_accessentry"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as c:
            c.execute(sql)
    User.objects.filter(username="user-manager").delete()  # SET NULL on the entry
    entry = AccessEntry.objects.get()
    assert entry.user_id is None and entry.username == "user-manager"
