"""Hypothesis against POST /hooks/events/: arbitrary JSON, signed or not, never a 5xx."""

import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conversations.models import RawEvent
from tests.support.events import PATH, SECRET
from tests.support.signing import events_fixture, events_headers

pytestmark = pytest.mark.django_db

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                               max_size=5),
    max_leaves=20,
)
# Mutations of a real event, so many examples get past the schema to the storage path.
real = json.loads(events_fixture("web_chat_customer"))
mutated_events = st.builds(
    lambda key, value, sid: {**real, "data": {**real["data"], key: value,
                                              "provider_message_id": sid}},
    st.sampled_from(["body", "channel", "direction", "sent_at", "media", "metadata", "author",
                     "provider", "extra"]),
    json_values,
    st.text(min_size=1, max_size=300),
)
payloads = json_values | mutated_events | st.lists(mutated_events, min_size=1, max_size=3)


@pytest.fixture(autouse=True)
def events_secret(settings, twilio_tokens):
    settings.HANDOFF_AUDITOR = {**settings.HANDOFF_AUDITOR, "EVENTS_SECRETS": [SECRET]}


@settings(max_examples=250, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    payload=payloads,
    signed=st.sampled_from([True, True, True, False]),
    msg_id=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
)
def test_events_endpoint_never_errors_and_4xx_stores_nothing(client, payload, signed, msg_id):
    body = json.dumps(payload).encode()
    msg_id = msg_id.replace("\x00", "") or "x"
    headers = events_headers(body, SECRET, msg_id=msg_id) if signed else {}
    try:
        with transaction.atomic():
            before = RawEvent.objects.count()
            response = client.post(PATH, body, content_type="application/json",
                                   headers=headers)
            assert response.status_code < 500, response.content[:500]
            event(f"HTTP {response.status_code}")
            stored = RawEvent.objects.count() - before
            if response.status_code >= 400:
                assert response.json()["error"] and response.json()["detail"]
                assert stored == 0
            else:
                # One raw event per event of a batch, each applied or failed on its own.
                events = payload if isinstance(payload, list) else [payload]
                assert signed and stored == len(events) == len(response.json()["raw_events"])
                replay = client.post(PATH, body, content_type="application/json",
                                     headers=headers)
                assert replay.status_code == 200 and replay.json()["duplicate"] is True
                assert RawEvent.objects.count() - before == len(events)
            raise _Rollback
    except _Rollback:
        pass


class _Rollback(Exception):
    """Undo each example's rows so examples do not see each other."""
