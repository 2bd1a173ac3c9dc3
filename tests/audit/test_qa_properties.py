"""Property tests of the QA pages and API (issue 7): whatever a reviewer or a lead puts in
a query string, a form or a JSON body, the answer is never a 5xx (bad input is a 4xx, or
is ignored where the pages ignore it).

Each example runs in a savepoint that is rolled back (the pattern of
tests/channels/test_properties.py), so a submitted review or a taken slot does not leak into
the next example. The test client re-raises a view's exception, so a crash fails the example
with its traceback.
"""

from contextlib import contextmanager

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audit.qa_queues import queue_fill
from scoring.qa import scorecard_create
from tests.support.qa import CARD, client_of, conversations, flag, message, person, queue

pytestmark = pytest.mark.django_db

PROPERTY_SETTINGS = settings(
    deadline=None, max_examples=60, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a form field or query string may carry: dates at the calendar's ends, numbers a
# database id cannot hold, digits str.isdigit() accepts and int() does not, any Unicode.
tricky = st.sampled_from([
    "", " ", "0", "-1", "1", "2", "abc", "²", "٣", "1e3", "9" * 19, "9" * 40, "null",
    "9999-12-31", "0001-01-01", "1899-12-31", "2026-11-02", "2026-02-30", "garbage", "na",
    "yes", "no", "true", "draft", "submit", "confirmed", "false_positive",
])
text = st.one_of(tricky, st.text(max_size=12))
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6),
              st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["yes", "3"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["value", "na", "comment", "x"]),
                                            inner, max_size=3)),
    max_leaves=6)
CATEGORY_KEYS = [c["key"] for c in CARD]


@contextmanager
def rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def qa():
    card = scorecard_create(key="support", name="Support", categories=CARD, by="lead")
    conv = conversations(2, "web")[0]
    msg = message(conv)
    f = flag(conv, "pii_leak")
    q = queue(card, channel_percent={"web": 100}, double_percent=50)
    queue_fill(queue=q)
    return {"card": card, "conv": conv, "msg": msg, "flag": f, "queue": q,
            "reviewer": client_of(person("alice")), "lead": client_of(person("lead", "manager"))}


def _ok(response) -> None:
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    assert response.status_code < 500, response.status_code


@PROPERTY_SETTINGS
@example(params={"queue": "²", "since": "9999-12-31", "until": "9999-12-31"})
@example(params={"since": "garbage", "until": "0001-01-01"})
@given(params=st.dictionaries(st.sampled_from(["queue", "since", "until", "saved", "conversation",
                                               "reviewer", "status", "scorecard", "cursor"]),
                              text, max_size=4))
def test_any_query_string_on_the_qa_pages_and_api_is_not_a_5xx(qa, params):
    conv = qa["conv"]
    with rolled_back():
        for who in ("reviewer", "lead"):
            c: Client = qa[who]
            _ok(c.get(f"/conversations/{conv.pk}/", params))
            _ok(c.get("/qa/", params))
            _ok(c.get("/qa/agreement/", params))
            _ok(c.get("/api/qa/queues/", params))
            _ok(c.get("/api/qa/reviews/", params))
        _ok(qa["lead"].get("/qa/reviews.csv", params))


@PROPERTY_SETTINGS
@example(fields={"verdict-²": "confirmed", "version": "1"})
@example(fields={"version": "abc", "queue": "٣"})
@given(fields=st.dictionaries(
    st.one_of(st.sampled_from(["version", "queue", "action", "comment"]),
              st.sampled_from(CATEGORY_KEYS).map(lambda k: f"answer-{k}"),
              st.sampled_from(CATEGORY_KEYS).map(lambda k: f"comment-{k}"),
              text.map(lambda s: f"verdict-{s}"), text.map(lambda s: f"note-label-{s}")),
    text, max_size=8))
def test_any_review_form_post_is_not_a_5xx(qa, fields):
    conv = qa["conv"]
    fields = {k: v.replace("\x00", "") for k, v in fields.items()}
    if fields.get("version") == "1":
        fields["version"] = str(qa["card"].pk)
    fields[f"verdict-{qa['flag'].pk}"] = fields.pop("verdict-0", "confirmed")
    fields[f"note-label-{qa['msg'].pk}"] = fields.pop("note-label-0", "")
    with rolled_back():
        _ok(qa["reviewer"].post(f"/conversations/{conv.pk}/review/", fields))


@PROPERTY_SETTINGS
@example(answers={"greeting": [1]}, version=None, extra={})
@example(answers={"greeting": {"value": {}}}, version=None, extra={})
@given(answers=st.dictionaries(st.one_of(st.sampled_from(CATEGORY_KEYS), st.text(max_size=6)),
                               json_value, max_size=5),
       version=st.one_of(st.none(), st.integers(), text),
       extra=st.dictionaries(st.sampled_from(["submit", "notes", "verdicts", "comment"]),
                             json_value, max_size=3))
def test_any_review_json_is_not_a_5xx(qa, answers, version, extra):
    body = {"conversation": qa["conv"].pk, "answers": answers, **extra}
    if version is not None:
        body["version"] = version
    with rolled_back():
        r = qa["reviewer"].post("/api/qa/reviews/", body, content_type="application/json")
        _ok(r)
        if r.status_code == 400:
            assert isinstance(r.json(), dict | list)


@PROPERTY_SETTINGS
@example(fields={"until": "9999-12-31", "name": "far"})
@given(fields=st.dictionaries(
    st.sampled_from(["name", "since", "until", "double_percent", "percent_web", "percent_sms",
                     "brand", "active", "flag_kinds", "reviewers"]),
    text, max_size=6))
def test_any_queue_editor_post_then_fill_is_not_a_5xx(qa, fields):
    fields = {"scorecard": qa["card"].scorecard.pk, "name": "x", "double_percent": "0",
              **{k: v.replace("\x00", "") for k, v in fields.items()}}
    lead = qa["lead"]
    with rolled_back():
        r = lead.post("/qa/queues/new/", fields)
        _ok(r)
        if r.status_code == 302:
            from audit.qa_models import ReviewQueue

            new = ReviewQueue.objects.get(name=fields["name"].strip())
            _ok(lead.post(f"/qa/queues/{new.pk}/fill/"))
            _ok(qa["reviewer"].post(f"/qa/queues/{new.pk}/next/"))
