"""Issue 13, item 11: with PostgreSQL down the REST API answered 500 HTML; it answers 503
JSON with Retry-After, whether the database fails while signing the caller in (session or
token) or while reading."""

import pytest
from django.test import Client

from tests.support.dbtrouble import database_down, table_locked
from tests.support.roles import token_for

pytestmark = pytest.mark.django_db(transaction=True)

PATHS = ["/api/conversations/", "/api/conversations/1/", "/api/flags/", "/api/messages/",
         "/api/handoffs/", "/api/scores/", "/api/metrics/handoffs/", "/api/qa/queues/"]


def unavailable(response) -> bool:
    return (response.status_code == 503 and int(response["Retry-After"]) > 0
            and response["Content-Type"] == "application/json"
            and "detail" in response.json())


@pytest.mark.parametrize("path", PATHS)
def test_api_answers_503_json_while_the_database_is_down(as_role, path):
    session = as_role("manager")
    token = Client(HTTP_AUTHORIZATION=f"Token {token_for('viewer')}")
    with database_down():
        assert unavailable(session.get(path))
        assert unavailable(token.get(path))


def test_api_answers_503_json_on_a_lock_timeout(as_role):
    viewer = as_role("viewer")
    with table_locked("conversations_conversation"):
        assert unavailable(viewer.get("/api/conversations/"))
