"""Issue 13, "done when": arbitrary query strings, page cursors and filter values at every
page and API list, for every role, are never a 5xx. Runs on the suite's database
(PostgreSQL) and, with DATABASE_URL unset, on SQLite (`make test` runs the first; see
README, Tests)."""

import base64
import json
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conversations.models import Conversation, Flag, Message
from demo.scenarios import scenario_get
from handoffs.models import Handoff
from tests.support.roles import user_in
from tests.support.scenarios import play

pytestmark = pytest.mark.django_db

FUZZ = settings(deadline=None, max_examples=20, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

PAGES = ["/", "/inbox/", "/dashboards/", "/export.csv", "/conversations/{conv}/",
         "/conversations/{conv}/raw/", "/qa/", "/qa/agreement/", "/qa/reviews.csv"]
API = ["/api/conversations/", "/api/conversations/{conv}/", "/api/messages/",
       "/api/handoffs/", "/api/handoffs/{handoff}/", "/api/flags/", "/api/flags/{flag}/",
       "/api/scores/", "/api/qa/queues/", "/api/qa/reviews/", "/api/metrics/handoffs/"]
# Every name a page or list reads from its query string, and some it does not.
KEYS = ["after", "cursor", "page_size", "sort", "ordering", "q", "channel", "flag_kind",
        "flag_status", "handoff_state", "agent", "model", "prompt_version", "brand",
        "since", "until", "resolved", "conversation", "message", "kind", "status",
        "severity", "state", "queue", "direction", "author_kind", "source", "subject_type",
        "name", "group_by", "reviewer", "scorecard", "back", "empty", "days", "format"]

tricky = st.sampled_from([
    "", " ", "0", "-1", "1", "9" * 19, "9" * 40, "-" + "9" * 30, "1e400", "NaN", "inf",
    "²", "٣", "null", "true", "%", "_", "\\", "'", "\"", "*", "[]", "{}", "\x00", "\ufffd",
    "9999-12-31", "0001-01-01", "1899-12-31", "2026-02-30", "2026-13-01", "24:00",
    "false_positive", "open", "severity", "recent", "whatsapp", "email", "any", "none",
    "day", "week", "channel", "json", "a" * 5000,
])


def _b64(raw: bytes, url: bool) -> str:
    return (base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)).decode()


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(),
                        st.integers(min_value=2**62, max_value=2**80),
                        st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
                        st.floats(), st.sampled_from(["2026-11-02T10:00:00+00:00",
                                                      "0001-01-01T00:00:00+14:00",
                                                      "9999-12-31T23:59:59-14:00"]))
inbox_cursor = st.lists(json_scalar, max_size=4).map(
    lambda v: _b64(json.dumps(v).encode(), True).rstrip("="))
drf_cursor = st.tuples(json_scalar.map(str),
                       st.one_of(st.integers(), st.sampled_from(["", "x", "-1"]))).map(
    lambda po: _b64(urlencode({"o": po[1], "p": po[0]}).encode(), False))
# What a query string can carry: any character but a lone surrogate (not UTF-8).
chars = st.characters(blacklist_categories=("Cs",))
value = st.one_of(tricky, st.text(chars, max_size=20), inbox_cursor, drf_cursor,
                  st.binary(max_size=20).map(lambda b: _b64(b, True)))
query = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(chars, max_size=8)), value,
                        max_size=5)


@contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def site(client, settings):
    for key in ("web-on-time", "whatsapp-window-expired", "web-missed-request"):
        play(client, settings, scenario_get(key))
    clients = {}
    # A manager (PII, flags, export) and a viewer (masked search, masked pages); a QA
    # reviewer for the QA pages (the blind rule).
    for role in ("manager", "viewer", "qa_reviewer"):
        clients[role] = Client()
        clients[role].force_login(user_in(role, f"fuzz-{role}"))
    ids = {"conv": Conversation.objects.order_by("pk").first().pk,
           "handoff": (Handoff.objects.order_by("pk").first() or Conversation(pk=1)).pk,
           "flag": (Flag.objects.order_by("pk").first() or Conversation(pk=1)).pk}
    assert Message.objects.exists()
    return clients, ids


def _fetch(client: Client, path: str, params: dict[str, str]) -> None:
    response = client.get(path, params)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    assert response.status_code < 500, (path, params, response.status_code)


@FUZZ
@example(params={"after": "WyIyMDI2LTExLTAyVDEwOjAwOjAwKzAwOjAwIiwgMTg0NDY3NDQwNzM3MDk1NTE2MTdd"})
@example(params={"cursor": base64.b64encode(b"o=0&p=garbage").decode(), "q": "\x00"})
@example(params={"since": "0001-01-01", "until": "9999-12-31", "group_by": "day"})
@given(params=query)
def test_any_query_string_on_every_page_and_api_list_is_not_a_5xx(site, params):
    clients, ids = site
    with rolled_back():
        for role, client in clients.items():
            for path in PAGES + API:
                if (role == "qa_reviewer") != ("/qa/" in path):
                    continue
                _fetch(client, path.format(**ids), params)
