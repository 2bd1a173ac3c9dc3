"""Issue 13, item 1: search is not an oracle. A viewer without view_pii matches only what it
can see (the masked address, subject and bodies), on the inbox, the API and the CSV."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from audit.roles import roles_ensure
from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
PHONE = "+14155550199"
BODY = "my other number is +1 415 555 0142, mail zoe.jones@example.com"


def client_for(role: str, *extra: str) -> Client:
    roles_ensure()
    user = User.objects.create_user(f"u-{role}")
    user.groups.add(Group.objects.get(name=role))
    user.user_permissions.add(*Permission.objects.filter(codename__in=extra))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def conversation():
    c = Conversation.objects.create(channel="sms", customer_address=PHONE,
                                    business_address="+14155550100", started_at=AT,
                                    last_activity_at=AT)
    Message.objects.create(conversation=c, direction="inbound", author_kind="customer",
                           body=BODY, provider="twilio", sent_at=AT)
    # Conversations that do not match, so a scan has something to skip.
    for i in range(3):
        Conversation.objects.create(channel="sms", customer_address=f"+1415555{i:04d}",
                                    business_address="x", started_at=AT,
                                    last_activity_at=AT - timedelta(minutes=i + 1))
    return c


def inbox_hits(client: Client, q: str) -> int:
    return client.get("/inbox/", {"q": q}).content.decode().count('data-conversation="')


def api_hits(client: Client, q: str) -> int:
    return len(client.get("/api/conversations/", {"q": q}).json()["results"])


def csv_hits(client: Client, q: str) -> int:
    response = client.get("/export.csv", {"q": q})
    return b"".join(response.streaming_content).decode().count("\n") - 1


# What the viewer cannot see (hidden digits, the e-mail's local part) and what it can.
HIDDEN = ["+1415", "41555501", "415 555", "zoe.jones", "jones"]
VISIBLE = ["0199", "0142", "example.com", "other number"]


def test_a_viewer_cannot_search_what_is_masked(conversation):
    viewer = client_for("viewer", "export_data")
    for q in HIDDEN:
        assert inbox_hits(viewer, q) == 0, q
        assert api_hits(viewer, q) == 0, q
        assert csv_hits(viewer, q) == 0, q
    for q in VISIBLE:
        assert inbox_hits(viewer, q) >= 1, q
        assert api_hits(viewer, q) >= 1, q
        assert csv_hits(viewer, q) >= 1, q


def test_those_who_see_pii_search_everything(conversation):
    manager = client_for("manager")
    for q in [*HIDDEN, *VISIBLE]:
        assert inbox_hits(manager, q) >= 1, q
        assert api_hits(manager, q) >= 1, q


def test_a_masked_search_pages_through_every_match(conversation):
    """Pages of a masked search hold only matches and walk them all."""
    for i in range(7):
        c = Conversation.objects.create(channel="sms", customer_address=f"+1415556{i:04d}",
                                        business_address="x", started_at=AT,
                                        last_activity_at=AT + timedelta(minutes=i + 1))
        Message.objects.create(conversation=c, direction="inbound", author_kind="customer",
                               body="other number" if i % 2 else "+1 415 555 9999",
                               provider="twilio", sent_at=AT)
    viewer = client_for("viewer")
    seen, url = [], "/api/conversations/?q=other+number&page_size=2"
    while url:
        page = viewer.get(url).json()
        seen += [r["conversation"]["id"] for r in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 4  # three planted + the fixture's
