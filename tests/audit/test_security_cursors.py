"""Issue 13, item 8: a forged page cursor is a 400, never a 500: integers over 64 bits
(SQLite cannot bind them), datetimes that overflow when moved to UTC or carry no zone,
positions that are not of the column's type. The inbox (`after`) and every API list
(`cursor`)."""

import base64
import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from conversations.models import Conversation

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC).isoformat()
BIG = 2**64 + 1


def inbox_cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def drf_cursor(position: str, offset: int = 0) -> str:
    raw = urlencode({"o": offset, "p": position})
    return base64.b64encode(raw.encode()).decode()


INBOX = [
    ("recent", [AT, BIG]), ("recent", [AT, -BIG]), ("severity", [BIG, AT, 1]),
    ("recent", ["0001-01-01T00:00:00+14:00", 1]), ("recent", ["9999-12-31T23:59:59-14:00", 1]),
    ("recent", ["2026-11-02T10:00:00", 1]), ("recent", [AT, 1.5e300]), ("recent", [AT, True]),
]


@pytest.fixture
def manager(as_role):
    Conversation.objects.create(channel="sms", customer_address="+34600000001",
                                business_address="b", started_at=AT, last_activity_at=AT)
    return as_role("manager")


@pytest.mark.parametrize(("sort", "values"), INBOX)
def test_a_forged_inbox_cursor_is_a_400(manager, sort, values):
    cursor = inbox_cursor(values)
    page = manager.get("/inbox/", {"sort": sort, "after": cursor})
    assert page.status_code == 400
    api = manager.get("/api/conversations/", {"ordering": sort, "cursor": cursor})
    assert api.status_code == 400 and "cursor" in api.json()


LISTS = ["/api/messages/", "/api/handoffs/", "/api/flags/", "/api/scores/",
         "/api/qa/reviews/"]
POSITIONS = [str(BIG), str(-BIG), "garbage", "0001-01-01T00:00:00+14:00",
             "9999-12-31T23:59:59-14:00", "2026-11-02T10:00:00", "1e400", "NaN", "\x00"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("position", POSITIONS)
def test_a_forged_api_cursor_is_a_400(manager, path, position):
    r = manager.get(path, {"cursor": drf_cursor(position)})
    assert r.status_code == 400 and "cursor" in r.json()


@pytest.mark.parametrize("position", POSITIONS)
def test_queues_by_name_take_any_text_but_nul(manager, position):
    r = manager.get("/api/qa/queues/", {"cursor": drf_cursor(position)})
    assert r.status_code == (400 if "\x00" in position else 200)
