"""Issue 13, items 9 and 12: odd but signed event bodies are a 400 JSON that stores
nothing, never a 500 and never a stored event the applier must fail: a body nested 1,000
levels deep (RecursionError), numbers and times that pass a loose schema but no column
holds (`input_tokens: 10**30`, year 0001), JSON's non-finite numbers."""

import json

import pytest

from conversations.models import AIStep, RawEvent
from tests.support.events import SECRET, post
from tests.support.signing import events_fixture

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def events_secret(settings, twilio_tokens):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}


def step(**data) -> dict:
    return {"type": "ai.step", "id": "step-1", "timestamp": "2026-11-21T15:00:01Z",
            "data": {"conversation": {"channel": "web", "external_id": "conv-1"},
                     "operation": "chat", **data}}


def refused(response, path: str | None = None) -> bool:
    ok = response.status_code == 400 and response.json()["detail"]
    if path is not None:
        ok = ok and path in [p["path"] for p in response.json().get("problems", [])]
    return bool(ok) and RawEvent.objects.count() == 0


@pytest.mark.parametrize("depth", [40, 1_000, 100_000])
def test_deeply_nested_bodies_are_a_400(client, depth):
    nested = "[" * depth + "]" * depth
    assert refused(post(client, f'[{{"type": "ai.step", "data": {nested}}}]'.encode()))
    deep = "{\"a\":" * depth + "1" + "}" * depth
    assert refused(post(client, json.dumps(step(parameters={})).replace(
        '"parameters": {}', f'"parameters": {deep}').encode()))


@pytest.mark.parametrize(("data", "path"), [
    ({"usage": {"input_tokens": 10**30}}, "data.usage.input_tokens"),
    ({"usage": {"output_tokens": 2**31}}, "data.usage.output_tokens"),
    ({"usage": {"cached_tokens": 2**31}}, "data.usage.cached_tokens"),
    ({"cost": 1e12}, "data.cost"),
    ({"latency_ms": 1e300}, "data.latency_ms"),
    ({"time_to_first_token_ms": 2**40}, "data.time_to_first_token_ms"),
    ({"retrieved_documents": [{"id": "kb", "score": 1e300}]}, "data.retrieved_documents.0.score"),
])
def test_numbers_no_column_holds_are_a_400_naming_the_field(client, data, path):
    assert refused(post(client, json.dumps([step(**data)]).encode()), path)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00",
                                  "9999-12-31T23:59:59-01:00", "1900-01-01T00:00:00Z"])
def test_times_out_of_range_are_a_400_naming_the_field(client, when):
    message = json.loads(events_fixture("web_chat_customer"))
    message["data"]["sent_at"] = when
    assert refused(post(client, json.dumps(message).encode()), "data.sent_at")
    event = step()
    event["timestamp"] = when
    assert refused(post(client, json.dumps(event).encode()), "timestamp")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_a_400(client, number):
    body = json.dumps([step(parameters={"temperature": 0.5})]).replace("0.5", number)
    assert refused(post(client, body.encode()))


def test_the_largest_storable_values_are_stored_and_applied(client):
    event = step(usage={"input_tokens": 2**31 - 1}, cost=999999.999999,
                 latency_ms=2**31 - 1, retrieved_documents=[{"id": "kb", "score": -1e9}],
                 parameters={"nested": [[[[{"ok": 1}]]]]})
    event["timestamp"] = "2999-12-31T23:59:59Z"
    response = post(client, json.dumps([event]).encode())
    assert response.status_code == 200, response.content
    raw = RawEvent.objects.get()
    assert raw.status == RawEvent.Status.PROCESSED, raw.error
    assert AIStep.objects.get().input_tokens == 2**31 - 1
