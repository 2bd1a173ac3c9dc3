"""Issue 13, item 5: an invalid filter is a 400 on every surface; it never widens the list
(the export used to drop every filter and answer every conversation)."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client

from conversations.models import Conversation

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def manager() -> Client:
    for channel in ("sms", "web"):
        Conversation.objects.create(channel=channel, customer_address=f"c-{channel}",
                                    business_address="b", started_at=AT, last_activity_at=AT)
    client = Client()
    client.force_login(User.objects.create_superuser("boss"))
    return client


@pytest.mark.parametrize("query", [{"channel": "sms", "since": "2026-13-01"},
                                   {"channel": "fax"}, {"until": "yesterday"},
                                   {"flag_status": "gone"}])
def test_invalid_filters_are_a_400_that_lists_nothing(manager, query):
    export = manager.get("/export.csv", query)
    assert export.status_code == 400
    assert "errors" in export.json()
    inbox = manager.get("/inbox/", query)
    assert inbox.status_code == 400
    assert 'data-conversation="' not in inbox.content.decode()
    assert manager.get("/api/conversations/", query).status_code == 400


def test_valid_filters_still_export(manager):
    response = manager.get("/export.csv", {"channel": "sms"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode().count("c-sms") == 1
